#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: certificate
short_description: Sign leaf certificates from CSRs with a CA store, one or a whole batch per call
version_added: "0.1.0"
description:
  - Runs on the CA holder. Signs one request (O(csr), O(identity), ...) or a batch (O(requests)) with the
    CA in O(ca_path) and records every certificate in the store's issuance index in one locked update.
  - All or nothing - every request is validated before anything is signed. One bad request fails the
    whole call, the message names it by position, identity and host, and nothing is written.
  - Signing is a change by nature - the module signs exactly what it is given and reports
    C(changed=true) whenever it signed. Decide what needs a certificate beforehand with the
    C(needs_issue) return of M(fleet.mtls.csr); an empty O(requests) list is no change.
  - Names come from the request, never from the CSR. A CSR contributes its public key and, by its
    self-signature (which must verify), proof that the requester holds the private key - nothing else.
    Its subject and its SANs are ignored, whatever they say, so a host cannot obtain names it was not
    given (for example another identity's CN or a SPIFFE ID) by putting them in its CSR; the names
    issued are in the return and the index. M(fleet.mtls.csr) writes the declared names into its CSRs,
    so with the collection's own roles the two agree anyway.
  - Policy - the subject is the common name only, the request's C(common_name), else the identity name.
    The SANs are exactly the request's C(sans) (none when missing or empty). A V(server) or
    V(server_client) certificate needs SANs and carries its common name among them (a CN that is a DNS
    name or IP address is added as a SAN; any other CN is an error). The key type must be in
    O(allowed_key_types). BasicConstraints CA:FALSE and KeyUsage (digitalSignature, plus keyEncipherment
    for RSA) are critical; EKU follows the profile; SKI, AKI and a random 159-bit serial are set.
  - Every SAN is validated strictly - C(DNS) names in RFC 1123/5280 syntax (labels of 1-63 letters, digits
    and inner hyphens, no empty label, at most 253 characters, one optional trailing dot dropped, stored
    lower case, non-ASCII names IDNA-encoded to their C(xn--) form); a wildcard only as the whole leftmost
    label with at least two labels after it, never on a public suffix (C(*.co.uk), C(*.github.io)); C(IP)
    v4 or v6; C(URI) absolute with a scheme and a host (C(spiffe://) IDs by the SPIFFE ID rules), ASCII
    only, nothing that must be percent-encoded; C(email) a dot-atom mailbox with a DNS domain. NUL and
    other control characters are refused everywhere.
  - Name constraints - when the signing CA or a CA above it carries a NameConstraints extension (see
    O(fleet.mtls.ca#module:permitted_dns_suffixes)), a request with a name outside it fails.
  - A leaf never outlives its issuer - a longer validity fails unless O(truncate_to_issuer=true).
  - Central key generation (O(generate_keys)) makes each key here and writes it to
    C(<key_dir>/<host>/<identity>.key); only the path is returned. Use it for devices that cannot
    make their own keys - by default keys never leave their host.
author:
  - fleet.mtls maintainers (!UNKNOWN)
options:
  ca_path:
    description:
      - CA store directory made by M(fleet.mtls.ca); its CA signs.
    type: path
    required: true
  ca_passphrase:
    description:
      - Passphrase of the CA key.
    type: str
    required: true
  requests:
    description:
      - The batch to sign, a list of dictionaries. Mutually exclusive with the single-request options
        O(identity), O(host), O(csr), O(profile), O(sans), O(common_name) and O(key_type).
      - Each request has these keys (they are checked by the module itself, so a thousand-request batch
        is not slowed down by generic option processing; an unknown key or a wrong type fails the call)
        - C(identity) (str, required) - identity name (letters, digits, V(.), V(_), V(-)); names the
        central key file.
        C(host) (str) - host the identity belongs to; recorded in the index, names the central key directory.
        C(csr) (str) - the PEM CSR, required unless O(generate_keys=true).
        C(profile) (str) - V(server) (default), V(client) or V(server_client).
        C(sans) (list of str) - subject alternative names (C(DNS:name), C(IP:addr), C(URI:uri),
        C(email:addr)); default - none (never the CSR's).
        C(common_name) (str) - subject common name; default - the identity (never the CSR's CN).
        C(validity_days) (int) - lifetime of this leaf; default - O(validity_days).
        C(key_type) (str) - key type of a centrally generated key (O(generate_keys=true) only).
      - Each identity may appear once per host.
    type: list
    elements: dict
  identity:
    description:
      - Single request - identity name. Required with O(csr) or O(generate_keys) when O(requests) is not given.
    type: str
  host:
    description:
      - Single request - host the identity belongs to.
    type: str
  csr:
    description:
      - Single request - the PEM CSR.
    type: str
  profile:
    description:
      - Single request - certificate profile.
    type: str
    choices: [server, client, server_client]
  sans:
    description:
      - Single request - subject alternative names; default - none (the CSR's SANs are never used).
    type: list
    elements: str
  common_name:
    description:
      - Single request - subject common name; default - O(identity) (the CSR's CN is never used).
    type: str
  key_type:
    description:
      - Single request - key type of a centrally generated key.
    type: str
    choices: [ec_p256, ec_p384, rsa2048, rsa3072, rsa4096, ed25519]
  validity_days:
    description:
      - Lifetime of each leaf in days (a request's own C(validity_days) wins).
    type: int
    default: 90
  backdate_minutes:
    description:
      - NotBefore is set this many minutes in the past, for hosts whose clock is a little behind
        (never before the issuer's own NotBefore).
    type: int
    default: 5
  truncate_to_issuer:
    description:
      - End a leaf at the issuer's notAfter instead of failing when its validity reaches past it.
    type: bool
    default: false
  allowed_key_types:
    description:
      - Key types a CSR (or a generated key) may have. Default - all supported types.
    type: list
    elements: str
    choices: [ec_p256, ec_p384, rsa2048, rsa3072, rsa4096, ed25519]
  generate_keys:
    description:
      - Generate each private key here instead of signing a CSR (central key generation).
    type: bool
    default: false
  key_dir:
    description:
      - Directory for centrally generated keys, C(<key_dir>/<host>/<identity>.key) (C(<key_dir>/<identity>.key)
        without a host). Directories are created 0700. Required with O(generate_keys=true).
    type: path
  key_mode:
    description:
      - Mode of generated key files, one of V(0600), V(0640), V(0400) or V(0440) (the same rule as
        M(fleet.mtls.csr) and M(fleet.mtls.install_identity)); the file has it from creation.
    type: raw
    default: "0600"
  key_owner:
    description:
      - Owner of generated key files and their directories.
    type: str
  key_group:
    description:
      - Group of generated key files and their directories.
    type: str
  return_chain:
    description:
      - Also return each leaf's full chain as C(certificates[].chain).
      - Off by default - every leaf of a call has the same issuer chain, returned once as RV(ca_chain);
        repeating it for each leaf of a large batch only makes the result bigger and slower to process.
    type: bool
    default: false
extends_documentation_fragment:
  - fleet.mtls.attributes
attributes:
  check_mode:
    support: full
    details: Validates every request and reports what would be signed; nothing is signed or written.
  diff_mode:
    support: full
    details: The diff lists the identities that are (or would be) issued.
requirements:
  - cryptography >= 38
seealso:
  - module: fleet.mtls.ca
  - module: fleet.mtls.csr
  - module: fleet.mtls.install_identity
"""

EXAMPLES = r"""
- name: Sign one CSR
  fleet.mtls.certificate:
    ca_path: /var/lib/fleet-mtls/ca/issuing-1
    ca_passphrase: "{{ mtls_issuing_passphrase }}"
    identity: web
    host: web1.example.com
    csr: "{{ csr_result.csr }}"
    profile: server
    sans: [DNS:web1.example.com, IP:192.0.2.10]

- name: Sign the CSRs of two hosts in one call
  fleet.mtls.certificate:
    ca_path: /var/lib/fleet-mtls/ca/issuing-1
    ca_passphrase: "{{ mtls_issuing_passphrase }}"
    requests:
      - identity: web
        host: web1
        csr: "{{ hostvars['web1'].web_csr.csr }}"
        sans: [DNS:web1.example.com]
      - identity: backup-agent
        host: db1
        csr: "{{ hostvars['db1'].agent_csr.csr }}"
        profile: client
        validity_days: 30
  run_once: true
  register: signed

- name: Central key generation for devices without a key store
  fleet.mtls.certificate:
    ca_path: /var/lib/fleet-mtls/ca/issuing-1
    ca_passphrase: "{{ mtls_issuing_passphrase }}"
    generate_keys: true
    key_dir: /var/lib/fleet-mtls/central-keys
    requests:
      - identity: sensor-17
        host: sensor-17
        profile: client
"""

RETURN = r"""
certificates:
  description:
    - One entry per request, in request order. Private keys are never returned.
    - In check mode C(certificate), C(chain) and C(serial) are null.
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
      description: Serial number (lower-case hex), as recorded in the issuance index.
      type: str
    certificate:
      description: The leaf certificate (PEM).
      type: str
    chain:
      description: The leaf followed by RV(ca_chain) - what a server presents.
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
      description: Start of validity (backdated).
      type: str
    not_after:
      description: End of validity.
      type: str
    key_path:
      description: Path of the centrally generated key.
      type: str
      returned: with O(generate_keys=true)
issued:
  description: Number of certificates signed (or that would be signed in check mode).
  returned: always
  type: int
ca_chain:
  description:
    - The signing CA certificate followed by its issuers up to (not including) the root, PEM; the same
      for every leaf of the call. A server presents C(certificate) followed by it; M(fleet.mtls.install_identity)
      accepts it as O(fleet.mtls.install_identity#module:chain) and puts the leaf in front.
    - Empty when the signing CA is itself a root.
  returned: when certificates were requested
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.mtls.plugins.module_utils.ca_store import CAStore
from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError
from ansible_collections.fleet.mtls.plugins.module_utils.issuance import given_requests, issued_result, sign_batch
from ansible_collections.fleet.mtls.plugins.module_utils.keys import KEY_TYPES
from ansible_collections.fleet.mtls.plugins.module_utils.module_common import run_module
from ansible_collections.fleet.mtls.plugins.module_utils.profiles import PROFILES

SINGLE_REQUEST_OPTIONS = ("identity", "host", "csr", "profile", "sans", "common_name", "key_type")


def _requests(params):
    if params["requests"] is not None:
        return given_requests(params["requests"])
    if not params["identity"]:
        raise MtlsError("give either requests (a batch) or identity with csr (one request)")
    return [dict((k, params[k]) for k in SINGLE_REQUEST_OPTIONS if params[k] is not None)]


def issue(module):
    params = module.params
    requests = _requests(params)
    if not requests:
        return {"changed": False, "certificates": [], "issued": 0}
    store = CAStore(params["ca_path"])
    signer = store.load(params["ca_passphrase"])
    issued = sign_batch(
        signer, store, requests, validity_days=params["validity_days"],
        backdate_minutes=params["backdate_minutes"], truncate_to_issuer=params["truncate_to_issuer"],
        generate_keys=params["generate_keys"], key_dir=params["key_dir"], key_owner=params["key_owner"],
        key_group=params["key_group"], key_mode=params["key_mode"],
        allowed_key_types=params["allowed_key_types"], check_mode=module.check_mode)
    return issued_result([leaf.as_dict(include_chain=params["return_chain"]) for leaf in issued], module._diff,
                         ca_chain=signer.intermediates_pem.decode("ascii"))


def main():
    key_types = list(KEY_TYPES)
    module = AnsibleModule(
        argument_spec=dict(
            ca_path=dict(type="path", required=True),
            ca_passphrase=dict(type="str", required=True, no_log=True),
            requests=dict(type="list", elements="dict"),
            identity=dict(type="str"),
            host=dict(type="str"),
            csr=dict(type="str"),
            profile=dict(type="str", choices=list(PROFILES)),
            sans=dict(type="list", elements="str"),
            common_name=dict(type="str"),
            key_type=dict(type="str", choices=key_types, no_log=False),
            validity_days=dict(type="int", default=90),
            backdate_minutes=dict(type="int", default=5),
            truncate_to_issuer=dict(type="bool", default=False),
            allowed_key_types=dict(type="list", elements="str", choices=key_types, no_log=False),
            generate_keys=dict(type="bool", default=False),
            key_dir=dict(type="path"),
            key_mode=dict(type="raw", default="0600", no_log=False),
            key_owner=dict(type="str", no_log=False),
            key_group=dict(type="str", no_log=False),
            return_chain=dict(type="bool", default=False),
        ),
        mutually_exclusive=[("requests", option) for option in SINGLE_REQUEST_OPTIONS],
        required_if=[("generate_keys", True, ("key_dir",))],
        supports_check_mode=True,
    )
    run_module(module, issue, bulky=("requests",))


if __name__ == "__main__":
    main()
