#!/usr/bin/env bash
# Build the collection tarball into .build/dist and check that nothing but collection
# content went in (no venvs, caches, build trees, VCS data or container images).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
activate_venv

dist_dir=$BUILD_DIR/dist
rm -rf "$dist_dir"
mkdir -p "$dist_dir"
# Build from the working tree, so galaxy.yml build_ignore is what keeps debris out.
ansible-galaxy collection build --force --output-path "$dist_dir" "$REPO_ROOT" >/dev/null
tarball=$(find "$dist_dir" -name 'fleet-mtls-*.tar.gz' -print -quit)
[[ -n $tarball ]] || die "ansible-galaxy collection build produced no tarball"

listing=$(tar -tzf "$tarball")
# Debris (venvs, caches, VCS data, images) and development files (test suites, scenarios, the
# demo, build tooling, linter settings): a user installs the collection, not its workshop.
debris='(^|/)(\.build|\.venv|\.cache|\.git|\.ansible|\.pytest_cache|__pycache__|\.ci|demo/\.state|tests/output)(/|$)|\.(pyc|tar|tar\.gz|qcow2|img)$'
development='^(tests|tools|demo|extensions)(/|$)|^(Makefile|\.ansible-lint|\.gitignore|requirements-dev\.txt|requirements-compat\.txt)$'
if offenders=$(grep -E "$debris|$development" <<<"$listing"); then
    die "$tarball contains files that must not ship:"$'\n'"$offenders"
fi
required=(MANIFEST.json FILES.json README.md LICENSE meta/runtime.yml requirements.txt bindep.txt
          meta/execution-environment.yml docs/architecture.md)
# Every role with a README and an argument spec; every playbook and plugin of the source tree.
for role_dir in "$REPO_ROOT"/roles/*/; do
    role=$(basename "$role_dir")
    required+=("roles/$role/README.md" "roles/$role/meta/argument_specs.yml")
done
for path in "$REPO_ROOT"/playbooks/*.yml "$REPO_ROOT"/plugins/*/*.py "$REPO_ROOT"/plugins/*/*.yml; do
    [[ -e $path ]] && required+=("${path#"$REPO_ROOT"/}")
done
for path in "${required[@]}"; do
    grep -qx "$path" <<<"$listing" || die "$tarball lacks $path"
done

# The documentation as a user gets it: the tarball installed into a fresh path, then every module,
# filter and role documentation rendered and its markup and references checked there.
installed=$BUILD_DIR/installed
rm -rf "$installed"
ANSIBLE_COLLECTIONS_PATH=$installed ansible-galaxy collection install --offline --force -p "$installed" "$tarball" >/dev/null
ANSIBLE_COLLECTIONS_PATH=$installed antsibull-docs lint-collection-docs --plugin-docs \
    "$installed/ansible_collections/fleet/mtls" || die "antsibull-docs found documentation errors (above)"
(cd "$REPO_ROOT" && antsibull-changelog lint) || die "antsibull-changelog found bad changelog fragments (above)"
log "built $(basename "$tarball"): $(grep -vc '/$' <<<"$listing") files, $(du -h "$tarball" | cut -f1)"
