#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: vault_pki_mount
short_description: Prepare an OpenBao or HashiCorp Vault PKI mount to sign for the fleet, idempotently
version_added: "1.1.0"
description:
  - Enables the PKI secrets engine at O(mount) when it is missing, and gives it a CA - either made inside the
    engine (O(ca_source=generate) - a root C(root-1) and an issuing intermediate C(issuing-1) signed by it,
    the default issuer; the keys never leave the engine) or the collection's existing local issuing CA
    imported with its chain (O(ca_source=import)), so a fleet migrates without re-trusting anything. A mount
    that already has issuers keeps them (O(ca_source=generate) never makes a second CA).
  - Writes one PKI role per profile - EKU of the profile (C(server_flag)/C(client_flag)), names only from
    the request (C(use_csr_sans=false), C(use_csr_common_name=false)), the SAN policy of O(policy) - as
    M(fleet.mtls.vault_certificate) expects.
  - Sets the default issuer's C(leaf_not_after_behavior) (C(err), or C(truncate) with
    O(truncate_to_issuer=true)), CRL expiry with automatic rebuild before it, and optional AIA/CRL URLs.
  - Only what differs is written; RV(changes) names each write.
author:
  - fleet.mtls maintainers (!UNKNOWN)
options:
  ca_source:
    description:
      - Where the mount's CA comes from when it has none.
    type: str
    choices: [generate, import]
    default: generate
  key_type:
    description:
      - Key type of the CAs made with O(ca_source=generate).
    type: str
    choices: [ec_p256, ec_p384, rsa2048, rsa3072, rsa4096, ed25519]
    default: ec_p256
  root_common_name:
    description: Common name of the generated root.
    type: str
    default: fleet.mtls root CA
  issuing_common_name:
    description: Common name of the generated issuing CA.
    type: str
    default: fleet.mtls issuing CA
  root_validity_days:
    description: Lifetime of the generated root.
    type: int
    default: 3650
  issuing_validity_days:
    description: Lifetime of the generated issuing CA.
    type: int
    default: 1095
  import_ca_path:
    description:
      - Local CA store (made by M(fleet.mtls.ca)) whose key and chain are imported with O(ca_source=import).
    type: path
  import_ca_passphrase:
    description:
      - Passphrase of the key in O(import_ca_path).
    type: str
  issuer_name:
    description:
      - Name the imported issuing CA gets in the engine; it becomes the default issuer.
    type: str
    default: issuing-1
  truncate_to_issuer:
    description:
      - Let the engine clip a leaf at the issuer's notAfter instead of refusing it.
    type: bool
    default: false
  policy:
    description:
      - SAN policy of every role (the engine's role parameters of the same names).
    type: dict
    suboptions:
      allowed_domains:
        description: Domains DNS names may be in.
        type: list
        elements: str
        default: []
      allow_subdomains:
        description: Names below O(policy.allowed_domains).
        type: bool
        default: true
      allow_bare_domains:
        description: The O(policy.allowed_domains) themselves.
        type: bool
        default: true
      allow_glob_domains:
        description: Globs in O(policy.allowed_domains).
        type: bool
        default: false
      allow_wildcard_certificates:
        description: Wildcard DNS names.
        type: bool
        default: false
      allow_any_name:
        description: Any DNS name (no domain policy).
        type: bool
        default: false
      allow_localhost:
        description: The name C(localhost).
        type: bool
        default: false
      allow_ip_sans:
        description: IP address SANs.
        type: bool
        default: true
      allowed_uri_sans:
        description: URI SANs allowed (globs, for example C(spiffe://example.org/*)).
        type: list
        elements: str
        default: []
      enforce_hostnames:
        description: DNS names must be valid host names.
        type: bool
        default: true
      max_validity_days:
        description: Longest leaf the role signs.
        type: int
        default: 90
      backdate_minutes:
        description: NotBefore is this many minutes in the past (clock skew).
        type: int
        default: 5
  crl_expiry_days:
    description: Lifetime of each CRL.
    type: int
    default: 7
  crl_refresh_days:
    description: The engine rebuilds a CRL when this many days of it remain.
    type: int
    default: 2
  issuing_certificates:
    description: AIA URLs of the issuers (written only when given).
    type: list
    elements: str
  crl_distribution_points:
    description: CRL distribution point URLs (written only when given).
    type: list
    elements: str
extends_documentation_fragment:
  - fleet.mtls.attributes
  - fleet.mtls.vault
  - fleet.mtls.vault.roles
attributes:
  check_mode:
    support: full
    details: Reads the mount and reports the writes it would make.
  diff_mode:
    support: full
    details: The diff lists the writes.
seealso:
  - module: fleet.mtls.vault_certificate
"""

EXAMPLES = r"""
- name: A PKI mount with its own root and issuing CA
  fleet.mtls.vault_pki_mount:
    url: https://bao.example.com:8200
    ca_file: /etc/fleet-mtls/bao-ca.pem
    token: "{{ mtls_vault_admin_token }}"
    mount: pki-fleet
    policy:
      allowed_domains: [example.com]
      allowed_uri_sans: ["spiffe://example.com/*"]

- name: Migrate the fleet's local CA into the engine without re-trusting
  fleet.mtls.vault_pki_mount:
    mount: pki-fleet
    ca_source: import
    import_ca_path: /var/lib/fleet-mtls/ca/issuing-1
    import_ca_passphrase: "{{ mtls_issuing_passphrase }}"
"""

RETURN = r"""
changes:
  description: The writes made (or, in check mode, that would be made), in order.
  returned: always
  type: list
  elements: str
mount:
  description: The mount path.
  returned: always
  type: str
default_issuer:
  description: Name of the issuer that signs by default.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.mtls.plugins.module_utils.keys import KEY_TYPES
from ansible_collections.fleet.mtls.plugins.module_utils.module_common import run_module
from ansible_collections.fleet.mtls.plugins.module_utils.vault_pki import (
    POLICY_SPEC, connect, import_material, module_spec, prepare_mount, role_policy, roles_spec)


def prepare(module):
    params = module.params
    key_pem = chain = None
    if params["ca_source"] == "import":
        key_pem, chain = import_material(params["import_ca_path"], params["import_ca_passphrase"])
    pki = connect(params)
    result = prepare_mount(
        pki, roles=params["roles"], role_policy=role_policy(params["policy"]), ca_source=params["ca_source"],
        key_type=params["key_type"], root_common_name=params["root_common_name"],
        issuing_common_name=params["issuing_common_name"], root_validity_days=params["root_validity_days"],
        issuing_validity_days=params["issuing_validity_days"], import_key_pem=key_pem, import_chain=chain,
        issuer_name=params["issuer_name"], truncate_to_issuer=params["truncate_to_issuer"],
        crl_expiry_days=params["crl_expiry_days"], crl_refresh_days=params["crl_refresh_days"],
        issuing_certificates=params["issuing_certificates"],
        crl_distribution_points=params["crl_distribution_points"], check_mode=module.check_mode)
    if module._diff:
        result["diff"] = {"before": {"changes": []}, "after": {"changes": result["changes"]}}
    return result


def main():
    module = AnsibleModule(
        required_if=[("ca_source", "import", ("import_ca_path", "import_ca_passphrase"))],
        **module_spec(dict(
            ca_source=dict(type="str", choices=["generate", "import"], default="generate"),
            key_type=dict(type="str", choices=list(KEY_TYPES), default="ec_p256", no_log=False),
            root_common_name=dict(type="str", default="fleet.mtls root CA"),
            issuing_common_name=dict(type="str", default="fleet.mtls issuing CA"),
            root_validity_days=dict(type="int", default=3650),
            issuing_validity_days=dict(type="int", default=1095),
            import_ca_path=dict(type="path"),
            import_ca_passphrase=dict(type="str", no_log=True),
            issuer_name=dict(type="str", default="issuing-1"),
            truncate_to_issuer=dict(type="bool", default=False),
            roles=roles_spec(),
            policy=dict(type="dict", options=POLICY_SPEC),
            crl_expiry_days=dict(type="int", default=7),
            crl_refresh_days=dict(type="int", default=2),
            issuing_certificates=dict(type="list", elements="str"),
            crl_distribution_points=dict(type="list", elements="str"),
        )))
    run_module(module, prepare)


if __name__ == "__main__":
    main()
