"""fleet.mtls.ca_holder: the one definition of which host holds the CA."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.fleet.mtls.plugins.filter.fleet import FilterModule, ca_holder, due_hosts, identity_files


def test_filter_is_the_function():
    assert FilterModule().filters()["ca_holder"] is ca_holder


@pytest.mark.parametrize("groups, holder", [
    ({"mtls_ca": ["ca1", "ca2"], "all": ["ca1", "ca2", "web"]}, "ca1"),
    ({"mtls_ca": [], "all": ["web"]}, "localhost"),
    ({"all": ["web"]}, "localhost"),
    ({"mtls_ca": None}, "localhost"),
    ({"mtls_ca": ("only",)}, "only"),
])
def test_first_host_of_mtls_ca_or_the_controller(groups, holder):
    assert ca_holder(groups) == holder


@pytest.mark.parametrize("groups, message", [
    ("mtls_ca", "expects the inventory's groups"),
    (["ca1"], "expects the inventory's groups"),
    ({"mtls_ca": "ca1"}, "must be a list of hosts"),
])
def test_bad_input_is_named(groups, message):
    with pytest.raises(AnsibleFilterError, match=message):
        ca_holder(groups)


def test_identity_files_come_from_the_host_layout():
    files = identity_files("/etc/mtls", "web")
    assert files == {"key": "/etc/mtls/private/web.key", "certificate": "/etc/mtls/certs/web.crt",
                     "chain": "/etc/mtls/certs/web.chain.pem", "csr": "/etc/mtls/certs/web.csr",
                     "trust_bundle": "/etc/mtls/trust-bundle.pem", "crl": "/etc/mtls/crl.pem"}
    assert FilterModule().filters()["identity_files"] is identity_files


@pytest.mark.parametrize("name", ["", "../etc/passwd", ".hidden", None])
def test_identity_files_refuse_a_name_that_is_not_an_identity(name):
    with pytest.raises(AnsibleFilterError, match="fleet.mtls.identity_files: invalid identity name"):
        identity_files("/etc/mtls", name)


def test_reload_records_of_the_services_a_host_runs():
    from ansible_collections.fleet.mtls.plugins.filter.fleet import loaded_state_file, loaded_state_files
    assert loaded_state_file("nginx") == "/var/lib/fleet-mtls/loaded/nginx.json"
    assert loaded_state_files(["mtls_clients", "mtls_nginx", "mtls_mosquitto"]) == {
        "nginx": "/var/lib/fleet-mtls/loaded/nginx.json", "mosquitto": "/var/lib/fleet-mtls/loaded/mosquitto.json"}
    assert loaded_state_files(["mtls_clients"]) == {}
    with pytest.raises(AnsibleFilterError, match="unknown service 'apache'"):
        loaded_state_file("apache")
    with pytest.raises(AnsibleFilterError, match="expects the host's group_names"):
        loaded_state_files("mtls_nginx")


def test_due_hosts_keeps_the_order_and_names_a_host_without_an_answer():
    hostvars = {"a": {"mtls_identity_status": {"due": True}}, "b": {"mtls_identity_status": {"due": False}},
                "c": {"mtls_identity_status": {"due": True}}, "d": {}}
    assert due_hosts(["c", "b", "a"], hostvars) == ["c", "a"]
    assert due_hosts([], hostvars) == []
    with pytest.raises(AnsibleFilterError, match="host d has no mtls_identity_status"):
        due_hosts(["a", "d"], hostvars)
    with pytest.raises(AnsibleFilterError, match="expects a list of hosts"):
        due_hosts("a", hostvars)
    assert FilterModule().filters()["due_hosts"] is due_hosts


# --- rotate_ca_plan: the phases a rotate_ca run goes through ---------------------------------

@pytest.mark.parametrize("remaining, asked, under_way, check_mode, plan", [
    (["trust", "reissue", "retire"], "all", False, False, ["trust", "reissue", "retire"]),
    (["reissue", "retire"], "all", True, False, ["reissue", "retire"]),
    (["reissue", "retire"], "retire", True, False, ["retire"]),
    # check mode: a rotation under way has its phases checked ...
    (["reissue", "retire"], "all", True, True, ["reissue", "retire"]),
    # ... one this run would begin is only planned (its begin was not made).
    (["trust", "reissue", "retire"], "all", False, True, []),
    (["trust", "reissue", "retire"], "trust", False, True, []),
])
def test_rotate_ca_plan(remaining, asked, under_way, check_mode, plan):
    from ansible_collections.fleet.mtls.plugins.filter.fleet import rotate_ca_plan
    assert rotate_ca_plan(remaining, asked, under_way, check_mode) == plan


def test_rotate_ca_plan_names_an_unknown_phase():
    from ansible_collections.fleet.mtls.plugins.filter.fleet import rotate_ca_plan
    with pytest.raises(AnsibleFilterError, match="mtls_rotate_ca_phase must be all or one of trust, reissue, "
                                                 "retire, got 'rekey'"):
        rotate_ca_plan(["trust"], "rekey")
