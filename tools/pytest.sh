#!/usr/bin/env bash
# Run one pytest layer. An empty layer is a failure (pytest exit 5, "no tests
# collected"), so a broken conftest or a misnamed file cannot pass silently.
#   pytest.sh DIR [--skip-if-missing] [pytest arguments]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
activate_venv

test_dir=${1:?usage: pytest.sh DIR [--skip-if-missing] [pytest arguments]}
shift
skip_if_missing=false
if [[ ${1:-} == --skip-if-missing ]]; then
    skip_if_missing=true
    shift
fi

if [[ ! -d $REPO_ROOT/$test_dir ]]; then
    $skip_if_missing && { log "$test_dir does not exist yet: skipped"; exit 0; }
    die "$test_dir does not exist"
fi

export ANSIBLE_COLLECTIONS_PATH=$COLLECTIONS_DIR
cd "$REPO_ROOT"
status=0
python -m pytest "$test_dir" "$@" || status=$?
if ((status == 5)); then
    die "pytest collected no tests in $test_dir"
fi
exit "$status"
