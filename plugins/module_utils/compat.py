# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shims over cryptography versions: managed hosts run Debian 12's cryptography 38, the controller
runs a current release. Timestamps are always returned as timezone-aware UTC datetimes."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import re

UTC = datetime.timezone.utc

_PEM_BLOCK = re.compile(
    br"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.*?-----END \1-----", re.DOTALL)


def utcnow():
    return datetime.datetime.now(UTC)


def _aware(value):
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _utc_attribute(obj, name):
    # cryptography >= 42 has *_utc attributes and deprecates the naive ones.
    utc_value = getattr(obj, name + "_utc", None)
    if utc_value is not None:
        return utc_value
    return _aware(getattr(obj, name))


def not_valid_before(cert):
    return _utc_attribute(cert, "not_valid_before")


def not_valid_after(cert):
    return _utc_attribute(cert, "not_valid_after")


def crl_last_update(crl):
    return _utc_attribute(crl, "last_update")


def crl_next_update(crl):
    return _utc_attribute(crl, "next_update")


def revocation_date(revoked):
    return _utc_attribute(revoked, "revocation_date")


def pem_blocks(data, label=None):
    """Split PEM text into its blocks (bytes, each ending with a newline).

    ``label`` keeps only blocks of that type, e.g. ``CERTIFICATE``. cryptography 38 has no
    multi-certificate loader, so bundles are split here.
    """
    if isinstance(data, str):
        data = data.encode("ascii", "replace")
    blocks = []
    for match in _PEM_BLOCK.finditer(data):
        if label is None or match.group(1).decode("ascii") == label:
            blocks.append(match.group(0).replace(b"\r\n", b"\n") + b"\n")
    return blocks


def isoformat(value):
    """ISO 8601 in UTC with a Z suffix, the one timestamp format of returns and the index."""
    if value is None:
        return None
    return _aware(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_isoformat(text):
    if text is None:
        return None
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
