#!/bin/sh
# Installs what Shoal needs from Debian's archive (idempotent; skips what is present).
# Build: libssl-dev (OpenSSL 3), libzstd-dev, liburing-dev, libsqlite3-dev (GRDB uses the system SQLite). Tests and demo: zstd, openssl,
# e2fsprogs (mkfs.ext4, debugfs), util-linux (losetup, mount), fdisk (sfdisk), grub-common
# (grub-editenv) and busybox-static for the lab hosts; aria2, opentracker and mktorrent for the
# BitTorrent side-by-side (`shoal lab run --compare-aria2c`); openssh-client (ssh-keygen) for
# the lab hosts' SSH host keys; chromium for the dashboard's headless-browser test (ShoalAPITests).
set -eu
packages="libssl-dev libzstd-dev liburing-dev libsqlite3-dev zstd openssl e2fsprogs util-linux fdisk grub-common busybox-static aria2 opentracker mktorrent openssh-client chromium"
missing=""
for p in $packages; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "setup: installing$missing"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
else
    echo "setup: all packages present"
fi
