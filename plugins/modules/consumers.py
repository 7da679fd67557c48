#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: consumers
short_description: Apply changed identity files, trust bundle and CRL to the services that read them
version_added: "0.1.0"
description:
  - A consumer is any service on the host that reads one of its identities, its trust bundle or its CRL (a
    database, an application, a proxy). It declares the files it reads, how to validate a candidate
    configuration and how to apply a change, per kind of change (see the collection's docs/consumers.md).
  - For each consumer the module compares the files with the record of their SHA-256 digests taken when the
    service last took them up (C(/var/lib/fleet-mtls/loaded/consumer-<name>.json), the record the NGINX and
    Mosquitto roles keep too). When anything differs, or there is no record, it runs the validate command,
    takes each action the changed kinds need once (a restart of a unit covers its reload), then records.
  - A change owed by a run that failed or was killed before the record was written is applied by the next run.
  - A validate command or an action that fails leaves that consumer's change owed (no record is written, so the
    service keeps what it has loaded), the other consumers are still applied, and the task fails naming each
    failed consumer.
  - The M(fleet.mtls.identity) role calls it at the end of every run with C(mtls_consumers), so
    C(fleet.mtls.site), C(fleet.mtls.rotate), C(fleet.mtls.revoke), C(fleet.mtls.rotate_ca) and a user's own
    play that includes the role apply every change once.
author:
  - fleet.mtls maintainers (!UNKNOWN)
extends_documentation_fragment:
  - fleet.mtls.attributes
attributes:
  check_mode:
    support: full
    details: Reports what each consumer owes (C(owed), C(actions)) and changes nothing.
  diff_mode:
    support: none
options:
  dir:
    description: The host's identity directory (C(mtls_dir)).
    type: path
    default: /etc/mtls
  identities:
    description: The names of the identities the host holds; a consumer may only use these.
    type: list
    elements: str
    default: []
  records_dir:
    description: Where the records of what each consumer loaded are kept (digests only, no contents).
    type: path
    default: /var/lib/fleet-mtls/loaded
  consumers:
    description:
      - The host's consumers (C(mtls_consumers)), each a mapping. C(name) (required; lower-case letters, digits,
        C(.), C(_), C(@), C(-); not C(nginx) or C(mosquitto)); C(identities) (identity names whose certificate,
        chain and key it reads); C(trust_bundle), C(crl) (booleans); C(files) (absolute paths, each one of the
        host's identity files); C(config_files) (files of the service's own whose change also needs applying);
        C(validate) (a command as a list of arguments, program by absolute path, run before any action; a
        failure applies nothing); C(apply) (C(default) and optionally per kind C(identity), C(trust_bundle),
        C(crl), C(config), each C(service) with C(action) reload (default), restart or signal (C(signal),
        default HUP), or C(pid_file) with C(signal), or C(command) as a list of arguments).
      - Every problem fails the task before anything is run, naming the consumer and the field.
    type: list
    elements: raw
    required: true
"""

EXAMPLES = r"""
- name: PostgreSQL takes up a renewed certificate, a new trust bundle or CRL with a reload
  fleet.mtls.consumers:
    identities: [db1]
    consumers:
      - name: postgresql
        identities: [db1]
        trust_bundle: true
        crl: true
        apply:
          default: {service: postgresql, action: reload}
"""

RETURN = r"""
consumers:
  description: Per consumer, in order, what it owed and what was done.
  returned: always
  type: list
  elements: dict
  contains:
    name: {description: The consumer., type: str}
    owed: {description: "Whether a change was owed (files differ from the record, or no record).", type: bool}
    record_found: {description: Whether a record existed., type: bool}
    changed_files: {description: Changed paths by kind of change., type: dict}
    actions: {description: "The actions taken (or, in check mode, that would be).", type: list, elements: str}
    applied: {description: Whether the actions ran and the record was written., type: bool}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.mtls.plugins.module_utils.consumers import apply_consumers, check_consumers
from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError
from ansible_collections.fleet.mtls.plugins.module_utils.module_common import run_module


def apply_all(module):
    consumers = check_consumers(module.params["consumers"], module.params["dir"], module.params["identities"],
                                module.params["records_dir"])

    def run(argv):
        return module.run_command(argv, check_rc=False)

    result = apply_consumers(consumers, run, check_mode=module.check_mode)
    if result["failed"]:
        raise MtlsError("; ".join(item["msg"] for item in result["failed"]), consumers=result["consumers"],
                        changed=any(item["applied"] for item in result["consumers"]))
    return {"changed": result["changed"], "consumers": result["consumers"]}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            dir=dict(type="path", default="/etc/mtls"),
            identities=dict(type="list", elements="str", default=[]),
            consumers=dict(type="list", elements="raw", required=True),
            records_dir=dict(type="path", default="/var/lib/fleet-mtls/loaded"),
        ),
        supports_check_mode=True,
    )
    run_module(module, apply_all, needs_cryptography=False)


if __name__ == "__main__":
    main()
