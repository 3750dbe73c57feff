#!/usr/bin/env python3
"""Summarise the raw timings of scripts/bench-apply.sh: a table of medians,
ratios, pass/fail against the apply goals, and a JSON summary."""

import argparse
import csv
import glob
import json
import os
import platform
import statistics
import subprocess
import sys
from datetime import datetime, timezone

MB = 1e6
MIB = 1 << 20


def sh(*args):
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:
        return ""


def sha256_file(path):
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def machine(work_dir, shoal):
    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal"):
                mem = int(line.split()[1]) * 1024
    dd = sh("dd", "--version").splitlines()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "mem_bytes": mem,
        "kernel": platform.release(),
        "target_fs": sh("findmnt", "-no", "SOURCE,FSTYPE,OPTIONS", "-T", work_dir),
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        "shoal_sha256": sha256_file(shoal),
        "zstd": sh("zstd", "--version"),
        "dd": dd[0] if dd else "",
        "shoal_binary": shoal,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw", required=True)
    ap.add_argument("--image", required=True)
    ap.add_argument("--image-meta", required=True)
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--create-json", required=True)
    ap.add_argument("--apply-json-dir", required=True)
    ap.add_argument("--work-dir", required=True)
    ap.add_argument("--shoal", required=True)
    ap.add_argument("--rounds", type=int, required=True)
    ap.add_argument("--json", required=True)
    ap.add_argument("--mem-goal-mib", type=float, default=96)
    ap.add_argument("--speedup-goal", type=float, default=1.5)
    ap.add_argument("--dd-goal", type=float, default=0.9)
    ap.add_argument("--zstd-bundle-bytes", type=int, required=True)
    ap.add_argument("--zstd-mt-bytes", type=int, required=True)
    ap.add_argument("--strict", action="store_true")
    ap.add_argument("--git-rev", default="unknown")
    ap.add_argument("--git-dirty-files", type=int, default=0)
    ap.add_argument("--load-start", default="")
    a = ap.parse_args()

    image_bytes = os.path.getsize(a.image)
    bundle_bytes = os.path.getsize(a.bundle)
    with open(a.image_meta) as f:
        image_meta = json.load(f)
    with open(a.raw) as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    for r in rows:
        r["wall_s"] = float(r["wall_s"])
        r["rss_kib"] = int(r["rss_kib"])
        r["round"] = int(r["round"])
        r["out_bytes"] = int(r["out_bytes"])
        r["target_alloc"] = int(r["target_alloc"])

    # ---------------------------------------------------------------- create
    def one(tool):
        return next(r for r in rows if r["tool"] == tool)

    with open(a.create_json) as f:
        create_out = json.load(f)
    sc, z1, z0 = one("shoal-create"), one("zstd-3-T1"), one("zstd-3-T0")
    create = {
        "shoal": {
            "wall_s": sc["wall_s"], "mb_s": image_bytes / sc["wall_s"] / MB,
            "peak_rss_mib": sc["rss_kib"] / 1024, "bundle_bytes": bundle_bytes,
            "ratio": image_bytes / bundle_bytes, "frames": create_out.get("frames"),
            "internal_seconds": create_out.get("seconds"),
        },
        "zstd_3_T1": {
            "wall_s": z1["wall_s"], "mb_s": image_bytes / z1["wall_s"] / MB,
            "peak_rss_mib": z1["rss_kib"] / 1024, "bytes": a.zstd_bundle_bytes,
            "ratio": image_bytes / a.zstd_bundle_bytes,
        },
        "zstd_3_T0": {
            "wall_s": z0["wall_s"], "mb_s": image_bytes / z0["wall_s"] / MB,
            "peak_rss_mib": z0["rss_kib"] / 1024, "bytes": a.zstd_mt_bytes,
            "ratio": image_bytes / a.zstd_mt_bytes,
        },
    }

    # ----------------------------------------------------------------- apply
    tools = []
    for r in rows:
        if r["phase"] == "apply" and r["tool"] not in tools:
            tools.append(r["tool"])
    apply = {}
    for t in tools:
        runs = sorted((r for r in rows if r["phase"] == "apply" and r["tool"] == t), key=lambda r: r["round"])
        mbs = [image_bytes / r["wall_s"] / MB for r in runs]
        rss = [r["rss_kib"] / 1024 for r in runs]
        apply[t] = {
            "runs": len(runs),
            "wall_s": [round(r["wall_s"], 4) for r in runs],
            "mb_s": [round(x, 1) for x in mbs],
            "peak_rss_mib": [round(x, 1) for x in rss],
            "median_wall_s": statistics.median(r["wall_s"] for r in runs),
            "median_mb_s": statistics.median(mbs),
            "min_mb_s": min(mbs),
            "max_mb_s": max(mbs),
            "median_rss_mib": statistics.median(rss),
            "max_rss_mib": max(rss),
            "target_allocated_bytes": runs[-1]["target_alloc"],
        }

    # shoal's own view of the apply (from its --json output)
    shoal_json = []
    for p in sorted(glob.glob(os.path.join(a.apply_json_dir, "apply-*.json"))):
        try:
            with open(p) as f:
                shoal_json.append(json.load(f))
        except (OSError, ValueError):
            pass
    if shoal_json and "shoal" in apply:
        last = shoal_json[-1]
        apply["shoal"]["internal_median_seconds"] = statistics.median(j.get("seconds", 0) for j in shoal_json)
        apply["shoal"]["report"] = {k: last.get(k) for k in (
            "chunks", "chunks_written", "bytes_written", "bytes_zeroed", "bytes_read_back",
            "direct_io", "syncs", "already_complete")}

    def ratio(x, y):
        if x in apply and y in apply:
            return apply[x]["median_mb_s"] / apply[y]["median_mb_s"]
        return None

    ratios = {
        "shoal_over_zstd": ratio("shoal", "zstd"),
        "shoal_over_zstd_sparse": ratio("shoal", "zstd-sparse"),
        "shoal_over_dd": ratio("shoal", "dd"),
    }
    goals = {}
    if "shoal" in apply:
        s_zstd, s_dd = ratios["shoal_over_zstd"], ratios["shoal_over_dd"]
        speed_zstd = s_zstd is not None and s_zstd >= a.speedup_goal
        speed_dd = s_dd is not None and s_dd >= a.dd_goal
        goals = {
            "throughput": {
                "rule": f"median apply MB/s >= {a.speedup_goal}x single-threaded zstd -d (zstd -d -c > T; sync T) "
                        f"OR >= {a.dd_goal:.0%} of dd oflag=direct conv=fsync",
                "vs_zstd": s_zstd, "vs_dd": s_dd, "pass": speed_zstd or speed_dd,
            },
            "memory": {
                "rule": f"peak RSS <= {a.mem_goal_mib:g} MiB in every round",
                "max_rss_mib": apply["shoal"]["max_rss_mib"],
                "pass": apply["shoal"]["max_rss_mib"] <= a.mem_goal_mib,
            },
        }

    mach = machine(a.work_dir, a.shoal)
    mach["loadavg_at_start"] = [float(x) for x in a.load_start.split()]
    summary = {
        "shoal_source": {"git_rev": a.git_rev, "modified_tracked_files_in_Sources": a.git_dirty_files},
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "image": {"path": a.image, "bytes": image_bytes, **image_meta},
        "rounds": a.rounds,
        "machine": mach,
        "commands": {
            "shoal": "shoal bundle apply BUNDLE --to T --json",
            "zstd": "zstd -q -d -c BUNDLE > T && sync T   (stdout: not sparse; single-threaded)",
            "zstd-sparse": "zstd -q -d -f --sparse BUNDLE -o T && sync T",
            "dd": "dd if=IMAGE of=T bs=4M oflag=direct conv=fsync",
        },
        "create": create,
        "apply": apply,
        "ratios": ratios,
        "goals": goals,
        "raw": rows,
    }
    os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
    with open(a.json, "w") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")

    # ----------------------------------------------------------------- print
    out = []
    w = out.append
    m = summary["machine"]
    w("")
    w(f"image: {a.image}")
    w(f"       Debian {image_meta.get('suite', '?')} {image_meta.get('variant', '')}, ext4, "
      f"{image_bytes / MB:.1f} MB ({image_bytes / MIB:.0f} MiB), rootfs {image_meta.get('rootfs_bytes', 0) / MB:.1f} MB")
    w(f"machine: {m['cpu']}, {m['cores']} cores, {m['mem_bytes'] / (1 << 30):.1f} GiB, kernel {m['kernel']}")
    w(f"targets on: {m['target_fs']}")
    w(f"load average: {' '.join(map(str, m['loadavg_at_start']))} at the first round, "
      f"{' '.join(map(str, m['loadavg_at_end']))} at the end")
    w(f"shoal: {a.shoal} (git {a.git_rev}"
      f"{', %d modified files in Sources' % a.git_dirty_files if a.git_dirty_files else ''})")
    w("")
    w("create                    wall s     MB/s   peak RSS MiB        bytes   image/size")
    for label, c, size in (("shoal bundle create", create["shoal"], bundle_bytes),
                           ("zstd -3 -T1", create["zstd_3_T1"], a.zstd_bundle_bytes),
                           ("zstd -3 -T0", create["zstd_3_T0"], a.zstd_mt_bytes)):
        w(f"  {label:<22}{c['wall_s']:>8.2f} {c['mb_s']:>8.1f} {c['peak_rss_mib']:>14.1f} {size:>12d} {c['ratio']:>11.3f}x")
    w(f"  bundle size vs zstd -3 -T1: {bundle_bytes / a.zstd_bundle_bytes:.3f}x "
      f"({(bundle_bytes / a.zstd_bundle_bytes - 1) * 100:+.1f}%)")
    w("")
    w(f"apply (medians of {a.rounds} interleaved rounds; MB/s of image = {image_bytes} B / wall time)")
    w("  tool           wall s     MB/s   (min-max)        peak RSS MiB (max)   target allocated")
    for t in tools:
        x = apply[t]
        w(f"  {t:<12}{x['median_wall_s']:>9.3f} {x['median_mb_s']:>8.1f}   ({x['min_mb_s']:.0f}-{x['max_mb_s']:.0f})"
          f"{'':<6}{x['median_rss_mib']:>8.1f} ({x['max_rss_mib']:.1f}){'':<6}{x['target_allocated_bytes'] / MB:>8.1f} MB")
    if "shoal" in apply and "report" in apply["shoal"]:
        rp = apply["shoal"]["report"]
        w(f"  shoal's own timing: {apply['shoal']['internal_median_seconds']:.3f} s median; "
          f"{rp.get('bytes_written', 0) / MB:.1f} MB written, {rp.get('bytes_zeroed', 0) / MB:.1f} MB zeros punched, "
          f"direct_io={rp.get('direct_io')}, syncs={rp.get('syncs')}")
    w("")
    for k, v in ratios.items():
        if v is not None:
            w(f"  {k.replace('_over_', ' / ').replace('_', '-'):<22}{v:.3f}x")
    ok = True
    if goals:
        w("")
        g = goals["throughput"]
        vz = f"{g['vs_zstd']:.2f}x" if g["vs_zstd"] is not None else "n/a"
        vd = f"{g['vs_dd']:.0%}" if g["vs_dd"] is not None else "n/a"
        w(f"  goal throughput: {'PASS' if g['pass'] else 'FAIL'}  "
          f"({vz} zstd -d [need {a.speedup_goal}x] or {vd} of dd [need {a.dd_goal:.0%}])")
        g = goals["memory"]
        w(f"  goal memory:     {'PASS' if g['pass'] else 'FAIL'}  "
          f"(max peak RSS {g['max_rss_mib']:.1f} MiB, limit {a.mem_goal_mib:g} MiB)")
        ok = goals["throughput"]["pass"] and goals["memory"]["pass"]
    w("")
    w(f"JSON summary: {a.json}")
    print("\n".join(out))
    return 0 if ok or not a.strict else 1


if __name__ == "__main__":
    sys.exit(main())
