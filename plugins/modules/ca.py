#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: ca
short_description: Create or adopt a certificate authority in a CA store directory
version_added: "0.1.0"
description:
  - Runs on the CA holder. Ensures one CA per store directory O(path) - a self-signed root, an
    intermediate signed by the CA of another store (O(parent_path)), or an existing CA made elsewhere
    (for example with openssl) that is adopted with O(adopt_key) and O(adopt_cert).
  - The store holds C(store.json), C(ca.key) (PKCS#8, encrypted with O(passphrase) - PBES2 with
    PBKDF2-HMAC-SHA256 at 600,000 iterations and AES-256-CBC - mode 0600),
    C(ca.crt), C(chain.pem) (this CA up to the root), the issuance index C(index.json) with its lock
    C(index.lock), and later the CRL files written by M(fleet.mtls.crl).
  - A new store is written completely in a temporary sibling directory that is renamed into place, so
    a failed run leaves nothing behind.
  - Runs on one store are serialized by the lock file C(.<store name>.lock) beside the store (created
    empty, left in place). Of several concurrent creates of one store exactly one creates it; the
    others wait, find the finished store and check it (unchanged). Under that lock each run removes
    what a killed run left - C(.<store name>.new-*) staging directories beside the store and
    temporaries of the store's own files inside it - without following symbolic links.
  - The store directory and the files in it are never used through a symbolic link; a link fails
    with an error naming it.
  - A CA key encrypted with a weaker scheme (the 2,048 PBKDF2 iterations that earlier versions wrote) is
    re-encrypted at today's work factor by the next run that opens it (reported as changed, see
    RV(key_encryption)); the key itself is not changed.
  - Idempotent. When the store exists it is only checked - kind, key type, subject and path length (or
    the adopted certificate) must match and O(passphrase) must open the key. A CA is never replaced in
    place; a mismatch fails and names the difference (rotate to a new store path instead).
  - Root CAs get BasicConstraints CA:TRUE (critical) with O(path_length), KeyUsage keyCertSign, cRLSign
    and digitalSignature (critical), subject and authority key identifiers and a random 159-bit serial.
author:
  - fleet.mtls maintainers (!UNKNOWN)
options:
  path:
    description:
      - Directory of the CA store. Created with O(mode), O(owner) and O(group) when missing.
    type: path
    required: true
  kind:
    description:
      - V(root) makes a self-signed root CA, V(intermediate) a CA signed by the store in O(parent_path).
      - Ignored when adopting; the adopted certificate decides (self-signed root, or intermediate when
        O(adopt_chain) is given).
    type: str
    choices: [root, intermediate]
    default: root
  key_type:
    description:
      - Key type of a new CA.
    type: str
    choices: [ec_p256, ec_p384, rsa2048, rsa3072, rsa4096, ed25519]
    default: ec_p256
  common_name:
    description:
      - Subject common name of a new CA. Required unless O(subject) has C(CN) or the CA is adopted.
    type: str
  subject:
    description:
      - Further subject attributes of a new CA, for example C(O=Example) and C(C=DE) as a dictionary.
      - Keys are C(CN), C(O), C(OU), C(C), C(ST), C(L), C(emailAddress), C(serialNumber) (or their
        long names). O(common_name) wins over C(CN).
    type: dict
  validity_days:
    description:
      - Lifetime of a new CA in days. Defaults to 3650 (10 years) for a root and 1095 (3 years) for an
        intermediate.
      - An intermediate never outlives its parent - a longer lifetime fails unless
        O(truncate_to_parent=true).
    type: int
  truncate_to_parent:
    description:
      - End an intermediate at its parent's notAfter instead of failing when O(validity_days) reaches past it.
    type: bool
    default: false
  path_length:
    description:
      - BasicConstraints pathLenConstraint of a new CA. Defaults to 1 for a root (one intermediate level
        below it) and 0 for an intermediate (it signs leaves only).
    type: int
  permitted_dns_suffixes:
    description:
      - Name constraints of a new CA - DNS names of certificates below it must be one of these domains
        or a name under one (V(example.com) permits C(example.com) and C(web1.example.com); a leading dot
        is accepted and dropped).
      - Written into the CA certificate as a critical NameConstraints extension, which TLS peers
        enforce, and enforced by M(fleet.mtls.certificate) before it signs - a request with another DNS
        name fails naming host, identity and the name. A client CN that looks like a host name (it has
        a dot) and has no DNS SAN beside it counts as a DNS name, as OpenSSL counts it.
      - Other name types stay unconstrained unless O(spiffe_trust_domain) is set. Constraints of a CA
        apply to every CA below it too.
      - Part of the CA - an existing store with other constraints is drift and fails. Not available when
        adopting (the adopted certificate is used as it is).
    type: list
    elements: str
  spiffe_trust_domain:
    description:
      - Name constraint of a new CA for URI names - every URI SAN below it must have this host, which
        for C(spiffe://) IDs is the trust domain (V(example.org) permits C(spiffe://example.org/ns/web)).
      - Written and enforced like O(permitted_dns_suffixes).
    type: str
  passphrase:
    description:
      - Passphrase that encrypts the CA key at rest. Required and not empty.
    type: str
    required: true
  parent_path:
    description:
      - Store of the CA that signs a new intermediate. Required with O(kind=intermediate).
    type: path
  parent_passphrase:
    description:
      - Passphrase of the key in O(parent_path).
    type: str
  adopt_key:
    description:
      - Path of an existing CA private key (PEM, PKCS#1/SEC1/PKCS#8, optionally encrypted) to adopt.
      - The key is re-encrypted under O(passphrase) in the store; the original file is not changed.
    type: path
  adopt_cert:
    description:
      - Path of the existing CA certificate to adopt. It must be a CA (BasicConstraints CA:TRUE and
        KeyUsage keyCertSign) and match O(adopt_key).
    type: path
  adopt_passphrase:
    description:
      - Passphrase of O(adopt_key), when it is encrypted.
    type: str
  adopt_recertify:
    description:
      - Adopt a self-signed root whose certificate has BasicConstraints CA:TRUE but no KeyUsage extension,
        as C(openssl req -x509 -extensions v3_ca) makes it. Such a CA is refused without this option
        (strict verifiers refuse its leaves).
      - The store then holds a new self-signed certificate for the same key - same subject, validity and
        path length, a new serial, BasicConstraints CA:TRUE and KeyUsage keyCertSign, cRLSign (both
        critical), the old subject key identifier (or SHA-1 of the public key, as openssl computes it) -
        so leaves the CA already signed keep verifying against it. O(adopt_cert) is not changed;
        C(store.json) records its fingerprint (returned as RV(recertified_from)), and later runs with
        the same inputs are unchanged. Keep the option set for those runs.
      - Intermediates and certificates whose KeyUsage extension leaves out keyCertSign are never
        re-certified.
    type: bool
    default: false
  adopt_chain:
    description:
      - Path of a PEM bundle with the issuers of O(adopt_cert), nearest first, up to the root. Without it
        the adopted certificate must be a self-signed root.
    type: path
  mode:
    description:
      - Mode of the store directory. Files inside have fixed modes (C(ca.key) 0600).
    type: raw
    default: "0700"
  owner:
    description:
      - Owner of the store directory and its files.
    type: str
  group:
    description:
      - Group of the store directory and its files.
    type: str
extends_documentation_fragment:
  - fleet.mtls.attributes
attributes:
  check_mode:
    support: full
    details: Reports whether the store would be created; nothing is written.
  diff_mode:
    support: full
    details: Shows subject, kind, key type and notAfter before and after.
requirements:
  - cryptography >= 38
seealso:
  - module: fleet.mtls.certificate
  - module: fleet.mtls.crl
"""

EXAMPLES = r"""
- name: Root CA (10 years, EC P-256)
  fleet.mtls.ca:
    path: /var/lib/fleet-mtls/ca/root-1
    common_name: Example Root CA 1
    subject:
      O: Example
    passphrase: "{{ mtls_root_passphrase }}"

- name: Issuing intermediate signed by the root (3 years)
  fleet.mtls.ca:
    path: /var/lib/fleet-mtls/ca/issuing-1
    kind: intermediate
    common_name: Example Issuing CA 1
    passphrase: "{{ mtls_issuing_passphrase }}"
    parent_path: /var/lib/fleet-mtls/ca/root-1
    parent_passphrase: "{{ mtls_root_passphrase }}"

- name: Issuing CA that may only sign names under example.com and SPIFFE IDs of example.org
  fleet.mtls.ca:
    path: /var/lib/fleet-mtls/ca/issuing-prod-1
    kind: intermediate
    common_name: Example Production Issuing CA 1
    passphrase: "{{ mtls_issuing_passphrase }}"
    parent_path: /var/lib/fleet-mtls/ca/root-1
    parent_passphrase: "{{ mtls_root_passphrase }}"
    permitted_dns_suffixes: [example.com]
    spiffe_trust_domain: example.org

- name: Adopt a root CA made with openssl
  fleet.mtls.ca:
    path: /var/lib/fleet-mtls/ca/root-legacy
    adopt_key: /root/legacy-ca/ca.key
    adopt_cert: /root/legacy-ca/ca.crt
    adopt_passphrase: "{{ legacy_ca_passphrase }}"
    passphrase: "{{ mtls_root_passphrase }}"
"""

RETURN = r"""
path:
  description: Absolute path of the store.
  returned: always
  type: str
kind:
  description: V(root) or V(intermediate).
  returned: always
  type: str
key_type:
  description: Key type of the CA key.
  returned: always
  type: str
subject:
  description: Subject of the CA certificate (RFC 4514).
  returned: always
  type: str
  sample: CN=Example Issuing CA 1,O=Example
not_after:
  description: End of the CA certificate's validity (planned value in check mode).
  returned: always
  type: str
  sample: "2029-11-26T10:00:00Z"
certificate:
  description: The CA certificate (PEM). Not returned in check mode before the store exists.
  returned: when the store exists
  type: str
chain:
  description: This CA's certificate followed by its issuers up to the root (PEM).
  returned: when the store exists
  type: str
fingerprint_sha256:
  description: SHA-256 fingerprint of the CA certificate, colon-separated hex.
  returned: when the store exists
  type: str
serial:
  description: Serial number of the CA certificate (lower-case hex).
  returned: when the store exists
  type: str
key_encryption:
  description: How C(ca.key) is encrypted at rest, C(pbkdf2-sha256:<iterations>) or C(other).
  returned: when the store exists or in check mode when it would be re-encrypted
  type: str
  sample: "pbkdf2-sha256:600000"
recertified_from:
  description:
    - SHA-256 fingerprint of the adopted certificate that O(adopt_recertify) replaced with the store's
      certificate, or V(null).
  returned: when the store exists or would be created by adoption
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.mtls.plugins.module_utils.ca_store import (
    INTERMEDIATE_PATH_LENGTH, INTERMEDIATE_VALIDITY_DAYS, ROOT_PATH_LENGTH, ROOT_VALIDITY_DAYS, adopt,
    create_intermediate, create_root)
from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError
from ansible_collections.fleet.mtls.plugins.module_utils.fsutil import read_file
from ansible_collections.fleet.mtls.plugins.module_utils.keys import KEY_TYPES
from ansible_collections.fleet.mtls.plugins.module_utils.module_common import run_module
from ansible_collections.fleet.mtls.plugins.module_utils.names import build_name_constraints

DIFF_KEYS = ("kind", "key_type", "subject", "not_after", "key_encryption")


def _read_input(path, what):
    data = read_file(path, what)
    if data is None:
        raise MtlsError("%s %s does not exist" % (what, path))
    return data


def ensure_ca(module):
    params = module.params
    common = dict(mode=params["mode"], owner=params["owner"], group=params["group"],
                  check_mode=module.check_mode)
    adopting = params["adopt_key"] or params["adopt_cert"]
    constraints = build_name_constraints(params["permitted_dns_suffixes"], params["spiffe_trust_domain"])
    if adopting and constraints is not None:
        raise MtlsError("permitted_dns_suffixes and spiffe_trust_domain apply to a new CA only: an adopted "
                        "certificate is used as it is")
    if adopting:
        if not (params["adopt_key"] and params["adopt_cert"]):
            raise MtlsError("adopting a CA needs both adopt_key and adopt_cert")
        chain = _read_input(params["adopt_chain"], "adopt_chain") if params["adopt_chain"] else None
        outcome = adopt(params["path"], _read_input(params["adopt_key"], "adopt_key"),
                        _read_input(params["adopt_cert"], "adopt_cert"), params["adopt_passphrase"],
                        params["passphrase"], parent_chain_pem=chain, recertify=params["adopt_recertify"],
                        **common)
    elif params["kind"] == "intermediate":
        outcome = create_intermediate(
            params["path"], params["passphrase"], params["parent_path"], params["parent_passphrase"],
            key_type=params["key_type"], common_name=params["common_name"], subject=params["subject"],
            validity_days=_default(params["validity_days"], INTERMEDIATE_VALIDITY_DAYS),
            path_length=_default(params["path_length"], INTERMEDIATE_PATH_LENGTH),
            truncate_to_parent=params["truncate_to_parent"], name_constraints=constraints, **common)
    else:
        outcome = create_root(
            params["path"], params["passphrase"], key_type=params["key_type"],
            common_name=params["common_name"], subject=params["subject"],
            validity_days=_default(params["validity_days"], ROOT_VALIDITY_DAYS),
            path_length=_default(params["path_length"], ROOT_PATH_LENGTH), name_constraints=constraints,
            **common)
    result = dict(outcome.after)
    result["changed"] = outcome.changed
    if module._diff:
        result["diff"] = {"before": dict((k, outcome.before[k]) for k in DIFF_KEYS if k in outcome.before),
                          "after": dict((k, outcome.after[k]) for k in DIFF_KEYS if k in outcome.after)}
    return result


def _default(value, default):
    return default if value is None else value


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            kind=dict(type="str", choices=["root", "intermediate"], default="root"),
            key_type=dict(type="str", choices=list(KEY_TYPES), default="ec_p256"),
            common_name=dict(type="str"),
            subject=dict(type="dict"),
            validity_days=dict(type="int"),
            truncate_to_parent=dict(type="bool", default=False),
            path_length=dict(type="int"),
            permitted_dns_suffixes=dict(type="list", elements="str"),
            spiffe_trust_domain=dict(type="str"),
            passphrase=dict(type="str", required=True, no_log=True),
            parent_path=dict(type="path"),
            parent_passphrase=dict(type="str", no_log=True),
            adopt_key=dict(type="path"),
            adopt_cert=dict(type="path"),
            adopt_passphrase=dict(type="str", no_log=True),
            adopt_recertify=dict(type="bool", default=False),
            adopt_chain=dict(type="path"),
            mode=dict(type="raw", default="0700"),
            owner=dict(type="str"),
            group=dict(type="str"),
        ),
        required_if=[("kind", "intermediate", ("parent_path", "parent_passphrase"))],
        required_together=[("adopt_key", "adopt_cert")],
        mutually_exclusive=[("adopt_key", "parent_path"), ("adopt_cert", "common_name")],
        supports_check_mode=True,
    )
    run_module(module, ensure_ca)


if __name__ == "__main__":
    main()
