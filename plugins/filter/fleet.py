# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fleet-wide glue every play reads (docs in the .yml files beside)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible_collections.fleet.mtls.plugins.module_utils.consumers import consumer_records
from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError
from ansible_collections.fleet.mtls.plugins.module_utils.host_layout import HostLayout
from ansible_collections.fleet.mtls.plugins.module_utils.loaded_state import RECORDS_DIR, record_path, service_records
from ansible_collections.fleet.mtls.plugins.module_utils.rotation import phases_to_run

CA_GROUP = "mtls_ca"
CA_HOLDER_FALLBACK = "localhost"


def ca_holder(groups):
    """The host that holds the CA stores and signs: the first host of group ``mtls_ca``, or the
    controller (``localhost``) when that group is missing or empty."""
    if not isinstance(groups, dict) and not hasattr(groups, "get"):
        raise AnsibleFilterError("fleet.mtls.ca_holder expects the inventory's groups (a mapping), got %s"
                                 % type(groups).__name__)
    members = groups.get(CA_GROUP) or []
    if isinstance(members, str):
        raise AnsibleFilterError("fleet.mtls.ca_holder: group %s must be a list of hosts, got the string %r"
                                 % (CA_GROUP, members))
    members = list(members)
    return members[0] if members else CA_HOLDER_FALLBACK


def identity_files(mtls_dir, name):
    """The files of identity ``name`` under the on-host directory ``mtls_dir``, from the one layout
    (``host_layout.HostLayout``): key, certificate, chain, csr, trust_bundle, crl."""
    try:
        layout = HostLayout(str(mtls_dir), name)
    except MtlsError as exc:
        raise AnsibleFilterError("fleet.mtls.identity_files: %s" % exc.message)
    return {"key": layout.key, "certificate": layout.certificate, "chain": layout.chain, "csr": layout.csr,
            "trust_bundle": layout.trust_bundle, "crl": layout.crl}


def loaded_state_file(service):
    """Where the reload handler of ``service`` records what the service loaded."""
    try:
        return record_path(service)
    except MtlsError as exc:
        raise AnsibleFilterError("fleet.mtls.loaded_state_file: %s" % exc.message)


def loaded_state_files(group_names, consumers=None, records_dir=RECORDS_DIR):
    """{service: record} of the services a host's inventory groups put on it, and of its
    ``consumers`` (``mtls_consumers``, records under ``records_dir``) under ``consumer <name>``."""
    if isinstance(group_names, str) or not hasattr(group_names, "__iter__"):
        raise AnsibleFilterError("fleet.mtls.loaded_state_files expects the host's group_names (a list), got %r"
                                 % (group_names,))
    records = service_records(group_names)
    try:
        records.update(consumer_records(consumers, str(records_dir)))
    except MtlsError as exc:
        raise AnsibleFilterError("fleet.mtls.loaded_state_files: %s" % exc.message)
    return records


def due_hosts(hosts, hostvars, status="mtls_identity_status"):
    """The hosts of ``hosts`` whose fleet.mtls.host_status answer (registered as ``status``) is due,
    in the order given. A host without an answer fails: its check did not run."""
    if isinstance(hosts, str) or not hasattr(hosts, "__iter__"):
        raise AnsibleFilterError("fleet.mtls.due_hosts expects a list of hosts, got %r" % (hosts,))
    due = []
    for host in hosts:
        answer = (hostvars.get(host) or {}).get(status)
        if not isinstance(answer, dict) or "due" not in answer:
            raise AnsibleFilterError("fleet.mtls.due_hosts: host %s has no %s (fleet.mtls.host_status) answer"
                                     % (host, status))
        if answer["due"]:
            due.append(host)
    return due


def rotate_ca_plan(remaining, asked="all", under_way=True, check_mode=False):
    """The phases this rotate_ca run goes through (rotation.phases_to_run)."""
    try:
        return phases_to_run(remaining or [], asked, under_way, check_mode)
    except MtlsError as exc:
        raise AnsibleFilterError("fleet.mtls.rotate_ca_plan: %s" % exc.message)


class FilterModule(object):
    def filters(self):
        return {"ca_holder": ca_holder, "identity_files": identity_files, "loaded_state_file": loaded_state_file,
                "loaded_state_files": loaded_state_files, "due_hosts": due_hosts, "rotate_ca_plan": rotate_ca_plan}
