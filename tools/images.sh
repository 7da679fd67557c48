#!/usr/bin/env bash
# Make sure the Debian test images exist: build each one that is missing or whose
# recipe (tests/images/) changed since it was built. Suites whose image is overridden
# with MTLS_TEST_IMAGE_<SUITE> are left to the user (pulled by podman when used).
#   images.sh [--force]
# MTLS_IMAGE_BUILD_JOBS=1 builds one after the other (default: all in parallel).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

force=false
[[ ${1:-} == --force ]] && force=true
recipe_dir=$REPO_ROOT/tests/images

recipe_hash() {
    # The suite is part of the recipe: same files, different image per suite.
    { printf '%s\n' "$1"; cat "$recipe_dir/build.sh" "$recipe_dir/packages.txt"; } |
        sha256sum | cut -c1-16
}

built_hash() {
    podman image inspect --format '{{ index .Labels "fleet.mtls.recipe" }}' "$1" 2>/dev/null || true
}

pending=()
for suite in "${TEST_SUITES[@]}"; do
    if image_is_overridden "$suite"; then
        log "image for $suite: $(image_for_suite "$suite") (MTLS_TEST_IMAGE_${suite^^}; not built here)"
        continue
    fi
    image=$(image_for_suite "$suite")
    want=$(recipe_hash "$suite")
    if ! $force && [[ $(built_hash "$image") == "$want" ]]; then
        log "image for $suite: $image is current (recipe $want)"
        continue
    fi
    pending+=("$suite")
done
((${#pending[@]})) || exit 0

command -v debootstrap >/dev/null || die "debootstrap is missing; run 'make setup'"
jobs_allowed=${MTLS_IMAGE_BUILD_JOBS:-${#pending[@]}}
start=$(now)
declare -A pid_of=()
failed=()
for suite in "${pending[@]}"; do
    image=$(image_for_suite "$suite")
    hash=$(recipe_hash "$suite")
    (
        suite_start=$(now)
        "$recipe_dir/build.sh" "$suite" "$image" "$hash"
        podman tag "$image" "$LOCAL_IMAGE_REPO:$suite-$hash"
        log "image for $suite built in $(elapsed_since "$suite_start")s"
    ) &
    pid_of[$suite]=$!
    if ((${#pid_of[@]} >= jobs_allowed)); then
        wait "${pid_of[$suite]}" || failed+=("$suite")
        unset "pid_of[$suite]"
    fi
done
for suite in "${!pid_of[@]}"; do
    wait "${pid_of[$suite]}" || failed+=("$suite")
done
((${#failed[@]})) && die "image build failed for: ${failed[*]}"
# Old recipe tags no longer point anywhere useful.
podman image prune -f >/dev/null || true
log "images built in $(elapsed_since "$start")s: ${pending[*]}"
