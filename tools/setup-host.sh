#!/usr/bin/env bash
# Prepare a Debian 12 host for `make test`: system packages and the podman settings
# this kind of VM needs. Idempotent; does nothing (quickly) when all is in place.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# podman + runc + netavark/aardvark-dns: rootful containers that resolve each other by name.
# iptables: netavark 1.4 (Debian 12) sets up every container network's firewall through the
# iptables binary; without it `podman run --network NET` fails ("netavark: No such file or
# directory"), and a fresh Debian 12 machine does not have it.
# debootstrap + keyring: the test images. python3-venv: the tool venv. git/rsync: staging.
# The shellcheck package: ansible-test sanity skips its shellcheck test without it.
HOST_PACKAGES=(
    podman runc netavark aardvark-dns conmon catatonit iptables
    debootstrap debian-archive-keyring
    python3 python3-venv
    git rsync make curl openssl ca-certificates shellcheck
)
# Tools the unit tests run, installed without recommends and without starting their services:
# prometheus for `promtool check metrics` on the report's textfile (the package also ships the
# server, which must not run here); chromium to render the report's HTML page headless.
TEST_TOOL_PACKAGES=(prometheus chromium)
TEST_TOOL_SERVICES=(prometheus)
CONTAINERS_CONF=${MTLS_CONTAINERS_CONF:-/etc/containers/containers.conf}

missing_of() {
    local package status
    for package in "$@"; do
        status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
        [[ $status == "install ok installed" ]] || printf '%s\n' "$package"
    done
}

mapfile -t missing < <(missing_of "${HOST_PACKAGES[@]}")
mapfile -t missing_tools < <(missing_of "${TEST_TOOL_PACKAGES[@]}")
if ((${#missing[@]} + ${#missing_tools[@]})); then
    ((EUID == 0)) || die "missing packages (${missing[*]} ${missing_tools[*]}); run 'make setup' as root"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
fi
if ((${#missing[@]})); then
    log "installing: ${missing[*]}"
    apt-get install -y -qq "${missing[@]}" >/dev/null
else
    log "host packages present"
fi
if ((${#missing_tools[@]})); then
    log "installing test tools: ${missing_tools[*]}"
    # policy-rc.d 101 = "action forbidden": invoke-rc.d starts no service during this install.
    # A policy already in place (containers often have one) is left as it is.
    policy=/usr/sbin/policy-rc.d
    own_policy=false
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 0755 "$policy"
        own_policy=true
    fi
    status=0
    apt-get install -y -qq --no-install-recommends "${missing_tools[@]}" >/dev/null || status=$?
    if $own_policy; then
        rm -f "$policy"
    fi
    ((status == 0)) || die "apt-get install ${missing_tools[*]} failed"
    # Under systemd the unit is enabled by the package: keep it off across reboots too.
    if [[ -d /run/systemd/system ]]; then
        systemctl disable --now "${TEST_TOOL_SERVICES[@]}"
    fi
else
    log "test tools present"
fi

# Hybrid cgroups here rule out crun, and the sandbox cannot raise rlimits to podman's
# defaults: pin runc and lower default ulimits, leaving other settings alone.
if ((EUID == 0)); then
    python3 "$REPO_ROOT/tools/containers_conf.py" "$CONTAINERS_CONF" \
        'containers.default_ulimits=["nofile=20000:20000", "nproc=4096:4096"]' \
        'engine.runtime="runc"'
else
    log "not root: leaving $CONTAINERS_CONF alone"
fi

# Prove a container can start on a podman network before any scenario or the demo relies
# on it; skipped while nothing it depends on has changed since it last passed here.
PREFLIGHT_STAMP=${MTLS_PREFLIGHT_STAMP:-/var/lib/fleet-mtls-dev/podman-preflight.ok}
if ((EUID == 0)); then
    fingerprint=$(
        {
            dpkg-query -W "${HOST_PACKAGES[@]}" 2>/dev/null
            cat "$CONTAINERS_CONF" "$REPO_ROOT/tools/podman_preflight.py"
        } | sha256sum | cut -d' ' -f1
    )
    python3 "$REPO_ROOT/tools/podman_preflight.py" "$PREFLIGHT_STAMP" "$fingerprint" ||
        die "this host cannot run the podman test fleet (see above)"
else
    log "not root: podman preflight skipped"
fi
