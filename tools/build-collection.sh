#!/bin/bash
# Build the collection tarball into .build/dist and check that nothing but collection
# content went in (no venvs, caches, build trees, VCS data or container images).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
activate_venv

dist_dir=$BUILD_DIR/dist
rm -rf "$dist_dir"
mkdir -p "$dist_dir"
# Build from the staged copy: it holds exactly the tracked and not-ignored files.
ansible-galaxy collection build --force --output-path "$dist_dir" "$STAGED_COLLECTION" >/dev/null
tarball=$(find "$dist_dir" -name 'fleet-mtls-*.tar.gz' -print -quit)
[[ -n $tarball ]] || die "ansible-galaxy collection build produced no tarball"

forbidden='(^|/)(\.build|\.venv|\.cache|\.git|\.ansible|\.pytest_cache|__pycache__|\.ci|demo/\.state|tests/output)(/|$)|\.(pyc|tar|tar\.gz|qcow2|img)$'
if offenders=$(tar -tzf "$tarball" | grep -E "$forbidden"); then
    die "$tarball contains files that must not ship:"$'\n'"$offenders"
fi
for required in MANIFEST.json FILES.json README.md; do
    tar -tzf "$tarball" | grep -qx "$required" || die "$tarball lacks $required"
done
log "built $(basename "$tarball"): $(tar -tzf "$tarball" | grep -vc '/$') files, $(du -h "$tarball" | cut -f1)"
