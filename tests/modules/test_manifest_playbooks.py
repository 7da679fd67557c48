# -*- coding: utf-8 -*-
"""Identities declared anywhere stay renewed: real playbook runs on the simulated fleet of
test_playbook_failures (CA holder ``ca``, client hosts h1 and h2 on localhost).

A user's own play includes the identity role with ``mtls_identities`` and ``mtls_consumers`` as role
vars (the pattern the identity README shows); the inventory knows nothing of them. The host's manifest
records them, so ``fleet.mtls.rotate`` renews that identity and applies its consumer, and
``fleet.mtls.retire`` removes it explicitly.
"""

from __future__ import annotations

import json
import os
import sys

import pytest
from cryptography import x509

from test_playbook_failures import Fleet
from test_rotate_scale import recap


def _user_play(base):
    log = os.path.join(base, "myapp-applied.log")
    consumer = {"name": "myapp", "identities": ["myapp"], "trust_bundle": True,
                "apply": {"default": {"command": [sys.executable, "-c",
                                                  "import sys; open(sys.argv[1], 'a').write('reload\\n')", log]}}}
    play = [{"hosts": "h1", "gather_facts": False, "tasks": [{
        "name": "The user's application identity",
        "ansible.builtin.include_role": {"name": "fleet.mtls.identity"},
        "vars": {"mtls_identities": "{{ mtls_identity_default_identities + [{'name': 'myapp', 'profile': 'client'}] }}",
                 "mtls_consumers": [consumer],
                 "mtls_consumer_records_dir": os.path.join(base, "records")}}]}]
    with open(os.path.join(base, "user-play.json"), "w") as handle:
        json.dump(play, handle)
    return log


def _inventory(fleet):
    with open(fleet.inventory) as handle:
        inventory = json.load(handle)
    inventory["all"]["vars"]["mtls_consumer_records_dir"] = os.path.join(fleet.base, "records")
    path = os.path.join(fleet.base, "records-inventory.json")
    with open(path, "w") as handle:
        json.dump(inventory, handle)
    return path


def _serial(fleet, identity):
    path = os.path.join(fleet.host_dir("h1"), "certs", identity + ".crt")
    with open(path, "rb") as handle:
        return x509.load_pem_x509_certificate(handle.read()).serial_number


def _manifest(fleet):
    with open(os.path.join(fleet.host_dir("h1"), "manifest.json")) as handle:
        return json.load(handle)


def _count(log):
    if not os.path.exists(log):
        return 0
    with open(log) as handle:
        return len(handle.read().splitlines())


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    built = Fleet(tmp_path_factory.mktemp("manifest"))
    built.log = _user_play(built.base)
    built.records_inventory = _inventory(built)
    rc, output = built.run("fleet.mtls.site", inventory=built.records_inventory)
    assert rc == 0, output[-6000:]
    return built


def test_an_identity_a_users_play_made_is_renewed_by_rotate_and_retired_explicitly(fleet):
    rc, output = fleet.run("user-play.json", inventory=fleet.records_inventory)
    assert rc == 0, output[-6000:]
    manifest = _manifest(fleet)
    assert [entry["name"] for entry in manifest["identities"]] == ["h1", "myapp"]
    assert [entry["name"] for entry in manifest["consumers"]] == ["myapp"]
    assert manifest["identities"][1]["profile"] == "client" and "BEGIN" not in json.dumps(manifest)
    assert _count(fleet.log) == 1
    serial = _serial(fleet, "myapp")

    # Nothing due: the scheduled run leaves it alone.
    rc, output = fleet.run("fleet.mtls.rotate", inventory=fleet.records_inventory)
    assert rc == 0, output[-6000:]
    assert recap(output)["h1"] == 0 and _serial(fleet, "myapp") == serial and _count(fleet.log) == 1

    # A forced renewal reaches the identity the inventory never declared, and its consumer, once.
    rc, output = fleet.run("fleet.mtls.rotate", {"mtls_identity_force": True}, inventory=fleet.records_inventory)
    assert rc == 0, output[-6000:]
    assert "identity myapp: forced" in output, output[-3000:]
    assert _serial(fleet, "myapp") != serial and _count(fleet.log) == 2

    # Retiring is explicit, and refused while something still needs the identity.
    rc, output = fleet.run("fleet.mtls.retire", {"mtls_retire_host": "h1", "mtls_retire_identity": "myapp"},
                           inventory=fleet.records_inventory)
    assert rc != 0 and "identity myapp is read by consumer myapp" in output, output[-3000:]
    rc, output = fleet.run("fleet.mtls.retire", {"mtls_retire_host": "h1", "mtls_retire_identity": "h1"},
                           inventory=fleet.records_inventory)
    assert rc != 0 and "identity h1 is still declared for this host" in output, output[-3000:]
    assert os.path.exists(os.path.join(fleet.host_dir("h1"), "certs", "myapp.crt"))

    rc, output = fleet.run("fleet.mtls.retire", {"mtls_retire_host": "h1", "mtls_retire_identity": "myapp",
                                                 "mtls_retire_consumers": ["myapp"]},
                           inventory=fleet.records_inventory)
    assert rc == 0, output[-6000:]
    for path in ("certs/myapp.crt", "certs/myapp.chain.pem", "private/myapp.key"):
        assert not os.path.lexists(os.path.join(fleet.host_dir("h1"), path)), path
    manifest = _manifest(fleet)
    assert [e["name"] for e in manifest["identities"]] == ["h1"] and manifest["consumers"] == []

    rc, output = fleet.run("fleet.mtls.rotate", {"mtls_identity_force": True}, inventory=fleet.records_inventory)
    assert rc == 0, output[-6000:]
    assert not os.path.exists(os.path.join(fleet.host_dir("h1"), "certs", "myapp.crt"))
    assert _count(fleet.log) == 2


def test_a_manifest_that_cannot_be_read_fails_the_run_naming_it(fleet):
    path = os.path.join(fleet.host_dir("h2"), "manifest.json")
    with open(path) as handle:
        kept = handle.read()
    try:
        with open(path, "w") as handle:
            handle.write("{not json")
        rc, output = fleet.run("fleet.mtls.rotate", inventory=fleet.records_inventory)
        assert rc != 0 and "host manifest %s is not valid JSON" % path in output, output[-3000:]
    finally:
        with open(path, "w") as handle:
            handle.write(kept)
