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
forbidden='(^|/)(\.build|\.venv|\.cache|\.git|\.ansible|\.pytest_cache|__pycache__|\.ci|demo/\.state|tests/output)(/|$)|\.(pyc|tar|tar\.gz|qcow2|img)$'
if offenders=$(grep -E "$forbidden" <<<"$listing"); then
    die "$tarball contains files that must not ship:"$'\n'"$offenders"
fi
for required in MANIFEST.json FILES.json README.md; do
    grep -qx "$required" <<<"$listing" || die "$tarball lacks $required"
done
log "built $(basename "$tarball"): $(grep -vc '/$' <<<"$listing") files, $(du -h "$tarball" | cut -f1)"
