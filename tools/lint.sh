#!/usr/bin/env bash
# ansible-lint with the production profile, offline (no Galaxy here). Runs on the
# working tree; .ansible-lint holds the configuration and exclusions.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
activate_venv

export ANSIBLE_COLLECTIONS_PATH=$COLLECTIONS_DIR
cd "$REPO_ROOT"
ansible-lint --offline --profile production "$@"
