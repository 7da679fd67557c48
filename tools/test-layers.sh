#!/usr/bin/env bash
# Run the test layers one after the other as their own make targets, keep going after
# a failure so one run shows every broken layer, then print a timing summary.
#   test-layers.sh LAYER...
# Exit status: 0 only when every layer passed.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

make_cmd=${MAKE:-make}
summary=()
failed=0

run_step() {
    local name=$1 start status
    shift
    start=$(now)
    log "make $name"
    "$make_cmd" --no-print-directory "$@" "$name"
    status=$?
    local seconds
    seconds=$(elapsed_since "$start")
    if ((status == 0)); then
        summary+=("$(printf '  %-10s passed  %5ss' "$name" "$seconds")")
    else
        summary+=("$(printf '  %-10s FAILED  %5ss (exit %s)' "$name" "$seconds" "$status")")
        failed=1
    fi
    return "$status"
}

total_start=$(now)
# Set-up is shared by every layer: do it once, visibly timed; nothing can run without it.
run_step setup || { printf '%s\n' "${summary[@]}"; exit 1; }
if [[ " $* " == *" molecule "* ]]; then
    run_step images
fi
for layer in "$@"; do
    run_step "$layer"
done

printf '\n==> test summary (%ss total)\n' "$(elapsed_since "$total_start")"
printf '%s\n' "${summary[@]}"
exit "$failed"
