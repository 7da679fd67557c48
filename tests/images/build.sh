#!/usr/bin/env bash
# Build one Debian systemd test image from scratch with debootstrap and import it into podman.
#   build.sh SUITE IMAGE [RECIPE_HASH]
# SUITE is a Debian codename (bookworm, trixie); IMAGE the name:tag to create.
# Needs root, debootstrap and podman. MTLS_DEBIAN_MIRROR overrides the mirror.
set -euo pipefail

suite=${1:?usage: build.sh SUITE IMAGE [RECIPE_HASH]}
image=${2:?usage: build.sh SUITE IMAGE [RECIPE_HASH]}
recipe_hash=${3:-unknown}
mirror=${MTLS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

packages=$(grep -Ev '^[[:space:]]*(#|$)' "$here/packages.txt")

# /var/tmp, not /tmp: the root filesystem must allow device nodes and exec.
rootfs=$(mktemp -d "/var/tmp/fleet-mtls-rootfs-$suite.XXXXXX")
unmount_all() {
    awk -v root="$rootfs/" 'index($2, root) == 1 { print $2 }' /proc/mounts | sort -r |
        while read -r mountpoint; do umount -l "$mountpoint"; done
}
cleanup() { unmount_all; rm -rf --one-file-system "$rootfs" "$rootfs.log"; }
trap cleanup EXIT

run_logged() {
    "$@" >>"$rootfs.log" 2>&1 || {
        echo "image $image: '$*' failed; last lines of its output:" >&2
        tail -n 30 "$rootfs.log" >&2
        exit 1
    }
}

# Stage 1: a bootable minimal system. Stage 2: the rest through apt, which (unlike
# debootstrap's resolver) handles virtual packages such as python3-cffi-backend-api-*.
echo "image $image: debootstrap $suite ($mirror)"
run_logged debootstrap --variant=minbase --components=main --include=python3,systemd,systemd-sysv \
    "$suite" "$rootfs" "$mirror"

# Apt sources of a normal installation, so converges that need more packages find them.
rm -f "$rootfs/etc/apt/sources.list"
cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $mirror
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES

echo "image $image: installing $(wc -w <<<"$packages") packages"
# No daemon may start inside the build chroot.
printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
chmod 0755 "$rootfs/usr/sbin/policy-rc.d"
mount -t proc proc "$rootfs/proc"
export DEBIAN_FRONTEND=noninteractive
run_logged chroot "$rootfs" apt-get update -q
# shellcheck disable=SC2086  # one word per package
run_logged chroot "$rootfs" apt-get install -y -q --no-install-recommends $packages
run_logged chroot "$rootfs" apt-get clean
unmount_all
rm -f "$rootfs/usr/sbin/policy-rc.d"

# Smaller image; each container gets its own machine id and hostname at boot.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/*
: >"$rootfs/etc/machine-id"
rm -f "$rootfs/var/lib/dbus/machine-id" "$rootfs/etc/hostname"

tar -C "$rootfs" --numeric-owner -c . | podman import \
    --change 'CMD ["/sbin/init"]' \
    --change 'STOPSIGNAL SIGRTMIN+3' \
    --change "LABEL fleet.mtls.recipe=$recipe_hash" \
    --change "LABEL fleet.mtls.suite=$suite" \
    --quiet --message "fleet.mtls test image ($suite, recipe $recipe_hash)" \
    - "$image" >/dev/null
echo "image $image: built"
