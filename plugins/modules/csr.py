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
      - Mode of the key files, octal string.
    type: raw
    default: "0600"
notes:
  - Check mode computes RV(needs_issue) and RV(reason) without writing anything; RV(csr) is then
    V(null) unless a matching CSR is already saved, because a CSR for a key that was never written
    could not be used.
  - Directories are created when missing, C(private/) with mode 0711 (traversable but not listable,
    so a service group can reach its 0640 key), C(certs/) with 0755.
  - Supports diff mode (which files would be written, never their secret content).
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
    - Why, one of V(missing), V(unreadable), V(key_missing), V(key_mismatch), V(expired),
      V(not_yet_valid), V(issuer_untrusted), V(key_type_changed), V(profile_changed),
      V(subject_changed), V(sans_changed), V(renewal_window), V(forced), or V(valid).
    - When several apply the first in this order is given.
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
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.mtls.plugins.module_utils.compat import isoformat
from ansible_collections.fleet.mtls.plugins.module_utils.fsutil import (
    atomic_write, ensure_dir, file_attributes_differ, parse_mode, read_file, resolve_gid, resolve_uid,
    set_file_attributes)
from ansible_collections.fleet.mtls.plugins.module_utils.inspect import load_certificates, serial_hex
# The CA's SAN rule (a server's DNS/IP common name is added as a SAN): compare with what it issues.
from ansible_collections.fleet.mtls.plugins.module_utils.issuance import leaf_sans
from ansible_collections.fleet.mtls.plugins.module_utils.keys import (
    DEFAULT_KEY_TYPE, KEY_TYPES, generate_private_key, key_type_of, load_private_key,
    same_public_key, serialize_private_key, signing_hash)
from ansible_collections.fleet.mtls.plugins.module_utils.module_common import run_module
from ansible_collections.fleet.mtls.plugins.module_utils.names import (
    build_subject, common_name_of, san_to_general_name, sans_of)
from ansible_collections.fleet.mtls.plugins.module_utils.profiles import DEFAULT_PROFILE, PROFILES
from ansible_collections.fleet.mtls.plugins.module_utils.renewal import (
    Expected, HostLayout, needs_issue, parse_certificate)

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    HAS_CRYPTOGRAPHY = True
except ImportError:
    HAS_CRYPTOGRAPHY = False

CSR_MODE = 0o644
PRIVATE_DIR_MODE = 0o711
CERTS_DIR_MODE = 0o755
# A certificate in these states is not in use, so the live key can sign the CSR.
NOTHING_DEPENDS_ON_KEY = ("missing", "unreadable", "key_missing")


def _load_key_file(path, what):
    data = read_file(path, what)
    if data is None:
        return None
    return load_private_key(data, source="%s %s" % (what, path))


def _trusted_issuers(params):
    if params["trusted_issuers"] is not None:
        return load_certificates(params["trusted_issuers"], "trusted_issuers")
    if params["trust_bundle"] is not None:
        data = read_file(params["trust_bundle"], "trust bundle")
        if data is None:
            return []
        return load_certificates(data, "trust bundle %s" % params["trust_bundle"])
    return None


def build_csr(key, expected):
    builder = x509.CertificateSigningRequestBuilder().subject_name(build_subject(expected.common_name))
    if expected.sans:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([san_to_general_name(san) for san in expected.sans]), critical=False)
    return builder.sign(key, signing_hash(key)).public_bytes(serialization.Encoding.PEM)


def saved_csr_matches(data, key, expected):
    """A saved CSR can be handed out again when it is for this key, subject and SAN set."""
    if data is None:
        return False
    try:
        csr = x509.load_pem_x509_csr(data)
    except ValueError:
        return False
    return (csr.is_signature_valid and same_public_key(csr.public_key(), key)
            and common_name_of(csr.subject) == expected.common_name
            and set(sans_of(csr)) == set(expected.sans or []))


class KeyPlan:
    """Which key signs the CSR; ``key`` is None when it has to be generated first (only when
    writing: check mode never makes a key)."""

    def __init__(self, path, key, staged):
        self.path, self.key, self.staged = path, key, staged
        self.create = key is None


def plan_signing_key(layout, live_key, staged_key, reason, key_type, new_key_on_renew):
    if live_key is None:
        # First issue (or the key was lost): the new key is live at once, no certificate uses it.
        return KeyPlan(layout.key, None, staged=False)
    live_type_ok = key_type_of(live_key) == key_type
    if live_type_ok and ((reason in NOTHING_DEPENDS_ON_KEY and staged_key is None) or not new_key_on_renew):
        return KeyPlan(layout.key, live_key, staged=False)
    # A staged key equal to the live one is a leftover of an interrupted promotion, not a new key.
    if (staged_key is not None and key_type_of(staged_key) == key_type
            and not same_public_key(staged_key, live_key)):
        return KeyPlan(layout.staged_key, staged_key, staged=True)
    return KeyPlan(layout.staged_key, None, staged=True)


def ensure_identity_request(module):
    params = module.params
    check = module.check_mode
    layout = HostLayout(params["dir"], params["name"])
    key_mode = parse_mode(params["mode"], 0o600)
    owner, group = params["owner"], params["group"]
    resolve_uid(owner)
    resolve_gid(group)
    common_name = params["common_name"] or params["name"]
    expected = Expected(
        common_name=common_name, sans=leaf_sans(params["profile"], common_name, params["sans"], []),
        profile=params["profile"],
        key_type=params["key_type"], trusted_issuers=_trusted_issuers(params),
        renew_fraction=params["renew_fraction"], renew_days=params["renew_days"], force=params["force"])
    # Validate the subject now: a bad common name must fail before any key is written.
    build_subject(common_name)

    live_key = _load_key_file(layout.key, "private key")
    staged_key = _load_key_file(layout.staged_key, "staged private key")
    cert_data = read_file(layout.certificate, "certificate")
    decision = needs_issue(cert_data, live_key, expected)
    current = None
    if decision.reason not in ("missing", "unreadable"):
        current = parse_certificate(cert_data, layout.certificate)

    result = {
        "changed": False, "needs_issue": decision.needs, "reason": decision.reason, "detail": decision.detail,
        "csr": None, "key_staged": False, "key_created": False, "key_path": None, "csr_path": layout.csr,
        "days_left": None if decision.days_left is None else round(decision.days_left, 1),
        "not_after": isoformat(decision.not_after),
        "serial": serial_hex(current.serial_number) if current is not None else None,
    }
    before, after = [], []

    # Existing key files keep the attributes asked for, whether or not a certificate is needed.
    for path, key in ((layout.key, live_key), (layout.staged_key, staged_key)):
        if key is not None and file_attributes_differ(path, key_mode, owner, group):
            before.append("%s: other owner/group/mode" % path)
            after.append("%s: mode %04o" % (path, key_mode))
            result["changed"] = True
            if not check:
                set_file_attributes(path, key_mode, owner, group)

    if decision.needs:
        plan = plan_signing_key(layout, live_key, staged_key, decision.reason, expected.key_type,
                                params["new_key_on_renew"])
        result.update(key_staged=plan.staged, key_created=plan.create, key_path=plan.path)
        saved = read_file(layout.csr, "CSR")
        if not plan.create and saved_csr_matches(saved, plan.key, expected):
            result["csr"] = saved.decode("ascii")
        else:
            result["changed"] = True
            if plan.create:
                before.append("%s: absent" % plan.path)
                after.append("%s: new %s key, mode %04o" % (plan.path, expected.key_type, key_mode))
            before.append("%s: %s" % (layout.csr, "absent" if saved is None else "outdated"))
            after.append("%s: CSR for %s" % (layout.csr, plan.path))
            if not check:
                result["csr"] = _write_request(layout, plan, expected, key_mode, owner, group)

    if module._diff:
        result["diff"] = {"before": "\n".join(before) + ("\n" if before else ""),
                          "after": "\n".join(after) + ("\n" if after else "")}
    return result


def _write_request(layout, plan, expected, key_mode, owner, group):
    ensure_dir(layout.directory, 0o755)
    ensure_dir(layout.private_dir, PRIVATE_DIR_MODE)
    ensure_dir(layout.certs_dir, CERTS_DIR_MODE)
    if plan.create:
        plan.key = generate_private_key(expected.key_type)
        atomic_write(plan.path, serialize_private_key(plan.key), key_mode, owner, group)
    csr_pem = build_csr(plan.key, expected)
    atomic_write(layout.csr, csr_pem, CSR_MODE, owner, group)
    return csr_pem.decode("ascii")


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
