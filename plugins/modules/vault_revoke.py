#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: vault_revoke
short_description: Revoke certificates an OpenBao or HashiCorp Vault PKI mount signed, and rebuild its CRLs
version_added: "1.1.0"
description:
  - The C(vault) backend's counterpart of M(fleet.mtls.crl) in the C(fleet.mtls.revoke) playbook.
  - Finds the certificate by O(serial), or every unexpired leaf whose subject CN equals O(common_name) (what the
    inventory declares for O(identity) on O(host); the engine's signer always sets that CN, so a certificate that
    only names it among its SANs is left alone; candidates come from one C(LIST <mount>/certs/detailed) where the
    engine has it), revokes those not yet revoked, then rebuilds the
    CRLs (C(<mount>/crl/rotate); revoking alone does not, measured on OpenBao 2.7.2).
  - Idempotent - already revoked certificates change nothing. Nothing matching fails naming the request and mount.
  - The engine records no reason code, so only O(reason=unspecified) is accepted.
author:
  - fleet.mtls maintainers (!UNKNOWN)
options:
  serial:
    description: Serial (hex, with or without colons) of one certificate. Exclusive with O(common_name).
    type: str
  common_name:
    description: Declared common name of O(identity) on O(host).
    type: str
  identity:
    description: Identity name, for messages.
    type: str
  host:
    description: Host name, for messages.
    type: str
  reason:
    description: RFC 5280 reason; only C(unspecified) with this backend.
    type: str
    default: unspecified
extends_documentation_fragment:
  - fleet.mtls.attributes
  - fleet.mtls.vault
attributes:
  check_mode:
    support: full
    details: Reads and reports what would be revoked; writes nothing.
  diff_mode:
    support: none
seealso:
  - module: fleet.mtls.crl
  - module: fleet.mtls.vault_ca_publication
"""

EXAMPLES = r"""
- name: Revoke web3's certificates
  fleet.mtls.vault_revoke:
    url: https://bao.example.com:8200
    token: "{{ mtls_vault_token }}"
    mount: pki-fleet
    identity: web3
    host: web3
    common_name: web3.example.com
"""

RETURN = r"""
revoked_now:
  description: Serials (engine form) revoked by this run.
  returned: always
  type: list
  elements: str
already_revoked:
  description: Matching serials that were revoked before.
  returned: always
  type: list
  elements: str
crl_rebuilt:
  description: Whether the CRLs were rebuilt.
  returned: always
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.mtls.plugins.module_utils.module_common import run_module
from ansible_collections.fleet.mtls.plugins.module_utils.vault_pki import (
    check_vault_reason, connect, find_revocations, module_spec, revoke)


def act(module):
    params = module.params
    check_vault_reason(params["reason"])
    pki = connect(params)
    found = find_revocations(pki, serial=params["serial"], common_name=params["common_name"],
                             identity=params["identity"], host=params["host"])
    result = revoke(pki, found["serials"], params["reason"], check_mode=module.check_mode)
    result["already_revoked"] = sorted(set(result["already_revoked"] + found["already_revoked"]))
    return result


def main():
    module = AnsibleModule(**module_spec(dict(serial=dict(type="str"), common_name=dict(type="str"),
                                              identity=dict(type="str"), host=dict(type="str"),
                                              reason=dict(type="str", default="unspecified"))))
    run_module(module, act)


if __name__ == "__main__":
    main()
