#!/usr/bin/env bash
# Copy the collection to .build/collections/ansible_collections/fleet/mtls, where
# ansible-test needs it and where ANSIBLE_COLLECTIONS_PATH finds it for ansible,
# ansible-lint and molecule. The copy holds the tracked files plus untracked files
# that are not ignored (work in progress is tested too), and nothing else.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

mkdir -p "$STAGED_COLLECTION"
file_list=$(mktemp)
trap 'rm -f "$file_list"' EXIT

if git -C "$REPO_ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    # Deleted-but-tracked files are listed by ls-files; keep only what exists.
    git -C "$REPO_ROOT" ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' path; do
            if [[ -e $REPO_ROOT/$path || -L $REPO_ROOT/$path ]]; then printf '%s\0' "$path"; fi
        done >"$file_list"
    rsync -a --from0 --files-from="$file_list" \
        "$REPO_ROOT/" "$STAGED_COLLECTION/"
    # --files-from never deletes; drop staged files that are no longer in the list.
    comm -z -23 \
        <(cd "$STAGED_COLLECTION" && find . -path ./.git -prune -o ! -type d -printf '%P\0' | sort -z) \
        <(sort -z "$file_list") |
        (cd "$STAGED_COLLECTION" && xargs -0r rm -f --)
    find "$STAGED_COLLECTION" -mindepth 1 -type d -empty ! -path "$STAGED_COLLECTION/.git/*" -delete
else
    # Not a git checkout (e.g. an unpacked tarball): copy everything but build debris.
    rsync -a --delete \
        --exclude=/.build --exclude=/.venv --exclude=/.cache --exclude=/.git \
        --exclude=__pycache__ --exclude=.pytest_cache --exclude=/tests/output \
        --exclude=/demo/.state --exclude='/*.tar.gz' \
        "$REPO_ROOT/" "$STAGED_COLLECTION/"
fi
# ansible-test looks for the nearest .git upwards to list the collection's files; without
# one of its own the copy would resolve to this checkout, where .build/ is ignored.
if [[ ! -d $STAGED_COLLECTION/.git ]]; then
    git init --quiet "$STAGED_COLLECTION"
fi
log "collection staged at $STAGED_COLLECTION"
