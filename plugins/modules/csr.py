#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: csr
short_description: Ensure an identity's private key on the host and produce a CSR when it needs a certificate
version_added: "0.1.0"
description:
  - Runs on each managed host, once per identity.
  - Ensures the private key C(<dir>/private/<name>.key) exists, generating it with its final
    O(owner), O(group) and O(mode) before any byte is written.
  - Inspects the installed certificate C(<dir>/certs/<name>.crt) against what is expected and
    returns RV(needs_issue) and a stable RV(reason).
  - When a certificate is needed it returns a CSR (also saved as C(<dir>/certs/<name>.csr)). The CSR
    belongs to the live key only while nothing depends on it (no certificate installed yet, or
    O(new_key_on_renew=false)); otherwise to a staged key C(<dir>/private/<name>.key.new). The live key
    is never replaced here; M(fleet.mtls.install_identity) promotes the staged key together with its
    certificate.
  - A staged key left by an interrupted run is reused, and so is a saved CSR that still matches
    the key, subject and SANs, so repeated runs neither pile up keys nor report spurious changes.
author:
  - fleet.mtls maintainers (!UNKNOWN)
options:
  name:
    description:
      - Identity name; it names the files. Letters, digits, V(.), V(_) and V(-), not starting with V(.) or V(-).
    type: str
    required: true
  dir:
    description:
      - Base directory of the on-host layout (C(private/), C(certs/), C(trust-bundle.pem)).
    type: path
    default: /etc/mtls
  key_type:
    description:
      - Key type of the identity. A certificate with another key type is re-issued with a new key.
    type: str
    default: ec_p256
    choices: [ec_p256, ec_p384, rsa2048, rsa3072, rsa4096, ed25519]
  common_name:
    description:
      - Subject common name. Defaults to O(name).
    type: str
  sans:
    description:
      - Subject alternative names, C(DNS:host), C(IP:addr), C(URI:uri) or C(email:addr); a bare value
        is classified by its shape. Compared with the certificate as a set.
    type: list
    elements: str
    default: []
  profile:
    description:
      - Certificate profile the identity needs (extended key usage).
    type: str
    default: server
    choices: [server, client, server_client]
  trust_bundle:
    description:
      - PEM file on the host with the CA certificates the installed certificate may be issued by.
        A certificate whose issuer is not among them needs a new one (reason V(issuer_untrusted)).
      - A missing file trusts nobody, so an installed certificate is re-issued.
      - Mutually exclusive with O(trusted_issuers).
    type: path
  trusted_issuers:
    description:
      - PEM content of the CA certificates the installed certificate may be issued by. During a CA
        rotation pass only the active issuing CA here, so every leaf of the old one is re-issued.
      - Mutually exclusive with O(trust_bundle). Without either the issuer is not checked.
    type: str
  renew_fraction:
    description:
      - Renew when at most this fraction of the certificate's lifetime is left (V(0) to V(0.99)).
      - Defaults to one third when O(renew_days) is not set. With both, whichever comes first wins.
    type: float
  renew_days:
    description:
      - Renew when at most this many days are left. Replaces the default fraction unless O(renew_fraction) is also set.
    type: int
  new_key_on_renew:
    description:
      - Make a new (staged) key for every renewal. With V(false) the live key is reused unless its
        key type no longer matches O(key_type).
    type: bool
    default: true
  force:
    description:
      - Ask for a new certificate even when the installed one is fine (reason V(forced)).
    type: bool
    default: false
  owner:
    description:
      - Owner of the key files (name or uid). Defaults to the user running the module.
    type: str
  group:
    description:
      - Group of the key files (name or gid), for services that read the key after dropping privileges.
    type: str
  mode:
    description:
      - Mode of the key files, octal string, one of V(0600), V(0640), V(0400) or V(0440). Any other
        mode (one that lets others read the key, or anyone but the owner write it) is refused.
    type: raw
    default: "0600"
notes:
  - Check mode computes RV(needs_issue) and RV(reason) without writing anything; RV(csr) is then
    V(null) unless a matching CSR is already saved, because a CSR for a key that was never written
    could not be used.
  - Directories are created when missing, C(private/) with mode 0711 (traversable but not listable,
    so a service group can reach its 0640 key), C(certs/) with 0755.
  - Supports diff mode (which files would be written, never their secret content).
  - Runs that write hold the identity's lock C(<dir>/private/.<name>.lock) (removed again when the
    run ends), so overlapping runs (a timer and a manual run) hand out the same CSR for the same key
    instead of replacing a key a CSR was already handed out for.
  - Symbolic links are never followed for the key, staged key, certificate, chain and CSR files, nor
    for the C(private/) and C(certs/) directories; the module fails naming the link. O(dir) itself
    and O(trust_bundle) may be links.
  - The new key and the CSR are both complete before either is renamed into place, and mode/owner
    fix-ups come last, so a failed run (a full disk included) leaves the files as they were.
    Temporary files of this identity left by a killed run are removed (RV(leftovers_removed)).
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
  - module: fleet.mtls.certificate
  - module: fleet.mtls.install_identity
"""

EXAMPLES = r"""
- name: Ensure the web identity's key and a CSR when it needs a certificate
  fleet.mtls.csr:
    name: web
    common_name: web1.example.net
    sans: [DNS:web1.example.net, IP:192.0.2.10]
    profile: server
    trust_bundle: /etc/mtls/trust-bundle.pem
  register: web_csr

- name: Client identity for Mosquitto, key readable by the mosquitto group
  fleet.mtls.csr:
    name: sensor
    profile: client
    group: mosquitto
    mode: "0640"
"""

RETURN = r"""
needs_issue:
  description: Whether the identity needs a (new) certificate.
  returned: always
  type: bool
reason:
  description:
    - Why, one of V(missing), V(unreadable), V(key_missing), V(key_mismatch), V(files_inconsistent), V(expired),
      V(not_yet_valid), V(issuer_untrusted), V(key_type_changed), V(profile_changed),
      V(subject_changed), V(sans_changed), V(renewal_window), V(forced), or V(valid).
    - When several apply the first in this order is given.
    - V(files_inconsistent) means C(certs/<name>.chain.pem) is missing, unreadable or does not start
      with C(certs/<name>.crt) (an install that was killed between two renames); the next install
      writes the set again.
  returned: always
  type: str
  sample: renewal_window
detail:
  description: Human-readable explanation of the reason (days left, what differs).
  returned: always
  type: str
  sample: 29.5 days left, renewal starts at 30.0
csr:
  description: The CSR (PEM) to sign, or V(null) when no certificate is needed (or in check mode without a saved CSR).
  returned: always
  type: str
key_staged:
  description: Whether the CSR belongs to the staged key C(private/<name>.key.new) rather than the live key.
  returned: always
  type: bool
key_created:
  description: Whether a key file (live or staged) was generated by this run.
  returned: always
  type: bool
key_path:
  description: Path of the key the CSR belongs to, or V(null) when no CSR is needed.
  returned: always
  type: str
csr_path:
  description: Path of the saved CSR.
  returned: always
  type: str
days_left:
  description: Days until the installed certificate expires (one decimal, negative once expired), V(null) without one.
  returned: always
  type: float
not_after:
  description: Expiry of the installed certificate (ISO 8601 UTC), V(null) without one.
  returned: always
  type: str
serial:
  description: Serial number of the installed certificate (lower-case hex), V(null) without one.
  returned: always
  type: str
leftovers_removed:
  description: Temporary files of this identity that killed runs had left behind and this run removed.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.mtls.plugins.module_utils.host_identity import request_identity
from ansible_collections.fleet.mtls.plugins.module_utils.keys import DEFAULT_KEY_TYPE, KEY_TYPES
from ansible_collections.fleet.mtls.plugins.module_utils.module_common import run_module
from ansible_collections.fleet.mtls.plugins.module_utils.profiles import DEFAULT_PROFILE, PROFILES


def ensure_identity_request(module):
    return request_identity(module.params, check_mode=module.check_mode, diff=module._diff)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            dir=dict(type="path", default="/etc/mtls"),
            key_type=dict(type="str", default=DEFAULT_KEY_TYPE, choices=list(KEY_TYPES)),
            common_name=dict(type="str"),
            sans=dict(type="list", elements="str", default=[]),
            profile=dict(type="str", default=DEFAULT_PROFILE, choices=list(PROFILES)),
            trust_bundle=dict(type="path"),
            trusted_issuers=dict(type="str"),
            renew_fraction=dict(type="float"),
            renew_days=dict(type="int"),
            new_key_on_renew=dict(type="bool", default=True),
            force=dict(type="bool", default=False),
            owner=dict(type="str"),
            group=dict(type="str"),
            mode=dict(type="raw", default="0600"),
        ),
        mutually_exclusive=[("trust_bundle", "trusted_issuers")],
        supports_check_mode=True,
    )
    run_module(module, ensure_identity_request)


if __name__ == "__main__":
    main()
