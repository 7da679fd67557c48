#!/usr/bin/env bash
# Run the test layers one after the other as their own make targets, keep going after
# a failure so one run shows every broken layer, then print a timing summary and, for
# each failed layer, the lines of its log that say why (logs: .build/logs/LAYER.log).
#   test-layers.sh LAYER...
# Exit status: 0 only when every layer passed.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

make_cmd=${MAKE:-make}
summary=()
failed=0
failed_layers=()
log_dir=$BUILD_DIR/logs
mkdir -p "$log_dir"

run_step() {
    local name=$1 start status
    shift
    start=$(now)
    log "make $name"
    "$make_cmd" --no-print-directory "$@" "$name" 2>&1 | tee "$log_dir/$name.log"
    status=${PIPESTATUS[0]}
    local seconds
    seconds=$(elapsed_since "$start")
    if ((status == 0)); then
        summary+=("$(printf '  %-10s passed  %5ss' "$name" "$seconds")")
    else
        summary+=("$(printf '  %-10s FAILED  %5ss (exit %s)' "$name" "$seconds" "$status")")
        failed=1
        failed_layers+=("$name")
    fi
    return "$status"
}

# The timing summary, then the reason of each failure: CI logs are often cut to their end.
report() {
    printf '\n==> test summary (%ss total)\n' "$(elapsed_since "$total_start")"
    printf '%s\n' "${summary[@]}"
    local name
    for name in "${failed_layers[@]}"; do
        printf '\n==> why %s failed (full log: %s)\n' "$name" "${log_dir#"$REPO_ROOT"/}/$name.log"
        python3 "$REPO_ROOT/tools/failure_excerpt.py" "$log_dir/$name.log" 30
    done
}

total_start=$(now)
# Set-up is shared by every layer: do it once, visibly timed; nothing can run without it.
run_step setup || { report; exit 1; }
if [[ " $* " == *" molecule "* ]]; then
    run_step images
fi
for layer in "$@"; do
    run_step "$layer"
done

report
exit "$failed"
