#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: vault_ca_rotation
short_description: Read and move a three-phase CA rotation on an OpenBao or HashiCorp Vault PKI mount
version_added: "1.1.0"
description:
  - The C(vault) backend's counterpart of M(fleet.mtls.ca_rotation) in the C(fleet.mtls.rotate_ca) playbook,
    with the same phases and the same returned keys.
  - The engine is the record - the phase is derived from the mount's issuers (names C(root-<N>) and
    C(issuing-<N>), usage, default issuer, revoked), so any controller reads the same state and a re-run
    changes nothing.
  - V(trust) (O(state=begin)) makes C(issuing-<N+1>) signed by the current root (O(scope=issuing)), or a new
    root C(root-<N+1>) generated in the engine and C(issuing-<N+1>) under it (O(scope=root)). The new issuing
    issuer's usage lacks C(issuing-certificates) and it is not the default, so it signs nothing; the engine's
    publication (M(fleet.mtls.vault_ca_publication)) already lists it.
  - V(reissue) gives the new issuing issuer full usage, makes it the mount's default issuer and takes
    C(issuing-certificates) from the old one.
  - V(retire) is refused while O(leaves) holds a certificate that chains to the old generation (the message
    names the hosts); then the old issuing issuer (and, scope root, the old root) is revoked in the engine and
    the CRLs rebuilt, so the publication drops them.
  - A mount whose root has no key in the engine (C(ca_source=import)) can only be rotated with O(scope=root).
author:
  - fleet.mtls maintainers (!UNKNOWN)
options:
  state:
    description:
      - V(status) only reports.
      - V(begin) starts a rotation with O(scope) and prepares its issuers (phase V(trust)); a rotation under way
        with the same scope is resumed (an issuer missing after an interruption is made), another scope is refused.
      - V(advance) enters O(phase) (V(trust) changes nothing once begun; V(reissue); V(retire) needs O(leaves)).
      - V(complete) checks that the engine has reached O(phase) and reports; nothing is recorded.
    type: str
    choices: [status, begin, advance, complete]
    default: status
  scope:
    description: With O(state=begin), V(issuing) (new issuing CA, same root) or V(root) (new root and issuing CA).
    type: str
    choices: [issuing, root]
  phase:
    description: With O(state=advance) or O(state=complete), the phase.
    type: str
    choices: [trust, reissue, retire]
  leaves:
    description:
      - The fleet's installed leaf certificates as M(fleet.mtls.cert_info) returns them, each with its C(host).
        Matched against the old generation's key identifiers (C(aki)), or issuer names without one.
      - Required to enter V(retire); otherwise the matches are reported in RV(old_generation_leaves).
    type: list
    elements: dict
  key_type:
    description: Key type of the new issuers (generated in the engine).
    type: str
    default: ec_p256
    choices: [ec_p256, ec_p384, rsa2048, rsa3072, rsa4096, ed25519]
  root_common_name:
    description: Common name of a new root; C( G<N>) is appended.
    type: str
    default: fleet.mtls root CA
  issuing_common_name:
    description: Common name of a new issuing CA; C( G<N>) is appended.
    type: str
    default: fleet.mtls issuing CA
  root_validity_days:
    description: Validity of a new root.
    type: int
    default: 3650
  issuing_validity_days:
    description: Validity of a new issuing CA.
    type: int
    default: 1095
  truncate_to_issuer:
    description: The new issuing issuer's C(leaf_not_after_behavior) - C(truncate) when true, else C(err).
    type: bool
    default: false
  for_report:
    description: With O(state=status), return only RV(report_input), what C(fleet.mtls.report) needs.
    type: bool
    default: false
extends_documentation_fragment:
  - fleet.mtls.attributes
  - fleet.mtls.vault
attributes:
  check_mode:
    support: full
    details: Reads the engine and reports the steps it would take (RV(changes)); writes nothing.
  diff_mode:
    support: none
notes:
  - Generating and revoking issuers needs more than the signing policy; docs/vault.md gives the rotation
    token's minimal policy.
seealso:
  - module: fleet.mtls.ca_rotation
  - module: fleet.mtls.vault_ca_publication
  - module: fleet.mtls.vault_pki_mount
"""

EXAMPLES = r"""
- name: Start an issuing CA rotation on the engine (phase trust)
  fleet.mtls.vault_ca_rotation:
    url: https://bao.example.com:8200
    token: "{{ mtls_vault_rotation_token }}"
    state: begin
    scope: issuing

- name: Retire the old generation once nothing chains to it
  fleet.mtls.vault_ca_rotation:
    url: https://bao.example.com:8200
    token: "{{ mtls_vault_rotation_token }}"
    state: advance
    phase: retire
    leaves: "{{ fleet_leaves }}"
"""

RETURN = r"""
report_input:
  description:
    - With O(state=status) and O(for_report=true), what the C(fleet.mtls.report) playbook takes from the CA, in the
      shape M(fleet.mtls.ca_rotation) O(fleet.mtls.ca_rotation#module:for_report=true) gives for the local backend -
      the generations (issuing issuer with its root, active, incoming, retiring or retired), the rotation under way
      and the CRL state (this and next update, CRL number) of every live issuer the engine holds a key for.
  returned: when for_report is true
  type: dict
rotation:
  description: The rotation under way (C(scope), C(from), C(to), C(phase), C(phase_completed)), V(null) when none is.
  returned: always
  type: dict
phase:
  description: The engine's phase, V(null) without a rotation.
  returned: always
  type: str
phase_completed:
  description: Always V(false) - the engine records where a rotation stands, not whether every host took it.
  returned: always
  type: bool
next_phase:
  description: The phase to run next (the engine's), V(null) without a rotation.
  returned: always
  type: str
remaining_phases:
  description: The phases from RV(next_phase) to the end; empty without a rotation.
  returned: always
  type: list
  elements: str
phases:
  description: Every phase of a rotation, in order.
  returned: always
  type: list
  elements: str
active:
  description: Generation number of the default issuer (C(issuing-<N>)).
  returned: always
  type: int
summary:
  description: Where the mount stands, in one sentence.
  returned: always
  type: str
  sample: issuing rotation from generation 1 to 2, phase trust in progress
default_issuer:
  description: Name of the mount's default issuer (what signs).
  returned: always
  type: str
issuers:
  description: Every issuer of the mount (C(id), C(name), C(subject), C(usage), C(revoked), C(default), C(has_key)).
  returned: always
  type: list
  elements: dict
old_issuers:
  description: The issuers the rotation replaces (revoked by V(retire)).
  returned: always
  type: list
  elements: str
old_generation_leaves:
  description: Entries of O(leaves) that chain to the old generation (C(host), C(identity), C(path), C(serial), C(issuer)).
  returned: always
  type: list
  elements: dict
changes:
  description: The engine steps taken (in check mode, that would be taken).
  returned: always
  type: list
  elements: str
blocking_hosts:
  description: On a refused retire, the hosts whose leaves still chain to the old generation.
  returned: failure
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.mtls.plugins.module_utils.module_common import run_module
from ansible_collections.fleet.mtls.plugins.module_utils.vault_pki import connect, module_spec
from ansible_collections.fleet.mtls.plugins.module_utils.vault_rotation import (
    PHASES, Rotator, check_mode_report, report, report_input)


def act(module):
    params = module.params
    pki = connect(params)
    pki.login()
    rotator = Rotator(pki, check_mode=module.check_mode, key_type=params["key_type"],
                      root_common_name=params["root_common_name"], issuing_common_name=params["issuing_common_name"],
                      root_validity_days=params["root_validity_days"],
                      issuing_validity_days=params["issuing_validity_days"],
                      leaf_not_after_behavior="truncate" if params["truncate_to_issuer"] else "err")
    action = params["state"]
    if action == "status" and params["for_report"]:
        return {"changed": False, "report_input": report_input(pki)}
    before = rotator.state()
    if action == "begin":
        rotator.begin(params["scope"])
    elif action == "advance":
        rotator.advance(params["phase"], params["leaves"])
    elif action == "complete":
        rotator.complete(params["phase"])
    after = rotator.state() if rotator.changes and not module.check_mode else before
    result = report(after, params["leaves"])
    if module.check_mode and rotator.changes:
        result.update(check_mode_report(before, action, params["scope"], params["phase"]))
    result["changed"] = bool(rotator.changes)
    result["changes"] = rotator.changes
    return result


def main():
    spec = module_spec(dict(
        state=dict(type="str", default="status", choices=["status", "begin", "advance", "complete"]),
        scope=dict(type="str", choices=["issuing", "root"]),
        phase=dict(type="str", choices=list(PHASES)),
        leaves=dict(type="list", elements="dict"),
        key_type=dict(type="str", default="ec_p256",
                      choices=["ec_p256", "ec_p384", "rsa2048", "rsa3072", "rsa4096", "ed25519"]),
        root_common_name=dict(type="str", default="fleet.mtls root CA"),
        issuing_common_name=dict(type="str", default="fleet.mtls issuing CA"),
        root_validity_days=dict(type="int", default=3650),
        issuing_validity_days=dict(type="int", default=1095),
        truncate_to_issuer=dict(type="bool", default=False),
        for_report=dict(type="bool", default=False),
    ))
    spec["required_if"] = [("state", "begin", ("scope",)), ("state", "advance", ("phase",)),
                           ("state", "complete", ("phase",))]
    module = AnsibleModule(**spec)
    run_module(module, act)


if __name__ == "__main__":
    main()
