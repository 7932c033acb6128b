#!/usr/bin/env bash
# Build (once) the Debian 13 image with systemd as PID 1 that Molecule uses as
# a throwaway target host. The debootstrap rootfs and the image are cached:
# a second run prints "cached" and changes nothing.
#
# Usage: build-target-image.sh [IMAGE]   (default homelab-test/debian-systemd:trixie)
# Env:   HOMELAB_TEST_CACHE (default /var/cache/homelab-test), DEBOOTSTRAP_MIRROR.
set -euo pipefail

image=${1:-homelab-test/debian-systemd:trixie}
cache=${HOMELAB_TEST_CACHE:-/var/cache/homelab-test}
rootfs_tar="$cache/debian-trixie-systemd-rootfs.tar"

mkdir -p "$cache"
# Scenarios that run side by side (molecule --workers) build it once: the others wait here.
exec 8>"$cache/.target-image.lock"
flock 8
if docker image inspect "$image" >/dev/null 2>&1; then
    echo cached
    exit 0
fi

if [[ ! -s "$rootfs_tar" ]]; then
    work=$(mktemp -d "$cache/rootfs.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    debootstrap --variant=minbase \
        --include=systemd,systemd-sysv,dbus,python3,ca-certificates,iproute2 \
        trixie "$work/rootfs" ${DEBOOTSTRAP_MIRROR:+"$DEBOOTSTRAP_MIRROR"} >"$work/debootstrap.log" 2>&1 \
        || { tail -30 "$work/debootstrap.log" >&2; exit 1; }
    # Units that cannot work in a container and would leave systemd "degraded".
    for unit in systemd-modules-load.service systemd-remount-fs.service getty@tty1.service; do
        ln -sf /dev/null "$work/rootfs/etc/systemd/system/$unit"
    done
    tar -C "$work/rootfs" -cf "$rootfs_tar.partial" .
    mv "$rootfs_tar.partial" "$rootfs_tar"
fi

docker import \
    --change 'ENV container=docker' \
    --change 'CMD ["/sbin/init"]' \
    --change 'LABEL org.homelab.test-image="Molecule target host; test harness only"' \
    "$rootfs_tar" "$image" >/dev/null
echo built
