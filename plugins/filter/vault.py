# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the vault backend: which credentials a playbook hands to the vault modules."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError
from ansible_collections.fleet.mtls.plugins.module_utils.vault_pki import credentials_for


def vault_credentials(variables, purpose="signing"):
    """``token`` or ``role_id``/``secret_id`` of ``purpose`` from a host's variables (vault_pki.credentials_for)."""
    try:
        return credentials_for(purpose, variables)
    except MtlsError as exc:
        raise AnsibleFilterError("fleet.mtls.vault_credentials: %s" % exc.message)


class FilterModule(object):
    def filters(self):
        return {"vault_credentials": vault_credentials}
