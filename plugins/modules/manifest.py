#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: manifest
short_description: Read, record or retire what identities and consumers a host holds
version_added: "0.1.0"
description:
  - The host's manifest (C(<dir>/manifest.json), mode 0644, settings only, never key material) lists every identity
    the M(fleet.mtls.identity) role installed there, with its settings, and every consumer it applied
    (docs/consumers.md), whoever declared them - the inventory or a user's own play.
  - Maintenance runs (C(fleet.mtls.rotate), C(fleet.mtls.revoke), C(fleet.mtls.rotate_ca)) act on what the manifest
    holds as well as on what the inventory declares, so an identity created by a user's play keeps being renewed,
    until it is retired with O(state=absent) (the C(fleet.mtls.retire) playbook).
  - A manifest that cannot be parsed fails the task, naming the file (ignoring it would stop renewals silently).
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
    description: The host's identity directory (C(mtls_dir)).
    type: path
    default: /etc/mtls
  state:
    description:
      - V(read) returns the manifest and changes nothing.
      - V(present) records O(identities) (resolved entries, as the identity role's C(mtls_identity_list)) and
        O(consumers) (as C(mtls_consumers)); entries of the same name are replaced, the others kept.
      - V(absent) retires the identities named in O(identities) (their key, staged key, certificate, chain and CSR
        are removed, and their entries) and the consumers named in O(consumers) (their entries only). Refused with
        nothing removed for a name still in O(declared) or O(declared_consumers), and for an identity a remaining
        consumer reads.
    type: str
    choices: [read, present, absent]
    default: read
  identities:
    description: With O(state=present) resolved identity entries (dicts); with O(state=absent) identity names.
    type: list
    elements: raw
    default: []
  consumers:
    description: With O(state=present) consumer declarations; with O(state=absent) consumer names.
    type: list
    elements: raw
    default: []
  declared:
    description: With O(state=absent), the identities the inventory still declares for the host.
    type: list
    elements: str
    default: []
  declared_consumers:
    description: With O(state=absent), the consumers the inventory still declares for the host.
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: What this host holds
  fleet.mtls.manifest:
    dir: /etc/mtls
  register: held

- name: Retire an identity nobody declares any more
  fleet.mtls.manifest:
    state: absent
    identities: [old-app]
"""

RETURN = r"""
manifest:
  description: The manifest after the call (C(identities) and C(consumers), each a list of entries).
  returned: always
  type: dict
removed_files:
  description: With O(state=absent), the files removed (or, in check mode, that would be).
  returned: when state is absent
  type: list
  elements: str
retired:
  description: With O(state=absent), the identities whose entries were removed.
  returned: when state is absent
  type: list
  elements: str
retired_consumers:
  description: With O(state=absent), the consumers whose entries were removed.
  returned: when state is absent
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError
from ansible_collections.fleet.mtls.plugins.module_utils.manifest import (
    check_entries, merged, read_manifest, retire, write_manifest)
from ansible_collections.fleet.mtls.plugins.module_utils.module_common import run_module


def _names(values, what):
    if not all(isinstance(v, str) for v in values):
        raise MtlsError("with state absent, %s must be names" % what)
    return values


def handle(module):
    params, directory = module.params, module.params["dir"]
    if params["state"] == "read":
        return {"changed": False, "manifest": read_manifest(directory)}
    if params["state"] == "present":
        wanted = merged(read_manifest(directory), check_entries(params["identities"], "with state present, identities"),
                        check_entries(params["consumers"], "with state present, consumers"))
        changed = write_manifest(directory, wanted, module.check_mode)
        return {"changed": changed, "manifest": wanted}
    result = retire(directory, _names(params["identities"], "identities"), _names(params["consumers"], "consumers"),
                    params["declared"], params["declared_consumers"], module.check_mode)
    result["manifest"] = read_manifest(directory)
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            dir=dict(type="path", default="/etc/mtls"),
            state=dict(type="str", choices=["read", "present", "absent"], default="read"),
            identities=dict(type="list", elements="raw", default=[]),
            consumers=dict(type="list", elements="raw", default=[]),
            declared=dict(type="list", elements="str", default=[]),
            declared_consumers=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    run_module(module, handle, needs_cryptography=False)


if __name__ == "__main__":
    main()
