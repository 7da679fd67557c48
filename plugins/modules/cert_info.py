#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: cert_info
short_description: Inspect certificate files, match them to a key, validate the chain and check revocation
version_added: "0.1.0"
description:
  - Reads a certificate file (a leaf, a chain file or a whole bundle) or PEM text and reports the
    subject, SANs, issuer, serial, validity, days and fraction of the lifetime left, EKU, profile
    and fingerprint of the first certificate (the leaf).
  - Optionally compares it with a private key (O(key_path)), validates the certification path
    against a trust bundle (O(trust_bundle)) and checks it against CRLs (O(crl)).
  - The path validation is done by the collection itself (issuer names, key identifiers, every
    signature, validity, CA constraints, path length and EKU), so it gives the same answer on
    hosts with cryptography 38 as on a current controller.
  - Nothing is ever written; private keys are read only to compare their public half and are never returned.
author:
  - fleet.mtls maintainers (!UNKNOWN)
options:
  path:
    description:
      - PEM file to inspect. The first certificate is the one described; further certificates in the
        file count as untrusted intermediates for O(trust_bundle) validation.
      - A missing file is not an error; RV(exists) is then V(false).
      - Exactly one of O(path), O(content) and O(mtls_dir) is required.
    type: path
  content:
    description:
      - PEM text to inspect instead of a file.
    type: str
  mtls_dir:
    description:
      - Instead of one file, inspect every leaf installed under this on-host directory (the roles'
        C(mtls_dir)), that is each C(certs/<identity>.crt) that is a regular file named after a valid identity, in
        name order, returned in RV(leaves). O(all), O(trust_bundle), O(chain), O(purpose), O(crl) and
        the renewal options apply to each. A missing C(certs) directory gives an empty list.
    type: path
  chain_files:
    description:
      - With O(mtls_dir), inspect each identity's chain file (C(certs/<identity>.chain.pem), what
        servers present) instead of its leaf file.
    type: bool
    default: false
  renewal_check:
    description:
      - With O(mtls_dir), also make the renewal decision of M(fleet.mtls.csr) on each identity's private
        key (C(private/<identity>.key)), leaf and chain file, returned as C(renewal) in RV(leaves). A key
        that is missing or does not belong to the certificate, or a chain file that does not start with
        the leaf, is found by this module too. This reads the private keys (never returned); O(renew_fraction)
        and O(renew_days) apply.
    type: bool
    default: false
  all:
    description:
      - Also return RV(certificates), a description of every certificate in the file, in file order.
    type: bool
    default: false
  key_path:
    description:
      - Private key file to compare with the certificate (RV(key_match)). A missing key file gives
        RV(key_match=false) and RV(key_exists=false); an unreadable or damaged one fails.
    type: path
  key_passphrase:
    description:
      - Passphrase of an encrypted O(key_path).
    type: str
  trust_bundle:
    description:
      - PEM bundle of trusted CA certificates (roots and/or intermediates). Sets RV(chain_valid) and
        RV(chain_reason). The path may end at any certificate of the bundle.
    type: path
  chain:
    description:
      - PEM file with untrusted intermediate certificates that may be needed to reach O(trust_bundle).
    type: path
  purpose:
    description:
      - Require this extended key usage of the leaf (and of CA certificates that carry an EKU) in
        the chain validation. A certificate without EKU extension serves any purpose.
    type: str
    choices: [serverAuth, clientAuth]
  crl:
    description:
      - PEM file with CRLs (one per CA is the usual layout). Only a CRL signed by the leaf's issuer
        and still current counts. Sets RV(revoked) and RV(revocation).
    type: path
  renew_fraction:
    description:
      - Report RV(in_renewal_window) when at most this fraction of the lifetime is left (V(0) to V(0.99)).
      - Defaults to one third when O(renew_days) is not set; with both, whichever comes first wins
        (the same rule as M(fleet.mtls.csr)).
    type: float
  renew_days:
    description:
      - Report RV(in_renewal_window) when at most this many days are left.
    type: int
notes:
  - Read-only; check mode runs the same inspection and C(changed) is always V(false).
extends_documentation_fragment:
  - fleet.mtls.attributes
attributes:
  check_mode:
    support: full
    details: The same inspection runs in check mode; it never changes anything.
  diff_mode:
    support: none
requirements:
  - cryptography >= 38
seealso:
  - module: fleet.mtls.tls_probe
  - module: fleet.mtls.csr
"""

EXAMPLES = r"""
- name: Inspect every installed leaf (certs/*.crt) of a host
  fleet.mtls.cert_info:
    mtls_dir: /etc/mtls
  register: installed  # installed.leaves: one entry per identity

- name: Inspect the installed web identity
  fleet.mtls.cert_info:
    path: /etc/mtls/certs/web.chain.pem
    key_path: /etc/mtls/private/web.key
    trust_bundle: /etc/mtls/trust-bundle.pem
    crl: /etc/mtls/crl.pem
    purpose: serverAuth
  register: web_cert

- name: Fail when the certificate is unusable
  ansible.builtin.assert:
    that:
      - web_cert.exists
      - web_cert.key_match
      - web_cert.chain_valid
      - not web_cert.revoked
    fail_msg: "web certificate: {{ web_cert.chain_reason | default('ok') }}, revocation {{ web_cert.revocation }}"

- name: List every CA certificate of the trust bundle
  fleet.mtls.cert_info:
    path: /etc/mtls/trust-bundle.pem
    all: true
  register: bundle
"""

RETURN = r"""
leaves:
  description:
    - With O(mtls_dir), one entry per installed leaf, in identity order, with C(identity), C(path)
      (the file inspected), C(certificate_path) (the leaf file) and the fields this module returns
      for one file (C(exists), C(subject), C(serial), C(aki), C(issuer), C(profile), ...).
      With O(renewal_check), an existing leaf also has C(renewal) (C(needs_issue), C(reason), C(detail)),
      the renewal decision of M(fleet.mtls.csr) on the identity's key, certificate and chain file, without
      expectations of names or issuers; C(reason) is one of that module's RV(fleet.mtls.csr#module:reason) values.
  returned: with mtls_dir
  type: list
  elements: dict
exists:
  description: Whether O(path) exists (always V(true) with O(content)). When V(false) no other field is returned.
  returned: always
  type: bool
count:
  description: Number of certificates in the file or content.
  returned: when exists
  type: int
subject:
  description: Subject of the leaf (RFC 4514).
  returned: when exists
  type: str
  sample: CN=web1.example.net,O=Example
common_name:
  description: Common name of the leaf, V(null) without one.
  returned: when exists
  type: str
sans:
  description: Subject alternative names in canonical form (V(DNS:name), V(IP:addr), V(URI:uri), V(email:addr)).
  returned: when exists
  type: list
  elements: str
  sample: [DNS:web1.example.net, IP:192.0.2.10]
issuer:
  description: Issuer of the leaf (RFC 4514).
  returned: when exists
  type: str
serial:
  description: Serial number, lower-case hex without colons.
  returned: when exists
  type: str
  sample: 4f1a09c3e2
not_before:
  description: Start of validity, ISO 8601 UTC.
  returned: when exists
  type: str
  sample: "2026-11-26T10:00:00Z"
not_after:
  description: End of validity, ISO 8601 UTC.
  returned: when exists
  type: str
  sample: "2027-02-24T10:00:00Z"
days_left:
  description: Days until expiry (one decimal, negative once expired).
  returned: when exists
  type: float
fraction_left:
  description: Fraction of the lifetime left, from V(0) (expired) to V(1) (not yet started).
  returned: when exists
  type: float
lifetime_days:
  description: Total lifetime in days.
  returned: when exists
  type: float
eku:
  description: Extended key usages (V(serverAuth), V(clientAuth), or dotted OIDs).
  returned: when exists
  type: list
  elements: str
profile:
  description: V(server), V(client) or V(server_client) from the EKU, V(null) when none of them.
  returned: when exists
  type: str
is_ca:
  description: Whether the certificate is a CA certificate (BasicConstraints).
  returned: when exists
  type: bool
key_type:
  description: Public key type (V(ec_p256), V(ec_p384), V(rsa2048), V(rsa3072), V(rsa4096), V(ed25519), or a description of another kind).
  returned: when exists
  type: str
fingerprint_sha256:
  description: SHA-256 fingerprint, lower-case colon-separated hex.
  returned: when exists
  type: str
ski:
  description: Subject key identifier (colon-separated hex), V(null) without the extension.
  returned: when exists
  type: str
aki:
  description: Authority key identifier (colon-separated hex), V(null) without the extension.
  returned: when exists
  type: str
in_renewal_window:
  description: Whether the leaf is inside its renewal window (see O(renew_fraction) and O(renew_days)).
  returned: when exists
  type: bool
certificates:
  description: Every certificate of the file, each with the fields above, when O(all=true).
  returned: when exists and O(all=true)
  type: list
  elements: dict
key_exists:
  description: Whether O(key_path) exists, V(null) without O(key_path).
  returned: when exists
  type: bool
key_match:
  description: Whether O(key_path) holds the private key of the leaf, V(null) without O(key_path).
  returned: when exists
  type: bool
chain_valid:
  description: Whether a valid path leads from the leaf to a certificate of O(trust_bundle), V(null) without O(trust_bundle).
  returned: when exists
  type: bool
chain_reason:
  description:
    - Why the path is not valid, V(null) when it is (or without O(trust_bundle)).
    - One of V(expired), V(not yet valid), V(unknown issuer), V(bad signature), V(issuer is not a CA),
      V(path length exceeded), V(wrong purpose).
  returned: when exists
  type: str
chain_failed_subject:
  description: Subject of the certificate the RV(chain_reason) is about (the leaf or an intermediate).
  returned: when exists
  type: str
chain_path:
  description: Subjects of the validated path, leaf first, ending at a trusted certificate; V(null) when not valid.
  returned: when exists
  type: list
  elements: str
revoked:
  description: V(true) when a current CRL of the issuer lists the leaf, V(false) when it does not, V(null) when unknown or without O(crl).
  returned: when exists
  type: bool
revocation:
  description: V(good), V(revoked), V(no crl for issuer) or V(crl expired); V(null) without O(crl).
  returned: when exists
  type: str
revocation_date:
  description: When the leaf was revoked (ISO 8601 UTC), V(null) unless revoked.
  returned: when exists
  type: str
revocation_reason:
  description: CRL reason code of the revocation (for example V(keyCompromise)), V(null) when none was given.
  returned: when exists
  type: str
crl_next_update:
  description: Next update of the CRL used, V(null) without one.
  returned: when exists
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.mtls.plugins.module_utils.cert_facts import certificate_facts
from ansible_collections.fleet.mtls.plugins.module_utils.module_common import run_module


def inspect_certificate(module):
    return certificate_facts(module.params)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path"),
            content=dict(type="str"),
            mtls_dir=dict(type="path"),
            chain_files=dict(type="bool", default=False),
            renewal_check=dict(type="bool", default=False),
            all=dict(type="bool", default=False),
            key_path=dict(type="path"),
            key_passphrase=dict(type="str", no_log=True),
            trust_bundle=dict(type="path"),
            chain=dict(type="path"),
            purpose=dict(type="str", choices=["serverAuth", "clientAuth"]),
            crl=dict(type="path"),
            renew_fraction=dict(type="float"),
            renew_days=dict(type="int"),
        ),
        required_one_of=[("path", "content", "mtls_dir")],
        mutually_exclusive=[("path", "content", "mtls_dir")],
        supports_check_mode=True,
    )
    run_module(module, inspect_certificate)


if __name__ == "__main__":
    main()
