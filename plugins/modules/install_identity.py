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
  - Without O(certificate) only the trust bundle and/or CRLs (and the manifest) are installed (one task per host,
    not per identity).
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
      - Mode of the private key file, octal string, one of V(0600), V(0640), V(0400) or V(0440). Any
        other mode (one that lets others read the key, or anyone but the owner write it) is refused.
    type: raw
    default: "0600"
  certificate_mode:
    description:
      - Mode of the certificate, chain, trust bundle and CRL files, octal string. Modes that let
        others than the owner write them are refused.
    type: raw
    default: "0644"
  manifest_identities:
    description:
      - Resolved identity entries to record in the host's manifest (C(<dir>/manifest.json)), as
        M(fleet.mtls.manifest) with O(fleet.mtls.manifest#module:state=present) records them (entries of the same
        name replaced, the others kept). The manifest is written last in the same staged commit, root's file
        with mode 0644 whatever O(owner) and O(group) are, and only when everything else of the call verified.
      - The identity role passes it on a host's last install call when the manifest is outdated, so recording
        it costs no call of its own.
    type: list
    elements: raw
  manifest_consumers:
    description:
      - Consumer declarations to record in the host's manifest, with O(manifest_identities).
    type: list
    elements: raw
notes:
  - In check mode everything is verified and the changes are reported, nothing is written.
  - Supports diff mode (serials, subjects and CRL numbers; never key material).
  - With O(certificate) the run holds the identity's lock C(<dir>/private/.<name>.lock), the same
    one M(fleet.mtls.csr) takes, from the first read to the last rename.
  - Symbolic links are never followed for the key, staged key, certificate, chain, trust bundle
    and CRL files it writes, nor for the C(private/) and C(certs/) directories; the module fails
    naming the link.
  - Renames happen in the order trust bundle, CRLs, key, leaf, chain, manifest. A run killed between
    two of them leaves a set that M(fleet.mtls.csr) reports as V(key_mismatch) or V(files_inconsistent),
    so the next renewal repairs it. Temporary files of this identity left by a killed run are
    removed (RV(leftovers_removed)).
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
manifest_changed:
  description: Whether the call changed the host's manifest (O(manifest_identities), O(manifest_consumers)).
    Not among RV(changes), since no service reads the manifest.
  returned: always
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
leftovers_removed:
  description: Temporary files of this identity that killed runs had left behind and this run removed.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.mtls.plugins.module_utils.host_identity import install_identity
from ansible_collections.fleet.mtls.plugins.module_utils.module_common import run_module


def install(module):
    return install_identity(module.params, check_mode=module.check_mode, diff=module._diff, warn=module.warn)


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
            manifest_identities=dict(type="list", elements="raw"),
            manifest_consumers=dict(type="list", elements="raw"),
        ),
        required_by={"certificate": "name", "chain": "certificate"},
        supports_check_mode=True,
    )
    run_module(module, install)


if __name__ == "__main__":
    main()
