# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whether a service has loaded the current contents of the files it reads.

A service role's reload handler records a fingerprint (SHA-256) of every file the service reads
(configuration, certificates, keys, trust bundle, CRLs) right after the service re-read them. On
every run the role compares the files with that record; any difference means a reload is still
owed. This catches what change notifications cannot: a run that installed a renewed certificate
and then failed or was killed before its handler ran leaves new files on disk that the next run
sees as unchanged, and the service would serve the old certificate until it expires.

The record holds digests only, never file contents, so it may live in a world-readable place.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os

from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError
from ansible_collections.fleet.mtls.plugins.module_utils.fsutil import atomic_write, ensure_dir, read_file

RECORD_FORMAT = 1
MISSING = "missing"
# Where each service's record lives on a host, and which inventory group puts the service there.
RECORDS_DIR = "/var/lib/fleet-mtls/loaded"
SERVICE_GROUPS = (("mtls_nginx", "nginx"), ("mtls_mosquitto", "mosquitto"))


def record_path(service):
    """The record of ``service`` (``nginx``, ``mosquitto``): ``RECORDS_DIR/<service>.json``."""
    known = [name for dummy, name in SERVICE_GROUPS]
    if service not in known:
        raise MtlsError("unknown service %r: records are kept for %s" % (service, ", ".join(known)))
    return os.path.join(RECORDS_DIR, service + ".json")


def service_records(group_names):
    """{service: record path} of the services a host's groups put on it."""
    groups = set(group_names or [])
    return dict((service, record_path(service)) for group, service in SERVICE_GROUPS if group in groups)


def fingerprints(paths):
    """{path: sha256 hex, or MISSING} for every path, in the order given."""
    result = {}
    for path in paths:
        data = read_file(path, "file")
        result[path] = MISSING if data is None else hashlib.sha256(data).hexdigest()
    return result


def read_record(state_file):
    """The fingerprints recorded at the last reload, or None when there is no usable record.

    A record that cannot be parsed counts as no record: the safe answer is "reload owed".
    """
    data = read_file(state_file, "loaded-state record")
    if data is None:
        return None
    try:
        record = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT \
            or not isinstance(record.get("files"), dict):
        return None
    return record["files"]


def pending_paths(current, state_file):
    """(record_found, paths whose digest in ``current`` differs from the record): what the service has not loaded.

    ``current`` is what fingerprints() returns, so one call reads and hashes each file once.
    """
    recorded = read_record(state_file)
    if recorded is None:
        return False, list(current)
    return True, [path for path, digest in current.items() if recorded.get(path) != digest]


def render_record(current):
    return json.dumps({"format": RECORD_FORMAT, "files": current}, indent=1, sort_keys=True) + "\n"


def record_loaded(current, state_file, check_mode=False):
    """Record the fingerprints ``current`` as loaded; returns True when the record changed."""
    wanted = render_record(current)
    existing = read_file(state_file, "loaded-state record")
    if existing is not None and existing.decode("utf-8", "replace") == wanted:
        return False
    if not check_mode:
        ensure_dir(os.path.dirname(os.path.abspath(state_file)), mode=0o755)
        atomic_write(state_file, wanted, mode=0o644)
    return True
