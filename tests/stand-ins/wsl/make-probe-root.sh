#!/bin/sh
# STAND-IN for tests, not WSL. Writes a stand-in root that homelab.core.wsl_info reads in place of
# "/" (its `root` option, the inventory's homelab_wsl_probe_root): the files only WSL has, because
# a container cannot have files of its own in /proc (runc refuses mounts there).
#
# Usage: make-probe-root.sh KIND DIR
#   wsl2                   a WSL2 distribution with systemd on and the GPU shared from Windows
#   wsl2-systemd-off       the same, booted without systemd: /etc/wsl.conf sets systemd=false
#   wsl1                   a WSL1 distribution
#   wsl2-docker-desktop    wsl2, with Docker Desktop's WSL integration on (its docker CLI link)
#
# What it cannot prove: that a real WSL kernel, WSL's init, the Windows NVIDIA driver or Docker
# Desktop write these files this way. Each file holds what recordings of real hosts show (cited
# below); /proc files hold one line as the kernel writes them, so the label is here and in
# DIR/STAND-IN.txt, not in them. dev/dxg is a character device with /dev/null's numbers (1, 3):
# wsl_info only looks at its type, and nothing opens it. The libraries are text files.
#
# Recordings: the WSL2 kernel release and /proc/version are those of WSL's 5.15.167.4 kernel
# (github.com/leptonai/gpud/issues/203: "5.15.167.4-microsoft-standard-WSL2"; /proc/version as
# github.com/Rain0832/RainWebServer README.md records it, WSL 2.4.12.0, Ubuntu 24.04.2). The WSL1
# pair is github.com/powersj/whatsthis/issues/10's. The interop entry's name and PID 1's name come
# from microsoft/WSL 2.9.4 (src/linux/init/binfmt.h; systemd or WSL's init), the Docker Desktop
# link from github.com/docker/for-win/issues/6441 ("/usr/bin/docker" to
# "/mnt/wsl/docker-desktop/cli-tools/usr/bin/docker").
set -eu
kind=${1:?usage: make-probe-root.sh KIND DIR}
root=${2:?usage: make-probe-root.sh KIND DIR}

case $kind in
    wsl2 | wsl2-systemd-off | wsl1 | wsl2-docker-desktop) ;;
    *) echo "make-probe-root.sh: unknown kind '$kind'" >&2; exit 2 ;;
esac

rm -rf "$root"
mkdir -p "$root/proc/sys/kernel" "$root/proc/sys/fs/binfmt_misc" "$root/proc/1" "$root/etc" "$root/dev" \
    "$root/usr/lib/wsl/lib" "$root/usr/bin" "$root/sbin"

cat >"$root/STAND-IN.txt" <<TEXT
STAND-IN WSL root ($kind) for the homelab.core tests, written by tests/stand-ins/wsl/make-probe-root.sh.
homelab.core.wsl_info reads it instead of / when homelab_wsl_probe_root points here. Not a WSL host.
TEXT

if [ "$kind" = wsl1 ]; then
    printf '%s\n' 4.4.0-19041-Microsoft >"$root/proc/sys/kernel/osrelease"
    printf '%s\n' "Linux version 4.4.0-19041-Microsoft (Microsoft@Microsoft.com) (gcc version 5.4.0 (GCC) ) #488-Microsoft Mon Sep 01 13:43:00 PST 2020" \
        >"$root/proc/version"
    printf '%s\n' init >"$root/proc/1/comm"
    exit 0
fi

printf '%s\n' 5.15.167.4-microsoft-standard-WSL2 >"$root/proc/sys/kernel/osrelease"
printf '%s\n' "Linux version 5.15.167.4-microsoft-standard-WSL2 (root@f9c826d3017f) (gcc (GCC) 11.2.0, GNU ld (GNU Binutils) 2.37) #1 SMP Tue Nov 5 00:21:55 UTC 2024" \
    >"$root/proc/version"
printf '%s\n' "enabled" >"$root/proc/sys/fs/binfmt_misc/WSLInterop"
ln -s /lib/systemd/systemd "$root/sbin/init"
mknod "$root/dev/dxg" c 1 3
printf '%s\n' "STAND-IN for tests: not the Windows NVIDIA driver's libcuda.so.1" >"$root/usr/lib/wsl/lib/libcuda.so.1"
printf '%s\n' "STAND-IN for tests: not WSL's libdxcore.so" >"$root/usr/lib/wsl/lib/libdxcore.so"
# The stand-in nvidia-smi that molecule/wsl-sim installs at the real path.
ln -s /usr/lib/wsl/lib/nvidia-smi "$root/usr/lib/wsl/lib/nvidia-smi"

if [ "$kind" = wsl2-systemd-off ]; then
    printf '%s\n' init >"$root/proc/1/comm"
    printf '%s\n' "# STAND-IN /etc/wsl.conf for the homelab.core tests (WSL's init never reads this copy)." "[boot]" "systemd=false" \
        >"$root/etc/wsl.conf"
    exit 0
fi

printf '%s\n' systemd >"$root/proc/1/comm"
mkdir -p "$root/run/systemd/system"
printf '%s\n' "# STAND-IN /etc/wsl.conf for the homelab.core tests (WSL's init never reads this copy)." "[boot]" "systemd=true" \
    >"$root/etc/wsl.conf"

if [ "$kind" = wsl2-docker-desktop ]; then
    mkdir -p "$root/mnt/wsl/docker-desktop/cli-tools/usr/bin"
    printf '%s\n' "STAND-IN for tests: not Docker Desktop's docker CLI" >"$root/mnt/wsl/docker-desktop/cli-tools/usr/bin/docker"
    ln -s /mnt/wsl/docker-desktop/cli-tools/usr/bin/docker "$root/usr/bin/docker"
fi
