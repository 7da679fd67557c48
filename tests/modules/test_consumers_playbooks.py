# -*- coding: utf-8 -*-
"""Consumers through real playbook runs on the simulated fleet (test_playbook_failures: CA holder ``ca``,
client hosts h1 and h2 on localhost): a service of the user's declared in ``mtls_consumers`` takes up
every change once, whether site, rotate or the user's own identity play made it; a change a failed run
owes is applied by the next run; a bad declaration fails before anything changes.

The consumer's validate and apply steps are real commands: the apply appends to a log, so the test counts
how often it ran; the validate passes while a gate file exists.
"""

from __future__ import annotations

import json
import os
import sys

import pytest

from test_playbook_failures import Fleet
from test_rotate_scale import recap


def _consumer(base):
    log = os.path.join(base, "applied-h1.log")
    gate = os.path.join(base, "config-valid")
    append = [sys.executable, "-c", "import sys; open(sys.argv[1], 'a').write(sys.argv[2] + '\\n')", log, "reload"]
    validate = [sys.executable, "-c", "import os, sys; sys.exit(0 if os.path.exists(sys.argv[1]) else 4)", gate]
    return {"name": "app", "identities": ["h1"], "trust_bundle": True, "crl": True, "validate": validate,
            "apply": {"default": {"command": append}}}, log, gate


def _inventory(fleet, name, consumers):
    with open(fleet.inventory) as handle:
        inventory = json.load(handle)
    host = inventory["all"]["children"]["mtls_clients"]["hosts"]["h1"]
    host.update({"mtls_consumers": consumers, "mtls_consumer_records_dir": os.path.join(fleet.base, "records", "h1")})
    path = os.path.join(fleet.base, name)
    with open(path, "w") as handle:
        json.dump(inventory, handle)
    return path


def _applied(log):
    if not os.path.exists(log):
        return 0
    with open(log) as handle:
        return len(handle.read().splitlines())


def _serial(fleet):
    from cryptography import x509
    with open(os.path.join(fleet.host_dir("h1"), "certs", "h1.crt"), "rb") as handle:
        return x509.load_pem_x509_certificate(handle.read()).serial_number


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    built = Fleet(tmp_path_factory.mktemp("consumers"))
    consumer, log, gate = _consumer(built.base)
    open(gate, "w").close()
    built.consumer_inventory = _inventory(built, "consumers.json", [consumer])
    built.log, built.gate, built.consumer = log, gate, consumer
    return built


def test_every_run_applies_a_change_once_and_a_change_owed_by_a_failed_run_is_applied_by_the_next(fleet):
    rc, output = fleet.run("fleet.mtls.site", inventory=fleet.consumer_inventory)
    assert rc == 0, output[-6000:]
    assert _applied(fleet.log) == 1
    assert os.path.exists(os.path.join(fleet.base, "records", "h1", "consumer-app.json"))

    rc, output = fleet.run("fleet.mtls.site", inventory=fleet.consumer_inventory)
    assert rc == 0, output[-6000:]
    assert recap(output)["h1"] == 0 and _applied(fleet.log) == 1

    # The user's own play renews, but the service's configuration no longer validates: the run fails
    # naming the host and the consumer, the new certificate is installed, the service was not touched.
    serial = _serial(fleet)
    os.unlink(fleet.gate)
    rc, output = fleet.run("identity.yml", {"mtls_identity_force": True}, inventory=fleet.consumer_inventory)
    assert rc != 0
    assert "consumer app: validate command" in output and "exit status 4" in output, output[-4000:]
    assert "h1" in output and "still owed" in output
    assert _serial(fleet) != serial and _applied(fleet.log) == 1

    # The scheduled run finds the owed change in its one check per host and applies it, once.
    open(fleet.gate, "w").close()
    rc, output = fleet.run("fleet.mtls.rotate", inventory=fleet.consumer_inventory)
    assert rc == 0, output[-6000:]
    assert "consumer app: reload owed for" in output
    assert _applied(fleet.log) == 2

    rc, output = fleet.run("fleet.mtls.rotate", inventory=fleet.consumer_inventory)
    assert rc == 0, output[-6000:]
    assert _applied(fleet.log) == 2 and recap(output)["h1"] == 0

    # A renewal by rotate itself reaches the consumer in the same run.
    rc, output = fleet.run("fleet.mtls.rotate", {"mtls_identity_force": True}, inventory=fleet.consumer_inventory)
    assert rc == 0, output[-6000:]
    assert _applied(fleet.log) == 3


@pytest.mark.parametrize("field, value, message", [
    ("files", ["/etc/passwd"], "h1: consumer app: files: /etc/passwd is outside this host's identity files"),
    ("identities", ["web"], "h1: consumer app: identities: web is not an identity of this host (it has h1)"),
    ("apply", {"default": {"service": "app", "action": "bounce"}},
     "h1: consumer app: apply.default.action: must be one of reload, restart, signal, got 'bounce'"),
])
def test_a_bad_declaration_fails_before_anything_changes(fleet, field, value, message):
    if not getattr(fleet, "converged", False):  # once: a refused run leaves h1 as it was
        rc, output = fleet.run("fleet.mtls.site", inventory=fleet.consumer_inventory)
        assert rc == 0, output[-6000:]
        fleet.converged = True

    def h1_files():  # h2 has no bad input: its forced renewal goes on
        return dict((path, state) for path, state in fleet.snapshot().items() if path.startswith("hosts/h1/"))

    before, applied = h1_files(), _applied(fleet.log)
    bad = _inventory(fleet, "bad-%s.json" % field, [dict(fleet.consumer, **{field: value})])
    rc, output = fleet.run("fleet.mtls.site", {"mtls_identity_force": True}, inventory=bad)
    assert rc != 0 and message in output, output[-4000:]
    assert h1_files() == before and _applied(fleet.log) == applied


def test_a_maintenance_run_refuses_a_service_host_whose_role_never_registered_its_consumer(fleet):
    """rotate, revoke and rotate_ca reload NGINX and Mosquitto only through the consumer their role
    registers: a host in mtls_nginx without it (its role never ran here) is refused, naming the host and
    the role, before its certificate is renewed."""
    rc, output = fleet.run("fleet.mtls.site", inventory=fleet.consumer_inventory)
    assert rc == 0, output[-6000:]
    with open(fleet.consumer_inventory) as handle:
        inventory = json.load(handle)
    inventory["all"]["children"]["mtls_nginx"] = {"hosts": {"h2": {}}}
    path = os.path.join(fleet.base, "nginx-without-consumer.json")
    with open(path, "w") as handle:
        json.dump(inventory, handle)

    def h2_files():
        return dict((name, state) for name, state in fleet.snapshot().items() if name.startswith("hosts/h2/"))

    before = h2_files()
    rc, output = fleet.run("fleet.mtls.rotate", {"mtls_identity_force": True}, inventory=path)
    assert rc != 0, output[-6000:]
    assert ("h2: nginx is in group mtls_nginx but nginx is not registered as a consumer of its files yet: run "
            "fleet.mtls.site (or the fleet.mtls.nginx role) once on it, then this playbook again") in output, \
        output[-4000:]
    assert h2_files() == before
