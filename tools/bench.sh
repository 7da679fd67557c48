#!/usr/bin/env bash
# Run every benchmark script in tests/bench/ with the venv's Python, in name order.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
activate_venv

shopt -s nullglob
benchmarks=("$REPO_ROOT"/tests/bench/*.py)
if ((${#benchmarks[@]} == 0)); then
    log "no benchmarks in tests/bench/: nothing to run"
    exit 0
fi
export ANSIBLE_COLLECTIONS_PATH=$COLLECTIONS_DIR
cd "$REPO_ROOT"
for benchmark in "${benchmarks[@]}"; do
    log "bench ${benchmark#"$REPO_ROOT"/}"
    python "$benchmark"
done
