# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The facts a host's default SANs are made of, read on the host by a module (no setup call).

Read with ansible's own fact collectors, so the values are those ``ansible.builtin.setup``
would give (``fqdn``, ``hostname``, ``default_ipv4.address``) and a certificate issued by a run that
gathered facts compares equal in a run that did not.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.module_utils.facts.network.linux import LinuxNetwork
from ansible.module_utils.facts.system.platform import PlatformFactCollector


def default_sans_facts(module):
    """{fqdn, hostname, default_ipv4}: the host's FQDN, short name and the address of its default IPv4
    interface ("" when a value cannot be found)."""
    platform_facts = PlatformFactCollector().collect(module=module)
    address = ""
    ip_path = module.get_bin_path("ip")
    if ip_path:
        network = LinuxNetwork(module)
        default_ipv4 = network.get_default_interfaces(ip_path)[0]
        address = default_ipv4.get("address", "")
        if default_ipv4 and not address:
            # A route without a source address: setup takes the interface's own, as populate() does.
            address = (network.populate().get("default_ipv4") or {}).get("address", "")
    return {"fqdn": platform_facts.get("fqdn") or "", "hostname": platform_facts.get("hostname") or "",
            "default_ipv4": address or ""}
