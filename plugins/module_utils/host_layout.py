# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The on-host layout of an identity and the identity-name rule (docs/architecture.md, "On-host layout").

``check_identity_name(name)`` is THE rule for identity names (they become file names): the host
modules, the local signer and the vault signer all call it. ``HostLayout(directory, name)`` gives
every path of one identity under the on-host directory (default ``/etc/mtls``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import re
import stat

from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError

_IDENTITY_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")


def check_identity_name(name):
    """An identity name becomes a file name: letters, digits, '.', '_', '-', no leading dot."""
    if not isinstance(name, str) or not _IDENTITY_NAME.match(name):
        raise MtlsError("invalid identity name %r: use 1-128 letters, digits, '.', '_' or '-', "
                        "not starting with '.' or '-'" % (name,))
    return name


class HostLayout:
    """Paths of one identity under the on-host directory (docs/architecture.md)."""

    def __init__(self, directory, name):
        check_identity_name(name)
        self.directory = directory
        self.name = name
        self.private_dir = os.path.join(directory, "private")
        self.certs_dir = os.path.join(directory, "certs")
        self.key = os.path.join(self.private_dir, name + ".key")
        self.staged_key = os.path.join(self.private_dir, name + ".key.new")
        self.certificate = os.path.join(self.certs_dir, name + ".crt")
        self.chain = os.path.join(self.certs_dir, name + ".chain.pem")
        self.csr = os.path.join(self.certs_dir, name + ".csr")
        # flock target of every csr/install_identity run for this identity; removed on release.
        self.lock = os.path.join(self.private_dir, "." + name + ".lock")
        self.trust_bundle = os.path.join(directory, "trust-bundle.pem")
        self.crl = os.path.join(directory, "crl.pem")


def installed_identities(directory):
    """``HostLayout`` of every identity installed under ``directory``, by name: each
    ``certs/<identity>.crt`` that is a regular file with a valid identity name. A missing
    ``certs`` directory means none."""
    certs = os.path.join(directory, "certs")
    try:
        names = sorted(os.listdir(certs))
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return []
        raise MtlsError("cannot list the installed certificates in %s: %s" % (certs, exc.strerror or exc))
    found = []
    for file_name in names:
        identity = file_name[:-len(".crt")]
        if not file_name.endswith(".crt") or not _IDENTITY_NAME.match(identity):
            continue
        if not stat.S_ISREG(os.lstat(os.path.join(certs, file_name)).st_mode):
            continue
        found.append(HostLayout(directory, identity))
    return found
