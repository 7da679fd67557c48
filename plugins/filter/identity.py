# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters behind the fleet.mtls.identity role (docs in the .yml files beside); the decisions are
module_utils/identity_plan.py's."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible_collections.fleet.mtls.plugins.module_utils import identity_plan
from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError
from ansible_collections.fleet.mtls.plugins.module_utils.manifest import records_change, with_recorded


def _results(host_vars, name):
    registered = host_vars.get(name) if host_vars is not None else None
    if not isinstance(registered, dict):
        return []
    return list(registered.get("results") or [])


def identity_batch(batch, hostvars, csr_checks="_mtls_identity_csrs", central_checks="_mtls_identity_central_checks"):
    """Reads the registered check results of every host of the batch from hostvars."""
    if not isinstance(batch, list):
        raise AnsibleFilterError("fleet.mtls.identity_batch: the input must be the list of the batch's hosts")
    csr = [(host, _results(hostvars.get(host), csr_checks)) for host in batch]
    central = [(host, _results(hostvars.get(host), central_checks)) for host in batch]
    return identity_plan.batch_plan(csr, central)


def identity_list(entries, defaults):
    if not isinstance(defaults, dict):
        raise AnsibleFilterError("fleet.mtls.identity_list: defaults must be a dict")
    return identity_plan.resolve_identities(entries, defaults)


def identity_common_name(hostvars, host, identity, recorded=None):
    try:
        return identity_plan.declared_common_name(hostvars, host, identity, recorded)
    except MtlsError as exc:
        raise AnsibleFilterError("fleet.mtls.identity_common_name: %s" % exc.message)


def manifest_outdated(manifest, identities, consumers):
    if not isinstance(manifest, dict) or not isinstance(manifest.get("identities"), list) \
            or not isinstance(manifest.get("consumers"), list):
        raise AnsibleFilterError("fleet.mtls.manifest_outdated: the input must be a manifest as fleet.mtls.manifest "
                                 "reads it (identities and consumers lists)")
    return records_change(manifest, identities or [], consumers or [])


def identity_declared_names(hostvars, host):
    try:
        return identity_plan.declared_identity_names(hostvars, host)
    except MtlsError as exc:
        raise AnsibleFilterError("fleet.mtls.identity_declared_names: %s" % exc.message)


class FilterModule(object):
    def filters(self):
        return {
            "identity_default_profile": identity_plan.default_profile,
            "identity_default_key_group": identity_plan.default_key_group,
            "identity_default_sans": identity_plan.default_sans,
            "identity_default_identities": identity_plan.default_identities,
            "identity_list": identity_list,
            "identity_common_name": identity_common_name,
            "identity_declared_names": identity_declared_names,
            "identity_settings": identity_plan.settings_by_name,
            "identity_batch": identity_batch,
            "identity_checks": identity_plan.identities_to_check,
            "identity_issued": identity_plan.issued_for_host,
            "identity_install_calls": identity_plan.install_calls,
            "identity_changes": identity_plan.install_changes,
            "identity_changed": identity_plan.any_change,
            "with_recorded": with_recorded,
            "manifest_outdated": manifest_outdated,
        }
