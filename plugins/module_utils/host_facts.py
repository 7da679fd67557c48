# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The facts a host's default SANs are made of, read on the host by a module (no setup call).

The values are those ``ansible.builtin.setup`` gives (``fqdn``, ``hostname``,
``default_ipv4.address``), read the way its collectors read them, so a certificate issued by a run
that gathered facts compares equal in a run that did not. Ansible's fact package is not imported on
the common path: importing it loads every collector (about 0.15 s of CPU in each module run, the
largest single cost of an unchanged host's check); it is loaded only for the rare route without a
source address.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import platform
import socket

# What setup's network collector asks the kernel for the default IPv4 route (LinuxNetwork).
_DEFAULT_ROUTE_PROBE = "8.8.8.8"


def default_route_source(route_output):
    """(source address, interface) of ``ip -4 route get`` output, parsed as setup parses it; "" for
    what the output does not name."""
    lines = (route_output or "").splitlines()
    words = lines[0].split() if lines else []
    if not words or words[0] != _DEFAULT_ROUTE_PROBE:
        return "", ""
    address = interface = ""
    for position in range(len(words) - 1):
        if words[position] == "src":
            address = words[position + 1]
        elif words[position] == "dev":
            interface = words[position + 1]
    return address, interface


def default_sans_facts(module):
    """{fqdn, hostname, default_ipv4}: the host's FQDN, short name and the address of its default IPv4
    interface ("" when a value cannot be found)."""
    try:
        fqdn = socket.getfqdn()
    except Exception:  # setup leaves fqdn out when the resolver fails
        fqdn = ""
    address = ""
    ip_path = module.get_bin_path("ip")
    if ip_path:
        dummy, out, dummy_err = module.run_command([ip_path, "-4", "route", "get", _DEFAULT_ROUTE_PROBE],
                                                   errors="surrogate_then_replace")
        address, interface = default_route_source(out)
        if interface and not address:
            # A route without a source address: setup takes the interface's own (populate()).
            from ansible.module_utils.facts.network.linux import LinuxNetwork
            address = (LinuxNetwork(module).populate().get("default_ipv4") or {}).get("address", "")
    return {"fqdn": fqdn or "", "hostname": platform.node().split(".")[0], "default_ipv4": address or ""}
