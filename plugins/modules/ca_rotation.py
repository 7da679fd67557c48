#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: ca_rotation
short_description: Read and move the CA generation state of a three-phase CA rotation
version_added: "0.1.0"
description:
  - Runs on the CA holder against the CA directory that the P(fleet.mtls.ca#role) role keeps
    (C(rotation.json) next to the C(root-<N>) and C(issuing-<N>) stores).
  - A rotation has three phases. V(trust) adds a new generation as C(incoming) (in every trust
    bundle, not signing). V(reissue) makes it C(active) (it signs every leaf) and the old one
    C(retiring) (still trusted). V(retire) drops the old generation from the trust bundles
    (C(retired)); it is refused while any live leaf still chains to the old generation.
  - Each phase is recorded when it starts and when its work on the fleet is done (O(state=complete)),
    so a rotation interrupted at any point resumes by running the recorded phase again.
  - The state file is read and written under an exclusive lock, atomically; a refused transition
    leaves it untouched. The module touches no key and needs no passphrase.
author:
  - fleet.mtls maintainers (!UNKNOWN)
options:
  ca_dir:
    description:
      - CA directory holding C(rotation.json) and the CA stores (the role's C(mtls_ca_dir)).
      - A directory without C(rotation.json) is at generation 1 (C(root-1), C(issuing-1)), no rotation.
    type: path
    required: true
  state:
    description:
      - V(status) only reports.
      - V(initialize) reports as V(status) and writes C(rotation.json) (generation 1 active) when the CA
        directory has none yet; an existing file is left as it is. The P(fleet.mtls.ca#role) role runs it.
      - V(publish) writes the fleet's trust bundle (C(trust-bundle.pem)), CRL bundle (C(crl-bundle.pem),
        from O(crls)) and signing CA (C(signing-ca.pem)) into O(ca_dir), each atomically and only when it
        differs. The P(fleet.mtls.ca#role) role runs it once every trusted store exists.
      - V(begin) starts a rotation with O(scope) (phase V(trust)); while a rotation with the same scope
        is under way it changes nothing, another scope is refused.
      - V(complete) records that the work of O(phase) is done on the fleet. Completing V(retire) closes
        the rotation (recorded in C(history)).
      - V(advance) enters the next phase once the recorded one is complete. Entering V(retire) is refused
        while O(leaves) holds a certificate that chains to the old generation; the message names the hosts.
    type: str
    choices: [status, initialize, begin, complete, advance, publish]
    default: status
  scope:
    description:
      - With O(state=begin), what the rotation replaces. V(issuing) makes a new issuing CA under the same
        root; V(root) makes a new root and a new issuing CA.
    type: str
    choices: [issuing, root]
  phase:
    description:
      - With O(state=complete), the phase whose work is done (must be the recorded phase).
      - With O(state=advance), the phase to enter; when the rotation is already in it nothing changes,
        which makes a re-run harmless. Without it, the next phase.
    type: str
    choices: [trust, reissue, retire]
  leaves:
    description:
      - The live leaf certificates of the fleet, as M(fleet.mtls.cert_info) returns them, each with
        the C(host) it is installed on (and ideally its C(identity)). Matched against the old generation's
        CA key identifiers (C(aki)), or issuer names for leaves without one.
      - Required by O(state=advance) into V(retire); with other states the matches are reported in
        RV(old_generation_leaves).
    type: list
    elements: dict
  crls:
    description:
      - With O(state=publish), the CRL (PEM) of every trusted store, in the order of RV(trust_stores);
        V(null) for a CRL that check mode would rebuild (its place in the bundle stays empty).
    type: list
    elements: raw
  root_common_name:
    description:
      - The configured common name of root CAs; RV(ca_stores) then holds each root's C(common_name)
        (generation 1 keeps it, later roots get C( G<N>)).
    type: str
  issuing_common_name:
    description: As O(root_common_name), for the issuing CAs.
    type: str
  for_report:
    description:
      - Also return RV(report_input), what the C(fleet.mtls.report) playbook reads from the CA holder.
    type: bool
    default: false
  read_publication:
    description:
      - Also return what the P(fleet.mtls.ca#role) role published (RV(publication),
        RV(publication_missing)).
    type: bool
    default: false
notes:
  - In check mode the transition is validated and its result returned; nothing is written.
  - The stores of a new generation are created by the P(fleet.mtls.ca#role) role from C(rotation.json);
    entering V(reissue) is refused until they exist.
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
  - module: fleet.mtls.cert_info
"""

EXAMPLES = r"""
- name: Where does the CA stand?
  fleet.mtls.ca_rotation:
    ca_dir: /var/lib/fleet-mtls/ca
  register: ca_state

- name: Start a root CA rotation (phase trust)
  fleet.mtls.ca_rotation:
    ca_dir: /var/lib/fleet-mtls/ca
    state: begin
    scope: root

- name: Record that every host trusts the new generation
  fleet.mtls.ca_rotation:
    ca_dir: /var/lib/fleet-mtls/ca
    state: complete
    phase: trust

- name: Retire the old generation once nothing chains to it
  fleet.mtls.ca_rotation:
    ca_dir: /var/lib/fleet-mtls/ca
    state: advance
    phase: retire
    leaves: "{{ fleet_leaves }}"  # cert_info results, each with host and identity added
"""

RETURN = r"""
active:
  description: Id of the generation that signs leaves.
  returned: always
  type: int
generations:
  description: Every generation with C(id), C(root), C(issuing) (store names) and C(state).
  returned: always
  type: list
  elements: dict
rotation:
  description:
    - The rotation under way (C(scope), C(from), C(to), C(phase), C(started), C(phase_started),
      C(phase_completed)), V(null) when none is.
  returned: always
  type: dict
phase:
  description: The recorded phase, V(null) without a rotation.
  returned: always
  type: str
phase_completed:
  description: Whether the recorded phase's work is done.
  returned: always
  type: bool
next_phase:
  description: The phase to run next (the recorded one until it completes), V(null) without a rotation.
  returned: always
  type: str
remaining_phases:
  description: The phases from RV(next_phase) to the end of the rotation (what a run to the end goes through); empty without a rotation.
  returned: always
  type: list
  elements: str
phases:
  description: Every phase of a rotation, in order (V(trust), V(reissue), V(retire)).
  returned: always
  type: list
  elements: str
history:
  description: Finished rotations (C(scope), C(from), C(to), C(started), C(finished)).
  returned: always
  type: list
  elements: dict
summary:
  description: Where the CA stands, in one sentence.
  returned: always
  type: str
  sample: root rotation from generation 1 to 2, phase reissue in progress
active_issuing:
  description: Path of the active generation's issuing CA store (what signs leaves).
  returned: always
  type: str
trust_stores:
  description: Paths of the CA stores in the trust bundle, in bundle order.
  returned: always
  type: list
  elements: str
missing_stores:
  description: Trusted stores that do not exist yet (the ca role creates them).
  returned: always
  type: list
  elements: str
trust_bundle:
  description: PEM of every trusted CA certificate in bundle order; V(null) while a store is missing.
  returned: always
  type: str
ca_stores:
  description:
    - The CA stores of the trusted generations in bundle order, one entry per store (a root shared by
      two generations once), each with C(name), C(path), C(kind) (V(root) or V(intermediate)),
      C(generation), C(parent_path) (the root of an issuing CA, V(null) for a root), C(path_length)
      (V(0) for an issuing CA, V(null) for a root), C(name_suffix) (empty for C(root-1)/C(issuing-1),
      C( G<N>) for later stores) and, with O(root_common_name)/O(issuing_common_name), C(common_name).
  returned: always
  type: list
  elements: dict
root_stores:
  description: The entries of RV(ca_stores) with C(kind=root).
  returned: always
  type: list
  elements: dict
issuing_stores:
  description: The entries of RV(ca_stores) with C(kind=intermediate).
  returned: always
  type: list
  elements: dict
crl_bundle:
  description: With O(state=publish), the CRL bundle written (or, in check mode, that would be).
  returned: when state is publish
  type: str
signing_ca:
  description: With O(state=publish), PEM of the active issuing CA.
  returned: when state is publish
  type: str
published_changes:
  description: With O(state=publish), the files that were (in check mode would be) rewritten.
  returned: when state is publish
  type: list
  elements: str
report_input:
  description:
    - With O(for_report), C(rotation) (the recorded state, V({}) without C(rotation.json)),
      C(generations) (C(id), C(state), C(root_pem), C(issuing_pem) of every generation) and C(crls)
      (C(ca), C(next_update), C(this_update), C(crl_number) from each trusted store's C(crl.json)).
  returned: when for_report is true
  type: dict
publication:
  description:
    - With O(read_publication), the published files found in O(ca_dir) by name (C(rotation.json),
      C(trust-bundle.pem), C(crl-bundle.pem), C(signing-ca.pem)) and their text.
  returned: when read_publication is true
  type: dict
publication_missing:
  description: With O(read_publication), the published files that do not exist in O(ca_dir).
  returned: when read_publication is true
  type: list
  elements: str
old_generation_leaves:
  description:
    - Entries of O(leaves) that chain to the generation a rotation replaces (C(host), C(identity),
      C(path), C(serial), C(issuer)); empty without a rotation or without O(leaves).
  returned: always
  type: list
  elements: dict
blocking_hosts:
  description: On a refused retire, the hosts whose leaves still chain to the old generation.
  returned: failure
  type: list
  elements: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.mtls.plugins.module_utils import rotation as rot
from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError
from ansible_collections.fleet.mtls.plugins.module_utils.module_common import run_module


def _old_generation_leaves(state_file, state, leaves):
    if not state.rotation or not leaves:
        return []
    key_ids, subjects = state_file.generation_identifiers(state.old_generation())
    return rot.leaves_on_generation(leaves, key_ids, subjects)


def _require_new_stores(state_file, state):
    new = state.generation(state.rotation["to"])
    missing = [name for name in (new["root"], new["issuing"])
               if not os.path.isfile(os.path.join(state_file.store_path(name), "store.json"))]
    if missing:
        raise MtlsError("cannot start phase reissue: the stores of generation %d (%s) do not exist in %s yet; "
                        "run phase trust (the fleet.mtls.ca role creates them) first"
                        % (new["id"], ", ".join(missing), state_file.ca_dir))


def _transition(module, state_file):
    params = module.params
    action = params["state"]
    if action == "begin":
        if not params["scope"]:
            raise MtlsError("state=begin needs scope: issuing (new issuing CA, same root) or root (new root and issuing CA)")
        return lambda state: rot.begin(state, params["scope"])
    if action == "complete":
        if not params["phase"]:
            raise MtlsError("state=complete needs phase: the phase whose work is done")
        return lambda state: rot.complete(state, params["phase"])

    def advance(state):
        target = params["phase"]
        if target is not None and state.phase == target:
            return state
        if target is not None and state.phase_completed and state.next_phase() != target:
            raise MtlsError("cannot enter phase %s: %s; the next phase is %s"
                            % (target, state.summary(), state.next_phase()))
        if state.rotation and state.phase_completed and state.next_phase() == "reissue":
            _require_new_stores(state_file, state)
        blocking = []
        if state.rotation and state.phase_completed and state.next_phase() == "retire":
            if params["leaves"] is None:
                raise MtlsError("entering phase retire needs leaves: the fleet's live certificates "
                                "(fleet.mtls.cert_info results with host), to prove none chains to the old generation")
            blocking = _old_generation_leaves(state_file, state, params["leaves"])
        return rot.advance(state, blocking_leaves=blocking)

    return advance


def _ca_stores(state_file, state, params):
    base_names = {"root": params["root_common_name"], "intermediate": params["issuing_common_name"]}
    stores = []
    for ca in state.trusted_cas():
        entry = {"name": ca["name"], "path": state_file.store_path(ca["name"]), "kind": ca["kind"],
                 "generation": ca["generation"], "name_suffix": ca["name_suffix"],
                 "parent_path": state_file.store_path(ca["parent"]) if ca["parent"] else None,
                 "path_length": 0 if ca["kind"] == "intermediate" else None}
        if base_names[ca["kind"]] is not None:
            entry["common_name"] = base_names[ca["kind"]] + ca["name_suffix"]
        stores.append(entry)
    return stores


def _publish(module, state_file, state):
    texts, changed, before = state_file.publish(state, module.params["crls"] or [], check_mode=module.check_mode)
    result = {"changed": bool(changed), "crl_bundle": texts[rot.CRL_BUNDLE_FILE],
              "signing_ca": texts[rot.SIGNING_CA_FILE], "published_changes": changed}
    if module._diff:
        result["diff"] = [{"before": before[name] or "", "after": texts[name],
                           "before_header": os.path.join(state_file.ca_dir, name),
                           "after_header": os.path.join(state_file.ca_dir, name)} for name in changed]
    return result


def manage_rotation(module):
    params = module.params
    state_file = rot.StateFile(params["ca_dir"])
    extra = {}
    if params["state"] in ("status", "publish"):
        before = after = state_file.read()
        changed = False
    elif params["state"] == "initialize":
        existed = state_file.exists()
        after, changed = state_file.initialize(check_mode=module.check_mode)
        before = after if existed else None
    else:
        before, after, changed = state_file.transition(_transition(module, state_file),
                                                       check_mode=module.check_mode)
    if params["state"] == "publish":
        extra = _publish(module, state_file, after)
        changed = extra.pop("changed")
    bundle, missing = state_file.trust_bundle(after)
    ca_stores = _ca_stores(state_file, after, params)
    result = {
        "changed": changed,
        "active": after.data["active"],
        "generations": after.generations,
        "rotation": after.rotation,
        "phase": after.phase,
        "phase_completed": after.phase_completed,
        "next_phase": after.next_phase(),
        "remaining_phases": after.remaining_phases(),
        "phases": list(rot.PHASES),
        "history": after.data["history"],
        "summary": after.summary(),
        "active_issuing": state_file.store_path(after.active_generation()["issuing"]),
        "trust_stores": [state_file.store_path(name) for name in after.trusted_stores()],
        "missing_stores": missing,
        "trust_bundle": None if missing else bundle,
        "ca_stores": ca_stores,
        "root_stores": [store for store in ca_stores if store["kind"] == "root"],
        "issuing_stores": [store for store in ca_stores if store["kind"] == "intermediate"],
        "old_generation_leaves": _old_generation_leaves(state_file, after, params["leaves"]),
    }
    diff = extra.pop("diff", None)
    result.update(extra)
    if params["for_report"]:
        result["report_input"] = state_file.report_input()
    if params["read_publication"]:
        result["publication"], result["publication_missing"] = state_file.publication()
    if diff is not None:
        result["diff"] = diff
    elif module._diff:
        result["diff"] = {"before": before.to_json() if before is not None else "", "after": after.to_json(),
                          "before_header": state_file.path, "after_header": state_file.path}
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            ca_dir=dict(type="path", required=True),
            state=dict(type="str", default="status",
                       choices=["status", "initialize", "begin", "complete", "advance", "publish"]),
            scope=dict(type="str", choices=list(rot.SCOPES)),
            phase=dict(type="str", choices=list(rot.PHASES)),
            leaves=dict(type="list", elements="dict"),
            crls=dict(type="list", elements="raw"),
            root_common_name=dict(type="str"),
            issuing_common_name=dict(type="str"),
            read_publication=dict(type="bool", default=False),
            for_report=dict(type="bool", default=False),
        ),
        required_if=[("state", "publish", ("crls",))],
        supports_check_mode=True,
    )
    run_module(module, manage_rotation)


if __name__ == "__main__":
    main()
