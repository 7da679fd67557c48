from __future__ import annotations

import platform
import socket
import subprocess
import sys
import shutil

import pytest

from ansible_collections.fleet.mtls.plugins.module_utils import host_facts


@pytest.mark.parametrize("output, expected", [
    ("8.8.8.8 via 10.0.2.2 dev eth0 src 10.0.2.15 uid 0 \n    cache \n", ("10.0.2.15", "eth0")),
    ("8.8.8.8 dev wg0 src 192.0.2.7 uid 0\n", ("192.0.2.7", "wg0")),
    # A route without a source address: the interface is named, the address is looked up elsewhere.
    ("8.8.8.8 via 10.0.2.2 dev eth0 uid 0\n", ("", "eth0")),
    # No route: ip prints an error (to stderr) and nothing on stdout.
    ("", ("", "")),
    ("RTNETLINK answers: Network is unreachable\n", ("", "")),
])
def test_the_default_route_is_parsed_as_setup_parses_it(output, expected):
    assert host_facts.default_route_source(output) == expected


class _Module:
    """What default_sans_facts uses of AnsibleModule: finding a binary and running it."""

    def get_bin_path(self, name):
        return shutil.which(name)

    def run_command(self, args, errors=None):
        done = subprocess.run(args, capture_output=True, text=True, check=False)
        return done.returncode, done.stdout, done.stderr


def test_facts_are_this_machines_and_need_no_fact_collectors():
    before = set(sys.modules)
    facts = host_facts.default_sans_facts(_Module())
    assert facts["fqdn"] == socket.getfqdn()
    assert facts["hostname"] == platform.node().split(".")[0]
    if shutil.which("ip"):
        route = subprocess.run(["ip", "-4", "route", "get", "8.8.8.8"], capture_output=True, text=True,
                               check=False).stdout
        address = host_facts.default_route_source(route)[0]
        if address:
            assert facts["default_ipv4"] == address
            # The common path does not load ansible's fact package (every collector, ~0.15 s per run).
            assert not any(name.startswith("ansible.module_utils.facts") for name in set(sys.modules) - before)
