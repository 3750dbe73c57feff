#!/usr/bin/env bash
# Whole-process benchmark: `shoal bundle apply` against the tools a user would
# otherwise reach for (`zstd -d`, `dd`), on a real Debian OS image.
#
#   scripts/bench-apply.sh [--rounds N] [--json PATH] [--work-dir DIR] ...
#
# See docs/BENCHMARKS.md, or run with --help.
set -Eeuo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SCRIPT_DIR/.." && pwd)

# ---------------------------------------------------------------- defaults --
ROUNDS=5
JSON_OUT=/tmp/shoal-bench-apply.json
CACHE_DIR=${SHOAL_BENCH_CACHE:-/var/cache/shoal-bench}
WORK_PARENT=${SHOAL_BENCH_WORKDIR:-/var/tmp}
MIRROR=${SHOAL_BENCH_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
SLACK_PCT=30
TOOLS=shoal,zstd,zstd-sparse,dd
VERIFY=1
STRICT=0
SHOAL=${SHOAL:-}
SCRATCH=${SHOAL_BENCH_SCRATCH:-$REPO_DIR/.build-bench}
CHUNK_SIZE=4M
LEVEL=3
MEM_GOAL_MIB=96
SPEEDUP_GOAL=1.5     # apply >= 1.5x single-threaded `zstd -d` ...
DD_GOAL=0.90         # ... or >= 90% of dd's raw O_DIRECT write speed

usage() {
    cat <<EOF
usage: $0 [options]

Benchmarks \`shoal bundle apply\` against \`zstd -d\` and \`dd\` on a Debian
$SUITE minbase ext4 image (built once with debootstrap and cached).

options:
  --rounds N         interleaved rounds per tool (default $ROUNDS)
  --json PATH        JSON summary path (default $JSON_OUT)
  --cache-dir DIR    where the OS image is cached (default $CACHE_DIR)
  --work-dir DIR     parent directory for bundle and targets; all targets are
                     written to this filesystem (default $WORK_PARENT)
  --mirror URL       Debian mirror for debootstrap (default $MIRROR)
  --tools LIST       comma list of: shoal,zstd,zstd-sparse,dd
                     (default $TOOLS)
  --no-verify        do not cmp each target against the image after a run
  --strict           exit 1 when a goal is missed (default: report only)
  --rebuild-image    throw away the cached image and build it again
  --image-only       only build (or check) the cached image, then exit
  -h, --help         this text

environment:
  SHOAL=path         shoal binary to use (default: build release into
                     $SCRATCH)
  SHOAL_BENCH_REV    revision label recorded for a SHOAL= binary
  SHOAL_BENCH_CACHE, SHOAL_BENCH_WORKDIR, SHOAL_BENCH_MIRROR, SHOAL_BENCH_SCRATCH
EOF
}

REBUILD=0
IMAGE_ONLY=0
while (($#)); do
    case $1 in
        --rounds) ROUNDS=$2; shift 2 ;;
        --json) JSON_OUT=$2; shift 2 ;;
        --cache-dir) CACHE_DIR=$2; shift 2 ;;
        --work-dir) WORK_PARENT=$2; shift 2 ;;
        --mirror) MIRROR=$2; shift 2 ;;
        --tools) TOOLS=$2; shift 2 ;;
        --no-verify) VERIFY=0; shift ;;
        --strict) STRICT=1; shift ;;
        --rebuild-image) REBUILD=1; shift ;;
        --image-only) IMAGE_ONLY=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
done
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "--rounds must be a positive integer" >&2; exit 2; }
IFS=, read -r -a TOOL_LIST <<<"$TOOLS"
for t in "${TOOL_LIST[@]}"; do
    case $t in shoal|zstd|zstd-sparse|dd) ;; *) echo "unknown tool: $t" >&2; exit 2 ;; esac
done

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { printf 'bench-apply: error: %s\n' "$*" >&2; exit 1; }

# ------------------------------------------------------ cleanup and children --
# Every long-running child is started in its own process group (setsid) and
# waited for, so that a signal reaches the trap at once and the cleanup can
# stop exactly that group -- never anything found by name.
WORK_DIR=
ROOTFS_TMP=
IMAGE_TMP=
CHILD_PID=
LOCK_FD=

unmount_under() {   # unmount anything still mounted below $1 (deepest first)
    local dir=$1 m
    [[ -n $dir && -d $dir ]] || return 0
    dir=$(realpath -- "$dir")
    awk -v d="$dir" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/self/mounts |
        sort -r | while read -r m; do umount -l -- "$m" 2>/dev/null || true; done
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    if [[ -n $CHILD_PID ]] && kill -0 "$CHILD_PID" 2>/dev/null; then
        kill -TERM -- "-$CHILD_PID" 2>/dev/null || true
        sleep 1
        kill -KILL -- "-$CHILD_PID" 2>/dev/null || true
        wait "$CHILD_PID" 2>/dev/null || true
    fi
    if [[ -n $ROOTFS_TMP ]]; then
        unmount_under "$ROOTFS_TMP"
        rm -rf --one-file-system -- "$ROOTFS_TMP"
    fi
    [[ -n $IMAGE_TMP ]] && rm -f -- "$IMAGE_TMP"
    [[ -n $WORK_DIR ]] && rm -rf --one-file-system -- "$WORK_DIR"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# run_child CMD...: run CMD in its own process group, wait for it, return its
# status.
run_child() {
    local rc=0
    setsid --wait "$@" </dev/null &
    CHILD_PID=$!
    wait "$CHILD_PID" || rc=$?
    CHILD_PID=
    return "$rc"
}

now_ns() { date +%s%N; }

# ---------------------------------------------------------------- checks --
[[ $EUID -eq 0 ]] || die "must run as root (debootstrap, O_DIRECT targets)"
for c in zstd dd mke2fs setsid python3 cmp awk; do
    command -v "$c" >/dev/null || die "missing tool: $c"
done
[[ -x /usr/bin/time ]] || die "GNU time is required at /usr/bin/time"
/usr/bin/time -f '%e %M' true 2>/dev/null || die "/usr/bin/time is not GNU time"
DEBOOTSTRAP=$(command -v debootstrap || echo /usr/sbin/debootstrap)
REPORT_PY=$SCRIPT_DIR/bench_apply_report.py
[[ -f $REPORT_PY ]] || die "missing $REPORT_PY"

# ---------------------------------------------------------------- OS image --
IMAGE=$CACHE_DIR/debian-$SUITE-minbase.ext4
IMAGE_META=$IMAGE.json
case $(realpath -m -- "$CACHE_DIR")/ in
    "$REPO_DIR"/*) die "the image cache must be outside the repository ($CACHE_DIR)" ;;
esac
mkdir -p -- "$CACHE_DIR"
exec {LOCK_FD}>"$CACHE_DIR/.lock"
flock "$LOCK_FD"   # one image build at a time

if ((REBUILD)); then rm -f -- "$IMAGE" "$IMAGE_META"; fi

build_image() {
    [[ -x $DEBOOTSTRAP ]] || die "debootstrap not found (apt-get install debootstrap)"
    log "checking the Debian mirror $MIRROR"
    local probe=$MIRROR/dists/$SUITE/Release
    if command -v curl >/dev/null; then
        curl -fsS --max-time 30 -o /dev/null "$probe" ||
            die "the Debian mirror is unreachable: cannot fetch $probe (network down? set --mirror URL)"
    elif command -v wget >/dev/null; then
        wget -q -T 30 -O /dev/null "$probe" ||
            die "the Debian mirror is unreachable: cannot fetch $probe (network down? set --mirror URL)"
    fi

    ROOTFS_TMP=$(mktemp -d "$CACHE_DIR/rootfs.XXXXXX")
    log "debootstrap --variant=minbase $SUITE into $ROOTFS_TMP (a few minutes)"
    local t0 t1
    t0=$(now_ns)
    if ! run_child "$DEBOOTSTRAP" --variant=minbase "$SUITE" "$ROOTFS_TMP" "$MIRROR" \
            >"$CACHE_DIR/debootstrap.log" 2>&1; then
        tail -n 20 "$CACHE_DIR/debootstrap.log" >&2 || true
        die "debootstrap failed (full log: $CACHE_DIR/debootstrap.log); is $MIRROR reachable?"
    fi
    t1=$(now_ns)
    unmount_under "$ROOTFS_TMP"
    # Drop the downloaded .debs: they are not part of an installed system.
    rm -f -- "$ROOTFS_TMP"/var/cache/apt/archives/*.deb

    local rootfs_bytes size_mib image_bytes
    rootfs_bytes=$(du -sb --one-file-system -- "$ROOTFS_TMP" | cut -f1)
    # rootfs + 30% slack, rounded up to a multiple of 4 MiB.
    size_mib=$(( (rootfs_bytes * (100 + SLACK_PCT) / 100 + (4 << 20) - 1) / (4 << 20) * 4 ))
    IMAGE_TMP=$IMAGE.partial
    rm -f -- "$IMAGE_TMP"
    log "rootfs is $((rootfs_bytes >> 20)) MiB; mke2fs -t ext4 -d ... ${size_mib}M"
    until mke2fs -q -t ext4 -L shoal-bench -d "$ROOTFS_TMP" -F "$IMAGE_TMP" "${size_mib}M" >&2; do
        # Only if the slack was not enough for the metadata: grow and retry.
        size_mib=$((size_mib + 32))
        ((size_mib < rootfs_bytes * 3 / 1048576 + 64)) || die "mke2fs keeps failing"
        log "mke2fs failed; retrying with ${size_mib}M"
        rm -f -- "$IMAGE_TMP"
    done
    image_bytes=$(stat -c %s -- "$IMAGE_TMP")
    cat >"$IMAGE_META" <<EOF
{"suite": "$SUITE", "variant": "minbase", "mirror": "$MIRROR", "rootfs_bytes": $rootfs_bytes,
 "image_bytes": $image_bytes, "slack_pct": $SLACK_PCT, "debootstrap_seconds": $(( (t1 - t0) / 1000000000 )),
 "built": "$(date -u +%FT%TZ)", "debootstrap_version": "$(dpkg-query -W -f '${Version}' debootstrap 2>/dev/null || echo unknown)"}
EOF
    sync -- "$IMAGE_TMP"
    mv -f -- "$IMAGE_TMP" "$IMAGE"
    IMAGE_TMP=
    unmount_under "$ROOTFS_TMP"
    rm -rf --one-file-system -- "$ROOTFS_TMP"
    ROOTFS_TMP=
}

if [[ -s $IMAGE ]]; then
    log "reusing cached image $IMAGE"
else
    build_image
fi
exec {LOCK_FD}>&-
[[ -s $IMAGE_META ]] || echo '{}' >"$IMAGE_META"
IMAGE_BYTES=$(stat -c %s -- "$IMAGE")
log "image: $IMAGE ($IMAGE_BYTES bytes, $(du -B1 -- "$IMAGE" | cut -f1) allocated)"

if ((IMAGE_ONLY)); then log "image ready (--image-only)"; exit 0; fi

# ------------------------------------------------------------ shoal binary --
BUILT_HERE=0
if [[ -z $SHOAL ]]; then
    BUILT_HERE=1
    command -v swift >/dev/null || die "no SHOAL=path given and no swift toolchain to build one"
    log "building shoal (release) into $SCRATCH"
    run_child swift build -c release --product shoal --package-path "$REPO_DIR" \
        --scratch-path "$SCRATCH" >&2 || die "swift build failed"
    SHOAL=$(swift build -c release --package-path "$REPO_DIR" --scratch-path "$SCRATCH" --show-bin-path)/shoal
fi
[[ -x $SHOAL ]] || die "shoal binary not found or not executable: $SHOAL"
SHOAL=$(realpath -- "$SHOAL")
log "shoal: $SHOAL"
if ((BUILT_HERE)); then
    GIT_REV=$(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo unknown)
    GIT_DIRTY=$(git -C "$REPO_DIR" status --porcelain --untracked-files=no -- Sources Package.swift 2>/dev/null | wc -l)
else   # a binary given with SHOAL=: its revision is whatever the caller says
    GIT_REV=${SHOAL_BENCH_REV:-"unknown (SHOAL=$SHOAL)"}
    GIT_DIRTY=0
fi

# ------------------------------------------------------------- work area --
mkdir -p -- "$WORK_PARENT"
WORK_DIR=$(mktemp -d "$WORK_PARENT/shoal-bench.XXXXXX")
RAW=$WORK_DIR/raw.tsv          # tool round wall_s time_e rss_kib target_alloc
TIMEF=$WORK_DIR/time.out
BUNDLE=$WORK_DIR/image.bundle
TARGET=$WORK_DIR/target.img
printf 'tool\tround\tphase\twall_s\ttime_e\trss_kib\tout_bytes\ttarget_alloc\n' >"$RAW"
FREE_BYTES=$(df -B1 --output=avail -- "$WORK_DIR" | tail -n1 | tr -d ' ')
((FREE_BYTES > IMAGE_BYTES * 4)) || die "not enough free space in $WORK_PARENT"

# timed PHASE TOOL ROUND OUTFILE CMD...: run CMD under GNU time in its own
# process group; record wall time (ns clock), %e and peak RSS (%M, KiB).
timed() {
    local phase=$1 tool=$2 round=$3 out=$4; shift 4
    local t0 t1 rc=0 e m alloc=0 bytes=0
    rm -f -- "$TIMEF"
    t0=$(now_ns)
    run_child /usr/bin/time -f '%e %M' -o "$TIMEF" "$@" || rc=$?
    t1=$(now_ns)
    if ((rc != 0)); then
        log "FAILED ($rc): $*"
        [[ -s $WORK_DIR/cmd.err ]] && sed 's/^/    /' "$WORK_DIR/cmd.err" >&2
        die "$tool failed in round $round (exit $rc)"
    fi
    read -r e m <"$TIMEF"
    if [[ -e $out ]]; then
        bytes=$(stat -c %s -- "$out")
        alloc=$(du -B1 -- "$out" | cut -f1)
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$tool" "$round" "$phase" \
        "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f", (b - a) / 1e9 }')" "$e" "$m" "$bytes" "$alloc" >>"$RAW"
}

# ----------------------------------------------------------- create phase --
log "shoal bundle create (chunk $CHUNK_SIZE, level $LEVEL, all cores)"
timed create shoal-create 0 "$BUNDLE" \
    sh -c 'exec "$0" bundle create "$1" -o "$2" --chunk-size "$3" --level "$4" --json >"$5" 2>"$6"' \
    "$SHOAL" "$IMAGE" "$BUNDLE" "$CHUNK_SIZE" "$LEVEL" "$WORK_DIR/create.json" "$WORK_DIR/cmd.err"
"$SHOAL" bundle verify --help >/dev/null 2>&1 && {
    "$SHOAL" bundle verify "$BUNDLE" >"$WORK_DIR/verify.out" 2>&1 ||
        { cat "$WORK_DIR/verify.out" >&2; die "shoal bundle verify rejected the fresh bundle"; }
}
log "zstd -3 -T1 / -T0 for the compression-ratio comparison"
timed create zstd-3-T1 0 "$WORK_DIR/image.zst1" \
    sh -c 'exec zstd -q -3 -T1 -c "$0" >"$1" 2>"$2"' "$IMAGE" "$WORK_DIR/image.zst1" "$WORK_DIR/cmd.err"
timed create zstd-3-T0 0 "$WORK_DIR/image.zst0" \
    sh -c 'exec zstd -q -3 -T0 -c "$0" >"$1" 2>"$2"' "$IMAGE" "$WORK_DIR/image.zst0" "$WORK_DIR/cmd.err"
rm -f -- "$WORK_DIR/image.zst1" "$WORK_DIR/image.zst0"

# A bundle must be a plain zstd (seekable-format) file: check it once.
zstd -q -d -c -- "$BUNDLE" | cmp -s - "$IMAGE" ||
    die "zstd -d of the bundle does not reproduce the image"

# ------------------------------------------------------------ apply phase --
# Warm the inputs once, equally for every tool (no cache dropping assumed).
cat -- "$IMAGE" "$BUNDLE" >/dev/null

run_tool() {   # run_tool TOOL ROUND
    local tool=$1 round=$2
    rm -f -- "$TARGET" "$TARGET.shoal-resume"
    case $tool in
        shoal)
            # io_uring + O_DIRECT writes, verification, fdatasync (all built in).
            timed apply shoal "$round" "$TARGET" \
                sh -c 'exec "$0" bundle apply "$1" --to "$2" --json >"$3" 2>"$4"' \
                "$SHOAL" "$BUNDLE" "$TARGET" "$WORK_DIR/apply-$round.json" "$WORK_DIR/cmd.err" ;;
        zstd)
            # Single-threaded decode to stdout redirected to the file (so no
            # sparse writes: zstd disables --sparse on stdout), then fsync the
            # target (`sync FILE`), the same durability as shoal's fdatasync.
            timed apply zstd "$round" "$TARGET" \
                sh -c 'zstd -q -d -c "$0" >"$1" 2>"$2" && exec sync -- "$1"' \
                "$BUNDLE" "$TARGET" "$WORK_DIR/cmd.err" ;;
        zstd-sparse)
            # Same, written by zstd itself to the file with --sparse (zero
            # blocks are seeked over, like shoal's hole punching).
            timed apply zstd-sparse "$round" "$TARGET" \
                sh -c 'zstd -q -d -f --sparse "$0" -o "$1" 2>"$2" && exec sync -- "$1"' \
                "$BUNDLE" "$TARGET" "$WORK_DIR/cmd.err" ;;
        dd)
            # Raw sequential write speed of the target filesystem.
            timed apply dd "$round" "$TARGET" \
                sh -c 'exec dd if="$0" of="$1" bs=4M oflag=direct conv=fsync status=none 2>"$2"' \
                "$IMAGE" "$TARGET" "$WORK_DIR/cmd.err" ;;
    esac
    if ((VERIFY)); then
        cmp -s -- "$TARGET" "$IMAGE" || die "$tool round $round: the target differs from the image"
    fi
    rm -f -- "$TARGET" "$TARGET.shoal-resume"
}

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
NT=${#TOOL_LIST[@]}
for ((r = 1; r <= ROUNDS; r++)); do
    order=()
    # Rotate the order each round so no tool always runs first or last.
    for ((i = 0; i < NT; i++)); do order+=("${TOOL_LIST[(i + r - 1) % NT]}"); done
    log "round $r/$ROUNDS: ${order[*]}"
    for t in "${order[@]}"; do run_tool "$t" "$r"; done
done

# ------------------------------------------------------------------ report --
REPORT_FLAGS=(--git-rev "$GIT_REV" --git-dirty-files "$GIT_DIRTY" --load-start "$LOAD_START")
((STRICT)) && REPORT_FLAGS+=(--strict)
python3 "$REPORT_PY" \
    --raw "$RAW" --image "$IMAGE" --image-meta "$IMAGE_META" --bundle "$BUNDLE" \
    --create-json "$WORK_DIR/create.json" --apply-json-dir "$WORK_DIR" \
    --work-dir "$WORK_DIR" --shoal "$SHOAL" --rounds "$ROUNDS" --json "$JSON_OUT" \
    --mem-goal-mib "$MEM_GOAL_MIB" --speedup-goal "$SPEEDUP_GOAL" --dd-goal "$DD_GOAL" \
    --zstd-bundle-bytes "$(awk -F'\t' '$1=="zstd-3-T1"{print $7}' "$RAW")" \
    --zstd-mt-bytes "$(awk -F'\t' '$1=="zstd-3-T0"{print $7}' "$RAW")" \
    "${REPORT_FLAGS[@]}"

