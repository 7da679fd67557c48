# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host's manifest: what identities it holds, with their settings, and their consumers
(``<mtls_dir>/manifest.json``, docs/consumers.md "The manifest").

The identity role records every identity it installs and every consumer it applies, whoever declared
them (the inventory, a user's ``include_role`` vars). Maintenance runs act on the union of what the
inventory declares and what the manifest holds (``with_recorded``), so an identity a user's play created
is renewed, re-issued after a CA rotation and reported like any other, until it is retired explicitly
(``retire``: its files and its entry removed). The manifest holds settings, never key material::

    {"format": 1,
     "identities": [{"name": "myapp", "profile": "client", "common_name": "myapp", "sans": [], ...}],
     "consumers": [{"name": "myapp", "identities": ["myapp"], "apply": {...}}]}
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError
from ansible_collections.fleet.mtls.plugins.module_utils.fsutil import atomic_write, read_file
from ansible_collections.fleet.mtls.plugins.module_utils.host_layout import HostLayout, check_identity_name

MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = 1
MANIFEST_MODE = 0o644
# What a resolved identity entry (identity_plan.resolve_identity) carries that a renewal needs.
IDENTITY_KEYS = ("name", "profile", "common_name", "sans", "key_type", "validity_days", "renew_fraction",
                 "renew_days", "new_key_on_renew", "owner", "group", "mode", "central_key")


def manifest_path(directory):
    return os.path.join(directory, MANIFEST_FILE)


def empty_manifest():
    return {"format": MANIFEST_FORMAT, "identities": [], "consumers": []}


def _problem(path, text):
    return MtlsError("host manifest %s %s: fix it, or remove it and run fleet.mtls.site to record the "
                     "declared identities again" % (path, text), path=path)


def read_manifest(directory):
    """The manifest under ``directory`` (an empty one when there is none). A file that cannot be parsed
    fails: silently ignoring it would stop renewing the identities it lists."""
    path = manifest_path(directory)
    return parse_manifest(path, read_file(path, "host manifest"))


def parse_manifest(path, data):
    """The manifest in ``data`` (bytes read from ``path``; None: no file, an empty manifest), checked
    as read_manifest checks it."""
    if data is None:
        return empty_manifest()
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise _problem(path, "is not valid JSON (%s)" % exc)
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise _problem(path, "is not a format %d manifest" % MANIFEST_FORMAT)
    for key in ("identities", "consumers"):
        entries = manifest.get(key)
        if not isinstance(entries, list) or not all(_named(entry) for entry in entries):
            raise _problem(path, "has no list of named %s" % key)
    for entry in manifest["identities"]:
        try:
            check_identity_name(entry["name"])
        except MtlsError as exc:
            raise _problem(path, "lists an identity with %s" % exc)
    return {"format": MANIFEST_FORMAT, "identities": manifest["identities"], "consumers": manifest["consumers"]}


def _recorded_identity(entry):
    return dict((key, entry.get(key)) for key in IDENTITY_KEYS if key in entry)


def _by_name(current, updates):
    merged = dict((entry["name"], entry) for entry in current)
    for entry in updates:
        merged[entry["name"]] = entry
    return [merged[name] for name in sorted(merged)]


def _named(value):
    return isinstance(value, dict) and isinstance(value.get("name"), str)


def check_entries(values, what):
    """``values`` as entries to record (mappings with a name), else a clear error naming ``what``."""
    if not isinstance(values, (list, tuple)) or not all(_named(value) for value in values):
        raise MtlsError("%s to record must be entries (mappings with a name)" % what)
    return list(values)


def merged(manifest, identities=(), consumers=()):
    """``manifest`` with ``identities`` (resolved entries) and ``consumers`` recorded: entries of the
    same name replaced, the others kept."""
    return {"format": MANIFEST_FORMAT,
            "identities": _by_name(manifest["identities"], [_recorded_identity(e) for e in identities]),
            "consumers": _by_name(manifest["consumers"], list(consumers))}


def render(manifest):
    return json.dumps(manifest, indent=1, sort_keys=True) + "\n"


def write_manifest(directory, manifest, check_mode=False):
    """Write ``manifest`` when it differs from the file; returns whether it changed."""
    path = manifest_path(directory)
    wanted = render(manifest)
    existing = read_file(path, "host manifest")
    if existing is not None and existing.decode("utf-8", "replace") == wanted:
        return False
    if not check_mode:
        atomic_write(path, wanted.encode("utf-8"), MANIFEST_MODE)
    return True


def records_change(manifest, identities=(), consumers=()):
    """Whether recording ``identities`` and ``consumers`` would change ``manifest`` (as read from the
    host): the manifest module's own comparison, made before its call so a converged host needs none."""
    return render(merged(manifest, identities, consumers)) != render(manifest)


def with_recorded(declared, recorded):
    """The identities (or consumers) a run acts on: every declared entry, then every recorded one whose
    name is not declared."""
    names = set(entry.get("name") for entry in declared or [] if isinstance(entry, dict))
    return list(declared or []) + [entry for entry in recorded or [] if entry.get("name") not in names]


def retire(directory, names=(), consumer_names=(), declared_names=(), declared_consumers=(), check_mode=False):
    """Remove the identities ``names`` from the host (their key, staged key, certificate, chain and CSR,
    and their manifest entries) and the consumers ``consumer_names`` from the manifest (their services
    are left alone). Refused, with nothing removed, for an identity or consumer still declared (the next
    run would record it again) and for an identity a remaining consumer reads. Returns
    {"changed", "removed_files", "retired", "retired_consumers"}."""
    manifest = read_manifest(directory)
    problems = []
    for name in names:
        check_identity_name(name)
        if name in declared_names:
            problems.append("identity %s is still declared for this host: remove it from mtls_identities first" % name)
        for consumer in manifest["consumers"]:
            if consumer["name"] not in consumer_names and name in (consumer.get("identities") or []):
                problems.append("identity %s is read by consumer %s: retire that consumer too, or remove the "
                                "identity from it first" % (name, consumer["name"]))
    for name in consumer_names:
        if name in declared_consumers:
            problems.append("consumer %s is still declared for this host: remove it from mtls_consumers first" % name)
    if problems:
        raise MtlsError("not retiring: " + "; ".join(problems))
    removed = []
    for name in names:
        layout = HostLayout(directory, name)
        for path in (layout.key, layout.staged_key, layout.certificate, layout.chain, layout.csr):
            if os.path.lexists(path):
                removed.append(path)
                if not check_mode:
                    os.unlink(path)  # a link is removed itself, never followed
    kept = dict(manifest,
                identities=[entry for entry in manifest["identities"] if entry["name"] not in names],
                consumers=[entry for entry in manifest["consumers"] if entry["name"] not in consumer_names])
    retired = sorted(set(names) & set(entry["name"] for entry in manifest["identities"]))
    retired_consumers = sorted(set(consumer_names) & set(entry["name"] for entry in manifest["consumers"]))
    changed_manifest = write_manifest(directory, kept, check_mode) if retired or retired_consumers else False
    return {"changed": bool(removed) or changed_manifest, "removed_files": removed, "retired": retired,
            "retired_consumers": retired_consumers}
