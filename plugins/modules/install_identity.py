#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: install_identity
short_description: Install a signed certificate, its chain, the trust bundle and CRLs on a host in one validated step
version_added: "0.1.0"
description:
  - Runs on each managed host after M(fleet.mtls.certificate) signed the CSR made by M(fleet.mtls.csr).
  - Everything is verified before any file is touched. The certificate must belong to the staged
    key C(<dir>/private/<name>.key.new) or to the live key C(<dir>/private/<name>.key), be valid
    now, chain up to a CA of the trust bundle, and not be revoked by the CRLs being installed.
  - Then the trust bundle, the CRLs, the promoted key, C(certs/<name>.crt) and C(certs/<name>.chain.pem)
    are written in one staged commit (every file is complete before the first rename), so a failure
    leaves the live files as they were. A staged key is promoted only together with its certificate.
  - Installing what is already installed changes nothing.
  - Without O(certificate) only the trust bundle and/or CRLs are installed (one task per host, not per identity).
author:
  - fleet.mtls maintainers (!UNKNOWN)
options:
  name:
    description:
      - Identity name (the same as for M(fleet.mtls.csr)). Required with O(certificate).
    type: str
  dir:
    description:
      - Base directory of the on-host layout.
    type: path
    default: /etc/mtls
  certificate:
    description:
      - The signed leaf certificate (PEM).
    type: str
  chain:
    description:
      - PEM chain to serve, the leaf followed by its intermediates (a chain without the leaf is
        accepted and the leaf put in front). Written to C(certs/<name>.chain.pem); defaults to the
        leaf alone.
    type: str
  trust_bundle:
    description:
      - Path of the trust bundle on the host. The chain is verified against O(trust_bundle_content)
        when given, else against this file.
      - Defaults to C(<dir>/trust-bundle.pem).
    type: path
  trust_bundle_content:
    description:
      - PEM CA certificates to install as the trust bundle (every active CA generation, roots and intermediates).
    type: str
  crl:
    description:
      - Path of the CRL bundle on the host. Defaults to C(<dir>/crl.pem).
    type: path
  crl_content:
    description:
      - PEM CRLs to install, one for every CA of the trust bundle. Each must be signed by a CA of
        the trust bundle; a CA without a CRL gives a warning (NGINX rejects clients of such a CA).
    type: str
  owner:
    description:
      - Owner of the installed files (name or uid).
    type: str
  group:
    description:
      - Group of the installed files (name or gid).
    type: str
  mode:
    description:
      - Mode of the private key file, octal string.
    type: raw
    default: "0600"
  certificate_mode:
    description:
      - Mode of the certificate, chain, trust bundle and CRL files, octal string.
    type: raw
    default: "0644"
notes:
  - In check mode everything is verified and the changes are reported, nothing is written.
  - Supports diff mode (serials, subjects and CRL numbers; never key material).
extends_documentation_fragment:
  - fleet.mtls.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
requirements:
  - cryptography >= 38
seealso:
  - module: fleet.mtls.csr
  - module: fleet.mtls.certificate
"""

EXAMPLES = r"""
- name: Install the signed web identity, trust bundle and CRLs
  fleet.mtls.install_identity:
    name: web
    certificate: "{{ signed.certificate }}"
    chain: "{{ signed.chain }}"
    trust_bundle_content: "{{ mtls_trust_bundle }}"
    crl_content: "{{ mtls_crl_bundle }}"
  register: installed

- name: Refresh only the CRLs
  fleet.mtls.install_identity:
    crl_content: "{{ mtls_crl_bundle }}"
"""

RETURN = r"""
changes:
  description: What changed, so consumers can choose reload or restart.
  returned: always
  type: dict
  contains:
    certificate:
      description: The leaf or chain file changed.
      type: bool
    key:
      description: The private key changed (staged key promoted).
      type: bool
    trust_bundle:
      description: The trust bundle changed.
      type: bool
    crl:
      description: The CRL bundle changed.
      type: bool
key_promoted:
  description: Whether the staged key was promoted to the live key.
  returned: always
  type: bool
serial:
  description: Serial number of the installed certificate (lower-case hex), V(null) without O(certificate).
  returned: always
  type: str
not_after:
  description: Expiry of the installed certificate (ISO 8601 UTC), V(null) without O(certificate).
  returned: always
  type: str
paths:
  description: Files this module manages with these options.
  returned: always
  type: dict
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.mtls.plugins.module_utils.compat import isoformat, not_valid_after
from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError
from ansible_collections.fleet.mtls.plugins.module_utils.fsutil import (
    StagedFiles, ensure_dir, file_attributes_differ, parse_mode, read_file, resolve_gid, resolve_uid, set_file_attributes)
from ansible_collections.fleet.mtls.plugins.module_utils.inspect import (
    REVOCATION_REVOKED, check_revocation, find_issuer, load_certificates, load_crls, serial_hex, verify_chain)
from ansible_collections.fleet.mtls.plugins.module_utils.keys import load_private_key, same_public_key
from ansible_collections.fleet.mtls.plugins.module_utils.module_common import run_module
from ansible_collections.fleet.mtls.plugins.module_utils.names import subject_string
from ansible_collections.fleet.mtls.plugins.module_utils.renewal import HostLayout, check_identity_name

try:
    from cryptography.hazmat.primitives import serialization
    HAS_CRYPTOGRAPHY = True
except ImportError:
    HAS_CRYPTOGRAPHY = False


def _pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def _chain_pem(leaf, chain_text):
    """Leaf first, then the intermediates given (the leaf is prepended when missing)."""
    if not chain_text:
        return [leaf]
    chain = load_certificates(chain_text, "chain")
    if _pem(chain[0]) != _pem(leaf):
        if any(_pem(cert) == _pem(leaf) for cert in chain):
            raise MtlsError("chain holds the certificate but not first: it must start with the leaf")
        chain = [leaf] + chain
    return chain


class Plan:
    """Verified content to write: (path, bytes, mode) per file, and which of them changed."""

    def __init__(self):
        self.files = []
        self.changes = {"certificate": False, "key": False, "trust_bundle": False, "crl": False}
        self.remove_after_commit = []
        self.diff_before, self.diff_after = [], []

    def want(self, kind, path, data, mode, describe_before=None, describe_after=None):
        current = read_file(path, kind.replace("_", " "))
        if current != data:
            self.changes[kind] = True
            self.diff_before.append("%s: %s" % (path, "absent" if current is None else (describe_before or "other content")))
            self.diff_after.append("%s: %s" % (path, describe_after or "new content"))
        self.files.append((kind, path, data, mode, current != data))


def _load_key(path, what):
    data = read_file(path, what)
    if data is None:
        return None, None
    return load_private_key(data, source="%s %s" % (what, path)), data


def _plan_trust(params, layout, plan, cert_mode):
    """Trust anchors to verify against, planning the bundle's installation when content is given."""
    bundle_path = params["trust_bundle"] or layout.trust_bundle
    if params["trust_bundle_content"] is not None:
        anchors = load_certificates(params["trust_bundle_content"], "trust_bundle_content")
        data = b"".join(_pem(cert) for cert in anchors)
        plan.want("trust_bundle", bundle_path, data, cert_mode,
                  describe_after="%d CA certificate(s): %s" % (
                      len(anchors), "; ".join(subject_string(cert.subject) for cert in anchors)))
        return anchors, bundle_path
    data = read_file(bundle_path, "trust bundle")
    if data is None:
        return None, bundle_path
    return load_certificates(data, "trust bundle %s" % bundle_path), bundle_path


def _plan_crls(params, layout, plan, anchors, cert_mode, module):
    if params["crl_content"] is None:
        return []
    crls = load_crls(params["crl_content"], "crl_content")
    if anchors is None:
        raise MtlsError("cannot check crl_content: no trust bundle (give trust_bundle_content or install %s first)"
                        % (params["trust_bundle"] or layout.trust_bundle))
    covered = []
    for position, crl in enumerate(crls, 1):
        issuer = next((ca for ca in anchors if ca.subject == crl.issuer and crl.is_signature_valid(ca.public_key())),
                      None)
        if issuer is None:
            raise MtlsError("CRL #%d of crl_content (issuer %s) is not signed by a CA of the trust bundle"
                            % (position, crl.issuer.rfc4514_string()))
        covered.append(issuer)
    for ca in anchors:
        if not any(_pem(ca) == _pem(issuer) for issuer in covered):
            module.warn("no CRL in crl_content for CA %s: servers checking CRLs will reject its clients"
                        % subject_string(ca.subject))
    data = b"".join(crl.public_bytes(serialization.Encoding.PEM) for crl in crls)
    plan.want("crl", params["crl"] or layout.crl, data, cert_mode,
              describe_after="%d CRL(s)" % len(crls))
    return crls


def _plan_identity(params, layout, plan, anchors, crls, key_mode, cert_mode):
    leaf = load_certificates(params["certificate"], "certificate")[0]
    chain = _chain_pem(leaf, params["chain"])
    staged_key, staged_pem = _load_key(layout.staged_key, "staged private key")
    live_key, dummy = _load_key(layout.key, "private key")
    promote = staged_key is not None and same_public_key(staged_key, leaf.public_key())
    if not promote and (live_key is None or not same_public_key(live_key, leaf.public_key())):
        tried = ["the %s %s" % (what, path) for what, path, key in (
            ("staged key", layout.staged_key, staged_key), ("live key", layout.key, live_key)) if key is not None]
        raise MtlsError("certificate %s (serial %s) does not belong to %s; nothing was installed"
                        % (subject_string(leaf.subject), serial_hex(leaf.serial_number),
                           " nor ".join(tried) or "any key (%s and %s are missing)" % (layout.staged_key, layout.key)))
    if anchors is None:
        raise MtlsError("cannot verify the certificate: trust bundle %s does not exist (give trust_bundle_content)"
                        % (params["trust_bundle"] or layout.trust_bundle))
    ok, reason, path = verify_chain(leaf, chain[1:], anchors)
    if not ok:
        at_fault = path[-1] if path else leaf
        raise MtlsError("certificate %s does not verify against the trust bundle: %s (at %s); nothing was installed"
                        % (subject_string(leaf.subject), reason, subject_string(at_fault.subject)))
    if crls:
        issuer = path[1] if len(path) > 1 else find_issuer(leaf, anchors)
        if issuer is not None and check_revocation(leaf, issuer, crls)["status"] == REVOCATION_REVOKED:
            raise MtlsError("certificate %s (serial %s) is revoked by the CRLs being installed; nothing was installed"
                            % (subject_string(leaf.subject), serial_hex(leaf.serial_number)))
    serial = serial_hex(leaf.serial_number)
    if promote:
        plan.want("key", layout.key, staged_pem, key_mode, describe_after="staged key promoted")
        # Also when the live key already equals it (a promotion interrupted before this cleanup).
        plan.remove_after_commit.append(layout.staged_key)
        plan.diff_before.append("%s: present" % layout.staged_key)
        plan.diff_after.append("%s: absent (promoted)" % layout.staged_key)
    installed = read_file(layout.certificate, "certificate")
    plan.want("certificate", layout.certificate, _pem(leaf), cert_mode,
              describe_before=_serial_of(installed), describe_after="serial %s" % serial)
    plan.want("certificate", layout.chain, b"".join(_pem(cert) for cert in chain), cert_mode,
              describe_after="serial %s + %d CA certificate(s)" % (serial, len(chain) - 1))
    return leaf, promote


def _serial_of(data):
    try:
        return "serial %s" % serial_hex(load_certificates(data, "installed certificate")[0].serial_number)
    except MtlsError:
        return "unreadable certificate"


def install(module):
    params = module.params
    if params["certificate"] is None and params["trust_bundle_content"] is None and params["crl_content"] is None:
        raise MtlsError("nothing to install: give certificate, trust_bundle_content or crl_content")
    if params["certificate"] is not None:
        check_identity_name(params["name"])
    layout = HostLayout(params["dir"], params["name"] or "unused")
    key_mode = parse_mode(params["mode"], 0o600)
    cert_mode = parse_mode(params["certificate_mode"], 0o644)
    owner, group = params["owner"], params["group"]
    resolve_uid(owner)
    resolve_gid(group)

    plan = Plan()
    anchors, bundle_path = _plan_trust(params, layout, plan, cert_mode)
    crls = _plan_crls(params, layout, plan, anchors, cert_mode, module)
    leaf, promote = None, False
    if params["certificate"] is not None:
        leaf, promote = _plan_identity(params, layout, plan, anchors, crls, key_mode, cert_mode)

    attributes_changed = [path for kind, path, data, mode, differs in plan.files
                          if not differs and file_attributes_differ(path, mode, owner, group)]
    if params["certificate"] is not None and not promote and file_attributes_differ(layout.key, key_mode, owner, group):
        attributes_changed.append(layout.key)
    for path in attributes_changed:
        plan.diff_before.append("%s: other owner/group/mode" % path)
        plan.diff_after.append("%s: owner/group/mode as asked" % path)

    changed = any(plan.changes.values()) or bool(attributes_changed) or bool(plan.remove_after_commit)
    if changed and not module.check_mode:
        for kind, path, data, mode, differs in plan.files:
            if differs:
                ensure_dir(os.path.dirname(path), 0o755)
        with StagedFiles() as staged:
            for kind, path, data, mode, differs in plan.files:
                if differs:
                    staged.stage(path, data, mode, owner, group)
            staged.commit()
        for path in plan.remove_after_commit:
            _remove(path)
        for path in attributes_changed:
            mode = key_mode if path == layout.key else cert_mode
            set_file_attributes(path, mode, owner, group)

    result = {
        "changed": changed,
        "changes": plan.changes,
        "key_promoted": promote,
        "serial": serial_hex(leaf.serial_number) if leaf is not None else None,
        "not_after": isoformat(not_valid_after(leaf)) if leaf is not None else None,
        "paths": {"certificate": layout.certificate if leaf is not None else None,
                  "chain": layout.chain if leaf is not None else None,
                  "key": layout.key if leaf is not None else None,
                  "trust_bundle": bundle_path,
                  "crl": params["crl"] or layout.crl},
    }
    if module._diff:
        result["diff"] = {"before": "".join(line + "\n" for line in plan.diff_before),
                          "after": "".join(line + "\n" for line in plan.diff_after)}
    return result


def _remove(path):
    try:
        os.unlink(path)
    except OSError as exc:
        raise MtlsError("installed, but could not remove the promoted staged key %s: %s" % (path, exc.strerror))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str"),
            dir=dict(type="path", default="/etc/mtls"),
            certificate=dict(type="str"),
            chain=dict(type="str"),
            trust_bundle=dict(type="path"),
            trust_bundle_content=dict(type="str"),
            crl=dict(type="path"),
            crl_content=dict(type="str"),
            owner=dict(type="str"),
            group=dict(type="str"),
            mode=dict(type="raw", default="0600"),
            certificate_mode=dict(type="raw", default="0644"),
        ),
        required_by={"certificate": "name", "chain": "certificate"},
        supports_check_mode=True,
    )
    run_module(module, install)


if __name__ == "__main__":
    main()
