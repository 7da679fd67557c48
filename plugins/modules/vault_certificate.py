#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: vault_certificate
short_description: Sign a batch of CSRs through an OpenBao or HashiCorp Vault PKI engine
version_added: "1.1.0"
description:
  - The C(vault) signing backend - the counterpart of M(fleet.mtls.certificate) for a CA that lives in an
    OpenBao or HashiCorp Vault PKI secrets engine. Keys stay on the hosts, only CSRs travel; the results
    have the same shape, so M(fleet.mtls.install_identity) and the roles do not care which backend signed.
  - Every request is validated first (identity, host, profile, CSR signature, key type, SANs, validity
    against the issuer's expiry), then the token, the issuer and the PKI role of each profile are checked,
    and only then are the CSRs sent to C(<mount>/sign/<role>) (or C(<mount>/issuer/<issuer>/sign/<role>)
    with O(issuer)) on a bounded thread pool; the API has no batch call.
  - Signer policy - the subject is the request's C(common_name) (else the identity) and the SANs are the
    request's C(sans); both are sent explicitly and the CSR only gives the public key. A V(server) or
    V(server_client) certificate needs SANs and carries its common name among them. The PKI role of each
    profile must have C(use_csr_sans=false), C(use_csr_common_name=false) and the EKU flags of the profile
    (M(fleet.mtls.vault_pki_mount) makes such roles); the module refuses another role, and checks every
    returned certificate against the declaration. C(sign-verbatim) is never used.
  - A leaf never outlives its issuer - a longer validity fails before anything is sent, unless
    O(truncate_to_issuer=true).
  - A refused request (policy, role, TTL) stops the remaining ones and fails the task naming the request,
    host and identity; nothing is returned, so nothing is installed. Certificates the engine already signed
    in that call stay in its storage, unused (the message counts them).
author:
  - fleet.mtls maintainers (!UNKNOWN)
options:
  requests:
    description:
      - The batch to sign, a list of dictionaries with the keys C(identity) (str, required), C(host) (str),
        C(csr) (str, required, PEM), C(profile) (V(server) default, V(client), V(server_client)), C(sans)
        (list of C(DNS:), C(IP:), C(URI:), C(email:) names), C(common_name) (str), C(validity_days) (int).
      - Each identity may appear once per host. An empty list signs nothing and is no change.
    type: list
    elements: dict
    required: true
  issuer:
    description:
      - Issuer (name or ID) that signs, through C(<mount>/issuer/<issuer>/sign/<role>). Default - the mount's
        default issuer. A CA rotation names the new issuer here.
    type: str
  validity_days:
    description:
      - Lifetime of each leaf in days (a request's own C(validity_days) wins). The engine backdates NotBefore
        by the role's C(not_before_duration).
    type: int
    default: 90
  truncate_to_issuer:
    description:
      - End a leaf at the issuer's notAfter instead of failing when its validity reaches past it.
    type: bool
    default: false
  allowed_key_types:
    description:
      - Key types a CSR may have. Default - all supported types.
    type: list
    elements: str
    choices: [ec_p256, ec_p384, rsa2048, rsa3072, rsa4096, ed25519]
  concurrency:
    description:
      - How many signing requests are in flight at once (1 to 64).
    type: int
    default: 8
  return_chain:
    description:
      - Also return each leaf's full chain as C(certificates[].chain) (see RV(ca_chain)).
    type: bool
    default: false
extends_documentation_fragment:
  - fleet.mtls.attributes
  - fleet.mtls.vault
  - fleet.mtls.vault.roles
attributes:
  check_mode:
    support: full
    details: Validates every request and checks the token, issuer and roles (read-only calls); nothing is signed.
  diff_mode:
    support: full
    details: The diff lists the identities that are (or would be) issued.
seealso:
  - module: fleet.mtls.certificate
  - module: fleet.mtls.vault_pki_mount
  - module: fleet.mtls.install_identity
"""

EXAMPLES = r"""
- name: Sign the play batch's CSRs through OpenBao
  fleet.mtls.vault_certificate:
    url: [https://bao1.example.com:8200, https://bao2.example.com:8200]
    ca_file: /etc/fleet-mtls/bao-ca.pem
    token: "{{ mtls_vault_token }}"
    mount: pki-fleet
    requests:
      - identity: web
        host: web1
        csr: "{{ hostvars['web1'].web_csr.csr }}"
        common_name: web1.example.com
        sans: [DNS:web1.example.com, IP:192.0.2.10]
      - identity: backup-agent
        host: db1
        csr: "{{ hostvars['db1'].agent_csr.csr }}"
        profile: client
  run_once: true
  register: signed

- name: AppRole login, the new issuer of a CA rotation
  fleet.mtls.vault_certificate:
    role_id: "{{ mtls_vault_role_id }}"
    secret_id: "{{ mtls_vault_secret_id }}"
    issuer: issuing-2
    requests: "{{ mtls_sign_requests }}"
"""

RETURN = r"""
certificates:
  description:
    - One entry per request, in request order, the same shape as M(fleet.mtls.certificate)'s.
    - In check mode C(certificate), C(serial) and C(not_before) are null.
  returned: always
  type: list
  elements: dict
  contains:
    identity:
      description: Identity of the request.
      type: str
    host:
      description: Host of the request (null when not given).
      type: str
    serial:
      description: Serial number (lower-case hex).
      type: str
    certificate:
      description: The leaf certificate (PEM).
      type: str
    chain:
      description: The leaf followed by RV(ca_chain).
      type: str
      returned: with O(return_chain=true)
    subject:
      description: Subject of the leaf (RFC 4514).
      type: str
    sans:
      description: Subject alternative names of the leaf, canonical form.
      type: list
      elements: str
    profile:
      description: Profile of the leaf.
      type: str
    not_before:
      description: Start of validity.
      type: str
    not_after:
      description: End of validity.
      type: str
issued:
  description: Number of certificates signed (or that would be signed in check mode).
  returned: always
  type: int
ca_chain:
  description:
    - The issuer's certificate followed by its issuers up to (not including) the root, PEM.
  returned: when certificates were requested
  type: str
issuer:
  description: Subject of the issuer that signed.
  returned: when certificates were requested
  type: str
stats:
  description:
    - How the run went - C(signed), C(retried) (requests sent again after a connection error, 429 or 5xx),
      C(failovers) (moves to another URL), C(seconds).
  returned: when certificates were requested
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.mtls.plugins.module_utils.issuance import given_requests, issued_result
from ansible_collections.fleet.mtls.plugins.module_utils.keys import KEY_TYPES
from ansible_collections.fleet.mtls.plugins.module_utils.module_common import run_module
from ansible_collections.fleet.mtls.plugins.module_utils.vault_pki import (
    DEFAULT_CONCURRENCY, connect, module_spec, roles_spec, sign_requests)


def issue(module):
    params = module.params
    requests = given_requests(params["requests"])
    if not requests:
        return {"changed": False, "certificates": [], "issued": 0}
    pki = connect(params)
    outcome = sign_requests(pki, requests, roles=params["roles"], validity_days=params["validity_days"],
                            truncate_to_issuer=params["truncate_to_issuer"], issuer_ref=params["issuer"],
                            allowed_key_types=params["allowed_key_types"], concurrency=params["concurrency"],
                            check_mode=module.check_mode, include_chain=params["return_chain"])
    return issued_result(outcome.certificates, module._diff, ca_chain=outcome.ca_chain, issuer=outcome.issuer,
                         stats=outcome.stats)


def main():
    module = AnsibleModule(**module_spec(dict(
        requests=dict(type="list", elements="dict", required=True),
        roles=roles_spec(),
        issuer=dict(type="str"),
        validity_days=dict(type="int", default=90),
        truncate_to_issuer=dict(type="bool", default=False),
        allowed_key_types=dict(type="list", elements="str", choices=list(KEY_TYPES), no_log=False),
        concurrency=dict(type="int", default=DEFAULT_CONCURRENCY),
        return_chain=dict(type="bool", default=False),
    )))
    run_module(module, issue, bulky=("requests",))


if __name__ == "__main__":
    main()
