#!/usr/bin/env bash
# The unit and module layers (the module layer includes one real fleet.mtls.site run on simulated
# hosts, tests/modules/test_site_local.py) on the oldest ansible-core meta/runtime.yml claims,
# in a virtualenv of its own made from requirements-compat.txt (.build/venv-core216).
#   compat.sh [pytest arguments for the module layer, e.g. -k site]
# Without arguments the module layer leaves out the OpenBao module tests but one file: the vault
# modules talk to the engine through hvac, not through anything ansible-core provides, so the
# default layer's run of them proves them; the identity role signing through OpenBao
# (test_identity_vault.py's first test) stays, for the role glue of the vault backend on the old
# core. Its refusal test is left to the default layer: the rescue it walks is sign.yml's pattern,
# which test_playbook_failures.py proves on the old core. That keeps the OpenBao tests' share of
# make test small (docs/vault.md, "What the OpenBao tests cost").
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

export MTLS_VENV=${MTLS_COMPAT_VENV:-$BUILD_DIR/venv-core216}
# shellcheck disable=SC2034  # read by activate_venv (lib.sh)
VENV_DIR=$MTLS_VENV
"$REPO_ROOT/tools/venv.sh" "$REPO_ROOT/requirements-compat.txt"
activate_venv

claimed=$(sed -n 's/^requires_ansible: *"*>=\([0-9.]*\)"*$/\1/p' "$REPO_ROOT/meta/runtime.yml")
core=$(python -c 'from ansible.release import __version__; print(__version__)')
[[ -n $claimed ]] || die "meta/runtime.yml has no requires_ansible: \">=X.Y.Z\""
# The venv must hold the oldest release line the collection claims, or the layer proves nothing.
[[ ${core%.*} == "${claimed%.*}" ]] ||
    die "requirements-compat.txt installs ansible-core $core, meta/runtime.yml claims >=$claimed"
log "ansible-core $core (oldest claimed: >=$claimed) in $MTLS_VENV"

"$REPO_ROOT/tools/pytest.sh" tests/unit -n 2
(($#)) || set -- -k "not vault or test_identity_role_signs_through_the_engine"
"$REPO_ROOT/tools/pytest.sh" tests/modules -n 2 "$@"
