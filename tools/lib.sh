# Shared helpers for the scripts behind the Makefile. Source it; do not run it.
# shellcheck shell=bash
# shellcheck disable=SC2034  # the variables set here are read by the scripts that source this file

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${MTLS_BUILD_DIR:-$REPO_ROOT/.build}
COLLECTIONS_DIR=$BUILD_DIR/collections
STAGED_COLLECTION=$COLLECTIONS_DIR/ansible_collections/fleet/mtls
VENV_DIR=${MTLS_VENV:-$REPO_ROOT/.venv}

# Locally built test images; MTLS_TEST_IMAGE_<SUITE> points at any other image instead.
TEST_SUITES=(bookworm trixie)
LOCAL_IMAGE_REPO=localhost/fleet-mtls-test

log() { printf '==> %s\n' "$*"; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

# Image reference for a Debian suite: the user's override or our local build.
image_for_suite() {
    local override_var="MTLS_TEST_IMAGE_${1^^}"
    if [[ -n ${!override_var:-} ]]; then
        printf '%s\n' "${!override_var}"
    else
        printf '%s:%s\n' "$LOCAL_IMAGE_REPO" "$1"
    fi
}

image_is_overridden() {
    local override_var="MTLS_TEST_IMAGE_${1^^}"
    [[ -n ${!override_var:-} ]]
}

# Put the venv's tools first on PATH (make runs each recipe in a fresh shell).
activate_venv() {
    [[ -x $VENV_DIR/bin/python ]] || die "no virtualenv at $VENV_DIR; run 'make setup' first"
    export VIRTUAL_ENV=$VENV_DIR
    export PATH=$VENV_DIR/bin:$PATH
}

# Seconds since the epoch with decimals, for timing summaries.
now() { date +%s.%N; }
elapsed_since() { awk -v s="$1" -v e="$(now)" 'BEGIN { printf "%.0f", e - s }'; }
