#!/usr/bin/env bash
# Build the STAND-IN NVIDIA Container Toolkit apt repository that molecule/gpu-sim
# serves on 127.0.0.1, so that the role's real deb822 + signed-by path runs.
# Nothing here is NVIDIA's: the packages carry NVIDIA's package names (the role
# installs those names) but every description, file and the key say STAND-IN.
#
# Usage: build-standin-apt-repo.sh OUTDIR VERSION...   (VERSION like 1.17.3-1)
# Makes OUTDIR/gpgkey (a throwaway ed25519 key, armored, generated now) and the flat
# repository OUTDIR/stable/deb/<arch>/ (Packages, Release, InRelease, Release.gpg,
# one set of the four toolkit packages per VERSION), laid out like
# https://nvidia.github.io/libnvidia-container/stable/deb/$(ARCH).
# Needs dpkg-deb, apt-ftparchive (apt-utils) and gpg with gpg-agent.
set -euo pipefail

src=$(cd "$(dirname "$0")" && pwd)
out=$1
shift
arch=$(dpkg --print-architecture)
repo="$out/stable/deb/$arch"
work=$(mktemp -d)
export GNUPGHOME="$work/gnupg"
cleanup() {
    gpgconf --kill gpg-agent 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$repo"
mkdir -m 0700 "$GNUPGHOME"

# package NAME VERSION DEPENDS [SOURCE:DESTINATION]...
package() {
    local name=$1 version=$2 depends=$3 root pair
    shift 3
    root="$work/$name-$version"
    mkdir -p "$root/DEBIAN" "$root/usr/share/doc/$name"
    echo "STAND-IN package for the homelab.core tests, not NVIDIA's $name." >"$root/usr/share/doc/$name/README.homelab-standin"
    for pair in "$@"; do
        install -D -m 0755 "$src/${pair%%:*}" "$root/${pair#*:}"
        sed -i "s/@VERSION@/${version%-*}/" "$root/${pair#*:}"
    done
    {
        echo "Package: $name"
        echo "Version: $version"
        echo "Architecture: $arch"
        echo "Maintainer: homelab.core tests <standin@homelab.invalid>"
        [[ -z $depends ]] || echo "Depends: $depends"
        echo "Section: utils"
        echo "Priority: optional"
        echo "Description: STAND-IN for tests, not NVIDIA's $name"
        echo " Built by tests/stand-ins/gpu/build-standin-apt-repo.sh for the molecule gpu-sim"
        echo " scenario of homelab.core. It only imitates the command-line surface the role uses."
    } >"$root/DEBIAN/control"
    dpkg-deb --root-owner-group --build "$root" "$repo/standin-${name}_${version}_$arch.deb" >/dev/null
}

for version in "$@"; do
    upstream=${version%-*}
    package libnvidia-container1 "$version" ""
    package libnvidia-container-tools "$version" "libnvidia-container1 (>= $upstream)"
    package nvidia-container-toolkit-base "$version" "" \
        nvidia-ctk.standin:usr/bin/nvidia-ctk \
        nvidia-container-runtime.standin:usr/bin/nvidia-container-runtime
    package nvidia-container-toolkit "$version" \
        "nvidia-container-toolkit-base (= $version), libnvidia-container-tools (>= $upstream), libnvidia-container-tools (<< 2.0.0)" \
        nvidia-container-runtime-hook.standin:usr/bin/nvidia-container-runtime-hook
done

gpg --batch --quiet --pinentry-mode loopback --passphrase '' --quick-generate-key \
    "homelab.core STAND-IN apt repository key, throwaway, not NVIDIA's <standin@homelab.invalid>" ed25519 sign never
gpg --batch --armor --export >"$out/gpgkey"

cd "$repo"
apt-ftparchive packages . >Packages
apt-ftparchive \
    -o APT::FTPArchive::Release::Origin="homelab.core STAND-IN" \
    -o APT::FTPArchive::Release::Label="STAND-IN NVIDIA Container Toolkit repository for tests" \
    release . >"$work/Release"
mv "$work/Release" Release
gpg --batch --yes --clearsign --output InRelease Release
gpg --batch --yes --armor --detach-sign --output Release.gpg Release
