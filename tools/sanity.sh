#!/usr/bin/env bash
# ansible-test sanity on the staged collection, with its per-venv pip bootstrap served
# from tools/get_pip_standin.py (the usual download host is unreachable here).
#   sanity.sh [extra ansible-test sanity arguments]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
activate_venv

python_version=${MTLS_SANITY_PYTHON:-3.11}
ansible_test_dir=$(python -c 'import ansible_test, os; print(os.path.dirname(ansible_test.__file__))')
# ansible-test names the cached script after the pip version it bootstraps.
pip_version=$(sed -n "s/^ *pip='\([0-9.]*\)',\$/\1/p" "$ansible_test_dir/_internal/python_requirements.py" | head -n1)
[[ -n $pip_version ]] || die "cannot tell which pip version ansible-test bootstraps"
cache_dir=$HOME/.ansible/test/cache
mkdir -p "$cache_dir"
install -m 0644 "$REPO_ROOT/tools/get_pip_standin.py" "$cache_dir/get_pip_${pip_version//./_}.py"

cd "$STAGED_COLLECTION"
log "ansible-test sanity --python $python_version in $STAGED_COLLECTION"
ansible-test sanity --python "$python_version" --requirements --color no "$@"
