# -*- coding: utf-8 -*-
"""fleet.mtls.rotate checks every host at once and sends only hosts with something due to the batches.

Real ansible-playbook runs on the simulated fleet of test_playbook_failures (CA holder ``ca``, client
hosts h1 and h2 on localhost, each its own mtls_dir). A callback records every task result, so the
tests count the module calls each host costs.
"""

from __future__ import annotations

import json
import os
import re

import pytest

from test_playbook_failures import HOSTS, Fleet, _changed

CALLBACKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "callback_plugins")
# Actions that run on the controller only: no module reaches the host.
CONTROLLER_ONLY = {"ansible.builtin.validate_argument_spec", "validate_argument_spec",
                   "ansible.builtin.set_fact", "ansible.builtin.assert", "ansible.builtin.group_by", "ansible.builtin.add_host", "add_host",
                   "ansible.builtin.debug", "ansible.builtin.meta", "ansible.builtin.include_tasks",
                   "ansible.builtin.include_role", "ansible.builtin.fail", "ansible.builtin.pause",
                   "set_fact", "assert", "group_by", "debug", "meta", "include_tasks", "include_role"}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    built = Fleet(tmp_path_factory.mktemp("rotate-scale"))
    rc, output = built.run("fleet.mtls.site")
    assert rc == 0, output[-6000:]
    built.save_pristine()
    return built


@pytest.fixture
def calls(fleet, monkeypatch, tmp_path):
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("ANSIBLE_CALLBACK_PLUGINS", CALLBACKS)
    monkeypatch.setenv("ANSIBLE_CALLBACKS_ENABLED", "module_calls")
    monkeypatch.setenv("MTLS_MODULE_CALLS_LOG", str(log))

    def read():
        if not log.exists():
            return []
        lines = [json.loads(line) for line in log.read_text().splitlines()]
        log.unlink()
        return lines
    fleet.restore()
    return read


def module_calls(lines, host):
    return [line["action"] for line in lines
            if line["host"] == host and line["status"] != "skipped" and line["action"] not in CONTROLLER_ONLY]


def recap(output):
    return dict((host, int(changed)) for host, changed in re.findall(r"^(\S+)\s+:\s+ok=\d+\s+changed=(\d+)", output, re.M))


def inventory_with(fleet, name, host_vars):
    with open(fleet.inventory) as handle:
        inventory = json.load(handle)
    for host, extra in host_vars.items():
        inventory["all"]["children"]["mtls_clients"]["hosts"][host].update(extra)
    path = os.path.join(fleet.base, name)
    with open(path, "w") as handle:
        json.dump(inventory, handle)
    return path


def certificate(fleet, host):
    with open(os.path.join(fleet.host_dir(host), "certs", "%s.crt" % host), "rb") as handle:
        return handle.read()


def test_an_unchanged_fleet_costs_one_module_call_per_host_and_changes_nothing(fleet, calls):
    before = fleet.snapshot()
    rc, output = fleet.run("fleet.mtls.rotate")
    assert rc == 0, output[-6000:]
    lines = calls()
    for host in HOSTS:
        assert module_calls(lines, host) == ["fleet.mtls.host_status"], (host, lines)
        # Not even a controller-side task per host besides it: the rest runs once for the fleet.
        per_host = [line["action"] for line in lines if line["host"] == host and line["status"] != "skipped"]
        assert per_host.count("fleet.mtls.host_status") == 1 and len(per_host) <= 3, (host, per_host)
    assert recap(output) == {"ca": 0, "h1": 0, "h2": 0}, output[-3000:]
    assert "Renew and reload, batch by batch" not in output or "skipping: no hosts matched" in output
    assert _changed(before, fleet.snapshot(), ()) == []


def test_a_due_identity_goes_through_the_batch_and_ends_converged(fleet, calls):
    others = certificate(fleet, "h2")
    old = certificate(fleet, "h1")
    inventory = inventory_with(fleet, "due.json", {"h1": {"mtls_identity_renew_days": 3650}})
    rc, output = fleet.run("fleet.mtls.rotate", inventory=inventory)
    assert rc == 0, output[-6000:]
    assert "identity h1: renewal_window" in output, output[-6000:]
    assert "Issuing: h1/h1/renewal_window" in output, output[-6000:]
    lines = calls()
    assert module_calls(lines, "h2") == ["fleet.mtls.host_status"], lines
    # The batch: its own check, the CSR, and one install carrying the certificate with the trust
    # bundle and CRLs (the identity is root's) and the manifest (it records renew_days): no second
    # call for the bundles, none for the manifest. Left out: the batch's publication read and
    # signing, delegated to the CA.
    h1_calls = [action for action in module_calls(lines, "h1")
                if action not in ("fleet.mtls.ca_rotation", "fleet.mtls.certificate")]
    assert h1_calls == ["fleet.mtls.host_status", "fleet.mtls.host_status", "fleet.mtls.csr",
                        "fleet.mtls.install_identity"], h1_calls
    assert certificate(fleet, "h1") != old and certificate(fleet, "h2") == others
    # Converged: the renewed host is unchanged on the next run (back to the normal renewal window).
    before = fleet.snapshot()
    rc, output = fleet.run("fleet.mtls.rotate")
    assert rc == 0, output[-6000:]
    assert recap(output) == {"ca": 0, "h1": 0, "h2": 0}, output[-3000:]
    lines = calls()
    assert [module_calls(lines, host) for host in HOSTS] == [["fleet.mtls.host_status"]] * 2
    assert _changed(before, fleet.snapshot(), ()) == []


@pytest.mark.parametrize("stale", ["crl.pem", "trust-bundle.pem"])
def test_a_stale_crl_or_trust_bundle_goes_through_the_batch(fleet, calls, stale):
    path = os.path.join(fleet.host_dir("h2"), stale)
    with open(path, "rb") as handle:
        published = handle.read()
    with open(path, "wb") as handle:
        handle.write(published.split(b"-----END")[0] + b"-----END X509 CRL-----\n" if stale == "crl.pem" else b"")
    rc, output = fleet.run("fleet.mtls.rotate")
    assert rc == 0, output[-6000:]
    reason = "CRLs differ" if stale == "crl.pem" else "trust bundle differs"
    assert reason in output, output[-6000:]
    lines = calls()
    assert module_calls(lines, "h1") == ["fleet.mtls.host_status"], lines
    # No identity is due on h2: no csr call, one install for the bundles alone (besides the batch's
    # publication read on the CA holder, run once through h2).
    assert module_calls(lines, "h2") == ["fleet.mtls.host_status", "fleet.mtls.ca_rotation", "fleet.mtls.host_status",
                                         "fleet.mtls.install_identity"], module_calls(lines, "h2")
    with open(path, "rb") as handle:
        assert handle.read() == published
    rc, output = fleet.run("fleet.mtls.rotate")
    assert rc == 0 and recap(output) == {"ca": 0, "h1": 0, "h2": 0}, output[-3000:]


def test_a_failing_check_fails_the_run_naming_host_and_identity(fleet, calls):
    key = os.path.join(fleet.host_dir("h1"), "private", "h1.key")
    with open(key, "wb") as handle:
        handle.write(b"garbage\n")
    os.chmod(key, 0o600)
    before = fleet.snapshot()
    rc, output = fleet.run("fleet.mtls.rotate")
    assert rc != 0, output[-6000:]
    assert re.search(r"fatal: \[h1\].*identity h1: ", output), output[-6000:]
    # No batch ran after the failed check.
    assert "fleet.mtls.csr" not in [line["action"] for line in calls()]
    assert _changed(before, fleet.snapshot(), ()) == []


def test_check_mode_lists_what_would_be_issued_and_changes_nothing(fleet, calls):
    inventory = inventory_with(fleet, "due-check.json", {"h1": {"mtls_identity_renew_days": 3650}})
    before = fleet.snapshot()
    rc, output = fleet.run("fleet.mtls.rotate", inventory=inventory, check=True)
    assert rc == 0, output[-6000:]
    assert "Would issue: h1/h1/renewal_window" in output, output[-6000:]
    assert module_calls(calls(), "h2") == ["fleet.mtls.host_status"]
    assert _changed(before, fleet.snapshot(), ()) == []


def test_default_sans_from_facts_read_on_the_host_match_what_setup_gave(fleet, calls):
    """site with mtls_site_gather_facts takes the default SANs from the facts setup gathered on the
    controller; rotate's check reads them on the host inside host_status. Same values: the certificate
    site issued is not due."""
    inventory = inventory_with(fleet, "facts.json", {host: {"mtls_identity_gather_facts": True} for host in HOSTS})
    rc, output = fleet.run("fleet.mtls.site", inventory=inventory, extra_vars={"mtls_site_gather_facts": True})
    assert rc == 0, output[-6000:]
    import socket
    from cryptography import x509
    leaf = x509.load_pem_x509_certificate(certificate(fleet, "h1"))
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert socket.getfqdn() in names, names  # the facts did reach the certificate
    calls()
    before = fleet.snapshot()
    rc, output = fleet.run("fleet.mtls.rotate", inventory=inventory)
    assert rc == 0, output[-6000:]
    assert recap(output) == {"ca": 0, "h1": 0, "h2": 0}, output[-3000:]
    lines = calls()
    assert [module_calls(lines, host) for host in HOSTS] == [["fleet.mtls.host_status"]] * 2, lines
    assert _changed(before, fleet.snapshot(), ()) == []
    # Identities that template facts themselves: mtls_rotate_gather_facts gathers them first (and the
    # default SANs then come from those facts); still nothing due.
    templated = inventory_with(fleet, "templated.json", {host: {
        "mtls_identity_gather_facts": True,
        "mtls_identities": [{"name": host, "profile": "client",
                             # Fails to template without facts: ansible_facts['fqdn'] is undefined.
                             "sans": "{{ inventory_hostname | fleet.mtls.identity_default_sans(ansible_facts['fqdn'], "
                                     "ansible_facts['hostname'], ansible_facts['default_ipv4']['address'] | default('')) }}"}]}
        for host in HOSTS})
    rc, output = fleet.run("fleet.mtls.rotate", inventory=templated, extra_vars={"mtls_rotate_gather_facts": True})
    assert rc == 0, output[-6000:]
    assert recap(output) == {"ca": 0, "h1": 0, "h2": 0}, output[-3000:]
    lines = calls()
    assert [module_calls(lines, host) for host in HOSTS] == [["ansible.builtin.setup", "fleet.mtls.host_status"]] * 2


def test_a_converged_site_records_no_manifest_and_a_changed_declaration_is_recorded(fleet, calls):
    manifest = os.path.join(fleet.host_dir("h1"), "manifest.json")
    rc, output = fleet.run("fleet.mtls.site")
    assert rc == 0, output[-6000:]
    lines = calls()
    # One call per host: host_status read the manifest, and what would be recorded is what the host
    # already holds (nothing else is due either). The first host also carries the run's one read of
    # the CA publication (run_once, delegated to the CA holder).
    assert [module_calls(lines, host) for host in HOSTS] == \
        [["fleet.mtls.ca_rotation", "fleet.mtls.host_status"], ["fleet.mtls.host_status"]], lines
    assert set(recap(output).values()) == {0}, output[-3000:]
    with open(manifest) as handle:
        recorded = json.load(handle)
    assert [entry.get("renew_days") for entry in recorded["identities"]] == [None]

    inventory = inventory_with(fleet, "renew-days.json", {"h1": {"mtls_identity_renew_days": 20}})
    rc, output = fleet.run("fleet.mtls.site", inventory=inventory)
    assert rc == 0, output[-6000:]
    lines = calls()
    # Nothing is due but the record: host_status, then one install call (the bundles, unchanged, and
    # the manifest). Left out: the run's one publication read, delegated to the CA.
    assert [action for action in module_calls(lines, "h1") if action != "fleet.mtls.ca_rotation"] == \
        ["fleet.mtls.host_status", "fleet.mtls.install_identity"], lines
    assert module_calls(lines, "h2") == ["fleet.mtls.host_status"], lines
    with open(manifest) as handle:
        assert [entry.get("renew_days") for entry in json.load(handle)["identities"]] == [20]
