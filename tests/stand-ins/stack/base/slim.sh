#!/usr/bin/env bash
# Runs inside a build container made from homelab-test/debian-systemd:trixie
# (the cached Debian 13 rootfs of the Molecule target). Turns it into the small
# base of the stack test images, which build-images.sh then flattens with
# docker export | docker import: no init system, no docs, man pages, locales
# or apt caches, and apt/dpkg set up to stay that way in the images above.
set -Eeuo pipefail

apt-get purge -y -q --allow-remove-essential systemd-sysv systemd dbus init iproute2 >/dev/null

cat >/etc/dpkg/dpkg.cfg.d/homelab-slim <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
CFG
cat >/etc/apt/apt.conf.d/homelab-slim <<'CFG'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb || true"; };
CFG
# Packages never start services while an image is built.
printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
chmod 0755 /usr/sbin/policy-rc.d

find /usr/share/doc -type f ! -name copyright -delete
find /usr/share/doc -type d -empty -delete
find /usr/share/locale -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
rm -rf /usr/share/man/* /usr/share/info/* /usr/share/lintian/* /var/lib/apt/lists/* /var/cache/apt/* \
    /var/cache/debconf/*-old /var/log/apt/* /var/log/*.log
