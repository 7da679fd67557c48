#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: vault_ca_publication
short_description: Read the trust bundle, CRL bundle and signing CA of an OpenBao or HashiCorp Vault PKI mount
version_added: "1.1.0"
description:
  - The C(vault) backend's counterpart of what the M(fleet.mtls.ca) role publishes for the local backend
    (M(fleet.mtls.ca_rotation) with O(fleet.mtls.ca_rotation#module:read_publication=true)), under the same
    names, so the identity role installs either alike.
  - C(trust-bundle.pem) holds every non-retired issuer of the mount (neither revoked nor expired), roots
    first, then each level below them; C(crl-bundle.pem) holds each of those issuers' CRL in the same order
    (NGINX checks the CRL of every certificate of a chain), each checked to be signed by its issuer and not
    past its nextUpdate; C(signing-ca.pem) is the issuer that signs (O(issuer), default the mount's default
    issuer).
  - Read-only; the token needs C(list) on C(<mount>/issuers) and C(read) on C(<mount>/issuer/+) and
    C(<mount>/issuer/+/crl) (see the policy in the collection's docs/vault.md).
author:
  - fleet.mtls maintainers (!UNKNOWN)
options:
  issuer:
    description:
      - Issuer (name or ID) that signs, whose certificate is C(signing-ca.pem). Default - the mount's default
        issuer.
    type: str
  crls:
    description:
      - CRLs (PEM) for issuers the engine holds no key for and so publishes no CRL for - the local root of a
        mount that imported the local issuing CA with its chain (M(fleet.mtls.vault_pki_mount)
        O(fleet.mtls.vault_pki_mount#module:ca_source=import)); for example the local CA's C(crl-bundle.pem).
        Each is matched to its issuer by name and signature; CRLs of other issuers are ignored.
      - Without one, such an issuer fails the task naming it.
    type: str
  refresh_crls:
    description:
      - First rebuild the mount's CRLs (C(<mount>/crl/rotate)) when the CRL of any non-retired issuer with a key
        in the engine reaches its nextUpdate within O(crl_refresh_days); then read the publication. For
        C(fleet.mtls.rotate).
    type: bool
    default: false
  crl_refresh_days:
    description: The refresh window of O(refresh_crls), in days (the playbooks' C(mtls_ca_crl_refresh_days)).
    type: int
    default: 2
extends_documentation_fragment:
  - fleet.mtls.attributes
  - fleet.mtls.vault
attributes:
  check_mode:
    support: full
    details: Reads only, in check mode too (with O(refresh_crls), reports C(crls_due) and C(changed) without
      rebuilding).
  diff_mode:
    support: none
seealso:
  - module: fleet.mtls.vault_certificate
  - module: fleet.mtls.vault_pki_mount
  - module: fleet.mtls.install_identity
"""

EXAMPLES = r"""
- name: Read what the engine publishes
  fleet.mtls.vault_ca_publication:
    url: https://bao.example.com:8200
    ca_file: /etc/fleet-mtls/bao-ca.pem
    token: "{{ mtls_vault_token }}"
    mount: pki-fleet
  run_once: true
  register: engine

- name: Install it on every host
  fleet.mtls.install_identity:
    dir: /etc/mtls
    trust_bundle_content: "{{ engine.publication['trust-bundle.pem'] }}"
    crl_content: "{{ engine.publication['crl-bundle.pem'] }}"
"""

RETURN = r"""
publication:
  description: The published texts by file name - C(trust-bundle.pem), C(crl-bundle.pem), C(signing-ca.pem).
  returned: always
  type: dict
publication_missing:
  description: Always empty (a mount without the signing issuer fails); the local backend's key of that name.
  returned: always
  type: list
  elements: str
issuers:
  description:
    - Every issuer of the mount - C(id), C(name), C(subject), C(not_after), C(published) and, when not
      published, the C(reason) (C(revoked), C(expired on ...)).
  returned: always
  type: list
  elements: dict
signing_issuer:
  description: Subject of the issuer that signs.
  returned: always
  type: str
crls_due:
  description: With O(refresh_crls), the issuers whose CRL was due (and so rebuilt, outside check mode).
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.mtls.plugins.module_utils.module_common import run_module
from ansible_collections.fleet.mtls.plugins.module_utils.vault_pki import (
    connect, module_spec, publication, refresh_crls)


def read(module):
    pki = connect(module.params)
    refreshed = {"changed": False, "crls_due": []}
    if module.params["refresh_crls"]:
        refreshed = refresh_crls(pki, module.params["crl_refresh_days"], check_mode=module.check_mode)
    result = publication(pki, issuer_ref=module.params["issuer"], crls=module.params["crls"])
    result.update(changed=refreshed["changed"], crls_due=refreshed["crls_due"], publication_missing=[])
    return result


def main():
    module = AnsibleModule(**module_spec(dict(issuer=dict(type="str"), crls=dict(type="str"),
                                              refresh_crls=dict(type="bool", default=False),
                                              crl_refresh_days=dict(type="int", default=2))))
    run_module(module, read)


if __name__ == "__main__":
    main()
