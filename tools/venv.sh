#!/usr/bin/env bash
# Create or refresh the tool virtualenv (.venv, or MTLS_VENV) from requirements-dev.txt, or
# from the requirements file given (tools/compat.sh: the oldest supported ansible-core).
# A stamp file holding the requirements' hash skips the reinstall when nothing changed.
#   venv.sh [REQUIREMENTS]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

requirements=${1:-$REPO_ROOT/requirements-dev.txt}
stamp=$VENV_DIR/.$(basename "$requirements" .txt).sha256
want=$(sha256sum "$requirements" | cut -d' ' -f1)

if [[ -x $VENV_DIR/bin/python && -f $stamp && $(cat "$stamp") == "$want" ]]; then
    log "virtualenv $VENV_DIR is current"
    exit 0
fi

start=$(now)
if [[ ! -x $VENV_DIR/bin/python ]]; then
    log "creating virtualenv $VENV_DIR"
    python3 -m venv "$VENV_DIR"
fi
rm -f "$stamp"
"$VENV_DIR/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$VENV_DIR/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
printf '%s\n' "$want" >"$stamp"
log "virtualenv ready in $(elapsed_since "$start")s"
