#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: loaded_files
short_description: Tell whether a service still owes a reload for the files it reads
version_added: "0.1.0"
description:
  - Compares the files a service reads (configuration, certificates, keys, trust bundle, CRLs) with a
    record of their SHA-256 digests taken when the service last re-read them, and with O(record=true)
    writes that record.
  - The service roles call it twice. Every run compares, and a difference notifies the reload
    handler. That handler records after a successful reload.
  - It catches what change notifications cannot. Suppose a run installs a renewed certificate, then
    fails or is killed before its handler runs. The next run finds nothing to install, yet the
    service still serves the old certificate. The record shows the reload is still owed.
  - The record holds digests only, never file contents; a missing or unreadable record means a reload is owed.
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
  paths:
    description:
      - Every file the service reads. A missing file is recorded as missing.
    type: list
    elements: path
    required: true
  state_file:
    description:
      - Where the record is kept (JSON, mode 0644, written atomically; its directory is created).
    type: path
    required: true
  record:
    description:
      - V(false) only compares and never changes anything.
      - V(true) records the current digests as loaded. Call it right after the service re-read its
        files; it changes something only when the record differs.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Find out whether NGINX has loaded the current files
  fleet.mtls.loaded_files:
    paths:
      - /etc/nginx/conf.d/fleet-mtls.conf
      - /etc/mtls/certs/web1.chain.pem
      - /etc/mtls/private/web1.key
      - /etc/mtls/trust-bundle.pem
      - /etc/mtls/crl.pem
    state_file: /var/lib/fleet-mtls/loaded/nginx.json
  register: nginx_loaded
  changed_when: nginx_loaded.pending
  notify: Reload NGINX

# In the handler list, after the reload itself:
- name: Record what NGINX loaded
  fleet.mtls.loaded_files:
    paths: "{{ nginx_files }}"
    state_file: /var/lib/fleet-mtls/loaded/nginx.json
    record: true
"""

RETURN = r"""
pending:
  description: Whether any file differs from the record (always V(true) without a usable record).
  returned: always
  type: bool
pending_paths:
  description: The files whose contents differ from the record (every file without a usable record).
  returned: always
  type: list
  elements: str
record_found:
  description: Whether a usable record existed before this call.
  returned: always
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.mtls.plugins.module_utils.loaded_state import fingerprints, pending_paths, record_loaded
from ansible_collections.fleet.mtls.plugins.module_utils.module_common import run_module


def compare_or_record(module):
    state_file = module.params["state_file"]
    current = fingerprints(module.params["paths"])
    record_found, pending = pending_paths(current, state_file)
    changed = False
    if module.params["record"]:
        changed = record_loaded(current, state_file, check_mode=module.check_mode)
    return {"changed": changed, "pending": bool(pending), "pending_paths": pending, "record_found": record_found}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            paths=dict(type="list", elements="path", required=True),
            state_file=dict(type="path", required=True),
            record=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    run_module(module, compare_or_record, needs_cryptography=False)


if __name__ == "__main__":
    main()
