#!/usr/bin/env bash
# `molecule test` for each named scenario under extensions/molecule/ that exists, in
# the order given. Stops at the first failing scenario (later ones build on it).
#   molecule.sh SCENARIO...
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
activate_venv

(($#)) || die "usage: molecule.sh SCENARIO..."
export ANSIBLE_COLLECTIONS_PATH=$COLLECTIONS_DIR
# Pin the images the scenarios use (user overrides win; see extensions/molecule/README.md).
for suite in "${TEST_SUITES[@]}"; do
    export "MTLS_TEST_IMAGE_${suite^^}=$(image_for_suite "$suite")"
done
cd "$REPO_ROOT"

ran=0
for scenario in "$@"; do
    if [[ ! -f extensions/molecule/$scenario/molecule.yml ]]; then
        log "molecule scenario '$scenario' does not exist yet: skipped"
        continue
    fi
    start=$(now)
    log "molecule test -s $scenario"
    molecule test -s "$scenario"
    log "molecule scenario '$scenario' passed in $(elapsed_since "$start")s"
    ran=$((ran + 1))
done
((ran)) || die "none of the molecule scenarios exist: $*"
