#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: crl
short_description: Revoke certificates of a CA store and keep its CRL current
version_added: "0.1.0"
description:
  - Runs on the CA holder against one CA store made by M(fleet.mtls.ca).
  - Revokes certificates by serial, or every valid certificate of an identity (optionally only on
    one host), recording it in the store's issuance index.
  - Rebuilds the store's C(crl.pem) only when needed, when it is missing or unreadable, not signed by
    this CA, the revoked set changed, or at most O(refresh_days) are left before its nextUpdate.
  - The CRL is signed by the CA key and carries the Authority Key Identifier and a CRLNumber that
    only grows (kept in C(crl.json); deleting C(crl.pem) does not reset it).
  - With O(find), it only looks for a revocation request in every trusted CA generation of O(ca_dir)
    and returns where it applies (RV(matches)); nothing is revoked or written.
  - Every revocation request is checked before any is applied. Revoking a serial again with the same
    reason changes nothing; with a different reason it fails (the first reason stays on record).
author:
  - fleet.mtls maintainers (!UNKNOWN)
options:
  ca_path:
    description:
      - Directory of the CA store whose certificates are revoked and whose CRL is built.
      - Required unless O(find) is given.
    type: path
  ca_passphrase:
    description:
      - Passphrase of the CA key. Required unless O(find) is given.
    type: str
  ca_dir:
    description:
      - With O(find), the CA directory (C(rotation.json) and the stores of every generation, the
        P(fleet.mtls.ca#role) role's C(mtls_ca_dir)).
    type: path
  find:
    description:
      - Instead of revoking, find the certificates one request names in the issuance index of every
        trusted CA generation's issuing store (during a CA rotation an identity can hold certificates
        from both). Fails, naming the stores searched, when no certificate matches.
      - Exactly one of O(find.serial) or O(find.identity) (with O(find.host)).
    type: dict
    suboptions:
      serial:
        description: Serial number in hex (V(0x) prefix and colons allowed).
        type: str
      identity:
        description: Identity name; every certificate issued for it on O(find.host) matches.
        type: str
      host:
        description: Inventory name of the host the identity was issued for.
        type: str
      reason:
        description: RFC 5280 revocation reason, copied into RV(matches).
        type: str
        default: unspecified
        choices: [unspecified, keyCompromise, cACompromise, affiliationChanged, superseded,
                  cessationOfOperation, certificateHold, privilegeWithdrawn, aACompromise]
  revoke:
    description:
      - Certificates to revoke. Each item has exactly one of O(revoke[].serial) or O(revoke[].identity).
    type: list
    elements: dict
    default: []
    suboptions:
      serial:
        description:
          - Serial number in hex (V(0x) prefix and colons allowed).
        type: str
      identity:
        description:
          - Revoke every valid certificate of this identity.
        type: str
      host:
        description:
          - With O(revoke[].identity), only the certificates issued for this host.
        type: str
      reason:
        description:
          - RFC 5280 revocation reason.
        type: str
        default: unspecified
        choices: [unspecified, keyCompromise, cACompromise, affiliationChanged, superseded,
                  cessationOfOperation, certificateHold, privilegeWithdrawn, aACompromise]
  next_update_days:
    description:
      - Days from now to the CRL's nextUpdate.
    type: int
    default: 7
  refresh_days:
    description:
      - Rebuild the CRL when at most this many days are left before its nextUpdate. Must be lower than O(next_update_days).
    type: int
    default: 2
  backdate_minutes:
    description:
      - thisUpdate is set this many minutes in the past, so hosts whose clock is a little behind accept the CRL.
    type: int
    default: 1
  force:
    description:
      - Rebuild the CRL even when it is current.
    type: bool
    default: false
notes:
  - In check mode the revocations are validated and the result planned, nothing is written;
    RV(crl) is V(null) when a new CRL would be built (RV(crl_number) is the number it would get).
  - Revoked certificates stay on the CRL after they expire.
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
  - module: fleet.mtls.ca
  - module: fleet.mtls.certificate
  - module: fleet.mtls.install_identity
"""

EXAMPLES = r"""
- name: Revoke a compromised certificate and publish the CRL
  fleet.mtls.crl:
    ca_path: /var/lib/fleet-mtls/ca/issuing-1
    ca_passphrase: "{{ mtls_ca_passphrase }}"
    revoke:
      - serial: 3f9a0c17e2b4d5a6
        reason: keyCompromise

- name: Retire a host's identity everywhere it was issued
  fleet.mtls.crl:
    ca_path: /var/lib/fleet-mtls/ca/issuing-1
    ca_passphrase: "{{ mtls_ca_passphrase }}"
    revoke:
      - identity: web
        host: web3.example.net
        reason: cessationOfOperation

- name: Keep the CRL fresh (scheduled runs)
  fleet.mtls.crl:
    ca_path: /var/lib/fleet-mtls/ca/issuing-1
    ca_passphrase: "{{ mtls_ca_passphrase }}"
"""

RETURN = r"""
crl:
  description: The CRL (PEM); V(null) in check mode when a new one would be built.
  returned: without find
  type: str
crl_number:
  description: CRLNumber of the CRL (the one it would get, in check mode).
  returned: without find
  type: int
this_update:
  description: thisUpdate of the CRL (ISO 8601 UTC).
  returned: without find
  type: str
next_update:
  description: nextUpdate of the CRL (ISO 8601 UTC).
  returned: without find
  type: str
revoked:
  description: Serials (lower-case hex) of every certificate the CRL lists.
  returned: without find
  type: list
  elements: str
revoked_now:
  description: Certificates this run revoked (serial, identity, host, reason, revoked_at).
  returned: without find
  type: list
  elements: dict
refreshed:
  description: Whether the CRL was (or in check mode would be) rebuilt.
  returned: without find
  type: bool
refresh_reason:
  description:
    - Why the CRL was rebuilt, V(missing), V(unreadable), V(issuer_changed), V(revoked_changed),
      V(refresh_window) or V(forced); V(current) when it was not.
  returned: without find
  type: str
path:
  description: Path of the CRL file in the store.
  returned: without find
  type: str
matches:
  description:
    - With O(find), the issuing stores whose index lists a matching certificate, in generation order,
      each with C(store) (name), C(ca_path), C(serials) and C(revoke) (the O(revoke) list for that store).
  returned: with find
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.mtls.plugins.module_utils.crl import (
    DEFAULT_BACKDATE_MINUTES, DEFAULT_NEXT_UPDATE_DAYS, DEFAULT_REFRESH_DAYS, find_in_trusted_generations,
    revoke_and_publish)
from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError
from ansible_collections.fleet.mtls.plugins.module_utils.index import REVOCATION_REASONS
from ansible_collections.fleet.mtls.plugins.module_utils.module_common import run_module


def revoke_and_refresh(module):
    params = module.params
    if params["find"] is not None:
        if not params["ca_dir"]:
            raise MtlsError("find needs ca_dir: the CA directory whose trusted generations are searched")
        if params["ca_path"] or params["revoke"]:
            raise MtlsError("find only looks for certificates: do not combine it with ca_path or revoke")
        request = params["find"]
        return {"changed": False, "matches": find_in_trusted_generations(
            params["ca_dir"], serial=request["serial"], identity=request["identity"], host=request["host"],
            reason=request["reason"])}
    missing = [name for name in ("ca_path", "ca_passphrase") if not params[name]]
    if missing:
        raise MtlsError("missing required arguments: %s (the CA store to revoke in and its passphrase; "
                        "or find, to search the trusted generations)" % ", ".join(missing))
    revocations = [dict((key, value) for key, value in item.items() if value is not None)
                   for item in params["revoke"]]
    result = revoke_and_publish(
        params["ca_path"], params["ca_passphrase"], revocations,
        next_update_days=params["next_update_days"], refresh_days=params["refresh_days"],
        backdate_minutes=params["backdate_minutes"], force=params["force"], check_mode=module.check_mode)
    diff = result.pop("diff")
    if module._diff:
        result["diff"] = diff
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            ca_path=dict(type="path"),
            ca_passphrase=dict(type="str", no_log=True),
            ca_dir=dict(type="path"),
            find=dict(type="dict", options=dict(
                serial=dict(type="str"),
                identity=dict(type="str"),
                host=dict(type="str"),
                reason=dict(type="str", default="unspecified", choices=list(REVOCATION_REASONS)),
            ), mutually_exclusive=[("serial", "identity")], required_one_of=[("serial", "identity")],
                required_by={"identity": "host"}),
            revoke=dict(type="list", elements="dict", default=[], options=dict(
                serial=dict(type="str"),
                identity=dict(type="str"),
                host=dict(type="str"),
                reason=dict(type="str", default="unspecified", choices=list(REVOCATION_REASONS)),
            ), mutually_exclusive=[("serial", "identity")], required_one_of=[("serial", "identity")],
                required_by={"host": "identity"}),
            next_update_days=dict(type="int", default=DEFAULT_NEXT_UPDATE_DAYS),
            refresh_days=dict(type="int", default=DEFAULT_REFRESH_DAYS),
            backdate_minutes=dict(type="int", default=DEFAULT_BACKDATE_MINUTES),
            force=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    run_module(module, revoke_and_refresh)


if __name__ == "__main__":
    main()
