"""Make ``ansible_collections.fleet.mtls`` importable for the unit tests.

Order of preference:
1. a collections root on ANSIBLE_COLLECTIONS_PATH that holds fleet.mtls (``make unit``
   stages the collection to .build/collections and points the variable there);
2. the collections tree this checkout already sits in (an installed or staged copy);
3. otherwise a symlink tree under .build/pytest-collections pointing at this checkout,
   so a plain ``pytest tests/unit`` always tests the working tree, never a stale copy.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

COLLECTION_ROOT = Path(__file__).resolve().parents[2]
NAMESPACE, NAME = "fleet", "mtls"


def _holds_collection(collections_root: Path) -> bool:
    return (collections_root / "ansible_collections" / NAMESPACE / NAME / "galaxy.yml").is_file()


def _symlinked_collections_root() -> Path:
    link_root = COLLECTION_ROOT / ".build" / "pytest-collections"
    link = link_root / "ansible_collections" / NAMESPACE / NAME
    if not (link.is_symlink() and link.resolve() == COLLECTION_ROOT):
        link.parent.mkdir(parents=True, exist_ok=True)
        # Build the link aside and rename it into place: parallel runs never see a half-made link.
        staging = link.with_name(f".{NAME}.{os.getpid()}")
        staging.unlink(missing_ok=True)
        staging.symlink_to(COLLECTION_ROOT, target_is_directory=True)
        os.replace(staging, link)
    return link_root


def collections_root() -> Path:
    for entry in os.environ.get("ANSIBLE_COLLECTIONS_PATH", "").split(os.pathsep):
        if entry and _holds_collection(Path(entry)):
            return Path(entry)
    if COLLECTION_ROOT.parent.name == NAMESPACE and COLLECTION_ROOT.parents[1].name == "ansible_collections":
        return COLLECTION_ROOT.parents[2]
    return _symlinked_collections_root()


_ROOT = str(collections_root())
if _ROOT not in sys.path:
    # Ahead of site-packages, whose ansible_collections (from the ansible package) must
    # not shadow ours; both merge into one namespace package.
    sys.path.insert(0, _ROOT)
