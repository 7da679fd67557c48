#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: host_status
short_description: Tell in one read-only call whether a maintenance run has anything to do on a host
version_added: "0.1.0"
description:
  - Runs on each managed host, once for all its identities and services, and never changes anything.
  - For every identity it gives the renewal decision M(fleet.mtls.csr) would make (same code, in
    check mode), as RV(identities[].needs_issue) and a stable RV(identities[].reason). Key files whose
    owner, group or mode M(fleet.mtls.csr) would fix count as due too.
  - It compares the installed trust bundle and CRL file with what the CA publishes, as
    M(fleet.mtls.install_identity) would (same verification, in check mode).
  - It tells whether a service still owes a reload, as M(fleet.mtls.loaded_files) does, from the
    record the service's reload handler wrote. A missing record counts as owed.
  - The identities and consumers the host's manifest holds (M(fleet.mtls.manifest)) but O(identities) does not
    declare are checked too, with their recorded settings, so what a user's own play created stays renewed.
  - With O(record_manifest) it also tells whether the manifest the C(fleet.mtls.identity) role records
    would change (identities or O(consumers) that differ from what the host holds).
  - The playbook C(fleet.mtls.rotate) calls it for the whole fleet at once and sends only the hosts
    with RV(due) on to its serial batches. The C(fleet.mtls.identity) role calls it first on every host
    (with O(record_manifest)); a host with nothing due makes no other call.
author:
  - fleet.mtls maintainers (!UNKNOWN)
extends_documentation_fragment:
  - fleet.mtls.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
options:
  dir:
    description:
      - Base directory of the on-host layout (C(private/), C(certs/), C(trust-bundle.pem), C(crl.pem)).
    type: path
    default: /etc/mtls
  identities:
    description:
      - The identities of this host, as the C(fleet.mtls.identity) role resolves them
        (C(mtls_identity_list)). Each entry takes the options of M(fleet.mtls.csr) by the same names
        (C(name), C(key_type), C(common_name), C(sans), C(profile), C(owner), C(group), C(mode),
        C(renew_fraction), C(renew_days), C(new_key_on_renew)) and C(central_key) (the key is made on
        the CA holder, so the key file's owner, group and mode are not checked). Other keys are ignored.
      - The entries are checked as the role checks them (unique names, the name pattern, C(sans) a
        list); a problem fails the call, naming the entry and the value.
      - A C(sans) entry that the C(fleet.mtls.identity_default_sans) filter made with C(on_host=true)
        stands for the host's default SANs; they are made from the facts C(fqdn), C(hostname) and
        C(default_ipv4) as this module reads them on the host, so the check needs no
        M(ansible.builtin.setup) call.
    type: list
    elements: raw
    default: []
  trusted_issuers:
    description:
      - PEM certificates that may have signed the leaves (the active signing CA). Without it any
        issuer is accepted.
    type: str
  force:
    description:
      - Every identity counts as due (reason V(forced)).
    type: bool
    default: false
  trust_bundle_content:
    description:
      - The trust bundle the CA publishes. Without it the trust bundle and CRLs are not checked.
    type: str
  crl_content:
    description:
      - The CRLs the CA publishes (PEM), checked against O(trust_bundle_content).
    type: str
  loaded_state_files:
    description:
      - For each service on this host, the record its reload handler writes (as O(fleet.mtls.loaded_files#module:state_file)).
      - The consumers the host's manifest holds (M(fleet.mtls.manifest)) are added, under C(consumer <name>).
    type: dict
    default: {}
  consumer_records_dir:
    description: Where the records of the host's consumers are (M(fleet.mtls.consumers) O(fleet.mtls.consumers#module:records_dir)).
    type: path
    default: /var/lib/fleet-mtls/loaded
  record_manifest:
    description:
      - Count as due a host whose manifest would change if the identities and O(consumers) were
        recorded (M(fleet.mtls.manifest) with O(fleet.mtls.manifest#module:state=present)).
    type: bool
    default: false
  consumers:
    description:
      - The consumers declared for this host (C(mtls_consumers)), compared with the manifest's when
        O(record_manifest) is set, as M(fleet.mtls.manifest) records them.
    type: list
    elements: raw
    default: []
notes:
  - It takes no lock and removes no leftovers of killed runs; the writing modules do that when the host is due.
"""

EXAMPLES = r"""
- name: Find out what is due on every host at once
  fleet.mtls.host_status:
    dir: /etc/mtls
    identities:
      - name: web1
        sans: [web1.example.com]
        owner: root
        group: www-data
        mode: "0640"
    trusted_issuers: "{{ ca_publication.publication['signing-ca.pem'] }}"
    trust_bundle_content: "{{ ca_publication.publication['trust-bundle.pem'] }}"
    crl_content: "{{ ca_publication.publication['crl-bundle.pem'] }}"
    loaded_state_files:
      nginx: /var/lib/fleet-mtls/loaded/nginx.json
  register: status

- name: Put the hosts with something to do in one group
  ansible.builtin.group_by:
    key: "{{ 'due' if status.due else 'unchanged' }}"
"""

RETURN = r"""
due:
  description: Whether anything is due on this host (RV(reasons) is not empty).
  returned: always
  type: bool
reasons:
  description: What is due, one line each, naming the identity, file or service.
  returned: always
  type: list
  elements: str
  sample: ["identity web1: renewal_window (29.0 days left, renewal from 30.0)"]
identities:
  description: One entry per identity, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Identity name.
      type: str
    due:
      description: Whether the identity needs a certificate or its key file's attributes differ.
      type: bool
    needs_issue:
      description: The renewal decision of M(fleet.mtls.csr).
      type: bool
    reason:
      description: Its reason (as RV(fleet.mtls.csr#module:reason)).
      type: str
    detail:
      description: Human-readable detail of the reason.
      type: str
    days_left:
      description: Days until the installed certificate expires, V(null) without one.
      type: float
    not_after:
      description: Expiry of the installed certificate (ISO 8601 UTC), V(null) without one.
      type: str
    serial:
      description: Serial number of the installed certificate, V(null) without one.
      type: str
    attributes_differ:
      description: The key file's owner, group or mode differs from what is asked (and no certificate is needed).
      type: bool
trust:
  description: V(null) without O(trust_bundle_content) or without identities; else which installed files differ.
  returned: always
  type: dict
  contains:
    trust_bundle:
      description: The trust bundle differs from O(trust_bundle_content).
      type: bool
    crl:
      description: The CRL file differs from O(crl_content).
      type: bool
    attributes:
      description: Only the files' owner, group or mode differ.
      type: bool
reloads:
  description: Per service of O(loaded_state_files), whether a reload is owed.
  returned: always
  type: dict
  sample: {"nginx": {"owed": true, "record_found": true, "pending_paths": ["/etc/mtls/certs/web1.chain.pem"]}}
identity_list:
  description:
    - The identities checked, in order - those of O(identities), then those only the manifest holds -
      with the host's default SANs made (the identity role's C(mtls_identity_list)).
  returned: always
  type: list
  elements: dict
manifest:
  description: The host's manifest as read (C(format), C(identities), C(consumers)); an empty one when there is none.
  returned: always
  type: dict
manifest_outdated:
  description: With O(record_manifest), whether recording RV(identity_list) and O(consumers) would change the manifest.
  returned: always
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.mtls.plugins.module_utils.host_facts import default_sans_facts
from ansible_collections.fleet.mtls.plugins.module_utils.host_status import host_status
from ansible_collections.fleet.mtls.plugins.module_utils.module_common import run_module


def status(module):
    return host_status(module.params, warn=module.warn, read_facts=lambda: default_sans_facts(module))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            dir=dict(type="path", default="/etc/mtls"),
            identities=dict(type="list", elements="raw", default=[]),
            trusted_issuers=dict(type="str"),
            force=dict(type="bool", default=False),
            trust_bundle_content=dict(type="str"),
            crl_content=dict(type="str"),
            loaded_state_files=dict(type="dict", default={}),
            consumer_records_dir=dict(type="path", default="/var/lib/fleet-mtls/loaded"),
            record_manifest=dict(type="bool", default=False),
            consumers=dict(type="list", elements="raw", default=[]),
        ),
        supports_check_mode=True,
    )
    run_module(module, status)


if __name__ == "__main__":
    main()
