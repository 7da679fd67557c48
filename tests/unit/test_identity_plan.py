"""The identity role's decisions (module_utils/identity_plan.py and the filters over it)."""

from __future__ import annotations

import pytest

from ansible_collections.fleet.mtls.plugins.filter.identity import FilterModule
from ansible_collections.fleet.mtls.plugins.module_utils import identity_plan, names
from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError

DEFAULTS = {"key_type": "ec_p256", "validity_days": 90, "new_key_on_renew": True, "renew_fraction": 0.333,
            "renew_days": None}


def resolve(**entry):
    return identity_plan.resolve_identity(entry, DEFAULTS)


# ---- default profile -------------------------------------------------------------------------

@pytest.mark.parametrize("groups, profile", [
    ({"mtls_nginx": ["h"]}, "server"),
    ({"mtls_mosquitto": ["h"]}, "server"),
    ({"mtls_clients": ["h"]}, "client"),
    ({"mtls_nginx": ["h"], "mtls_clients": ["h"]}, "server_client"),
    ({"mtls_mosquitto": ["h"], "mtls_clients": ["h"]}, "server_client"),
    ({"mtls_nginx": ["other"], "mtls_clients": ["other"], "all": ["h"]}, ""),
    ({}, ""),
])
def test_default_profile_from_groups(groups, profile):
    assert identity_plan.default_profile("h", groups) == profile


@pytest.mark.parametrize("groups, key_group", [
    ({"mtls_mosquitto": ["h"]}, "mosquitto"),
    ({"mtls_mosquitto": ["h"], "mtls_nginx": ["h"]}, "mosquitto"),
    ({"mtls_nginx": ["h"]}, "root"),
    ({"mtls_mosquitto": ["other"], "mtls_clients": ["h"]}, "root"),
])
def test_default_key_group(groups, key_group):
    assert identity_plan.default_key_group("h", groups) == key_group


@pytest.mark.parametrize("args, sans", [
    (("web1", "web1.example.net", "web1", "192.0.2.10"), ["DNS:web1.example.net", "DNS:web1", "IP:192.0.2.10"]),
    (("web1.example.net", "web1.example.net", "web1", ""), ["DNS:web1.example.net", "DNS:web1"]),
    (("192.0.2.10", "web1.example.net", "web1", "192.0.2.10"), ["DNS:web1.example.net", "DNS:web1", "IP:192.0.2.10"]),
    (("192.0.2.10", "192.0.2.10", "", "192.0.2.11"), ["IP:192.0.2.10", "IP:192.0.2.11"]),
    (("2001:db8::5", "", "", ""), ["IP:2001:db8::5"]),
    (("Web1", "", "", ""), ["DNS:Web1"]),
    (("web1",), ["DNS:web1"]),
])
def test_default_sans(args, sans):
    assert identity_plan.default_sans(*args) == sans


def test_default_sans_on_host_leave_a_marker_only_without_facts():
    marker = identity_plan.DEFAULT_SANS_ON_HOST + "web1"
    assert identity_plan.default_sans("web1", on_host=True) == [marker]
    assert identity_plan.default_sans("web1", "", "web1", "", on_host=True) == ["DNS:web1"]
    assert identity_plan.needs_host_facts([{"name": "web1", "sans": ["DNS:x", marker]}])
    assert not identity_plan.needs_host_facts([{"name": "web1", "sans": ["DNS:x"]}, "junk", {"sans": "DNS:y"}])
    assert not identity_plan.needs_host_facts("not a list")


@pytest.mark.parametrize("facts, sans", [
    # The resolved default identity puts its CN first; the facts add the rest, each SAN once.
    (("web1.example.net", "web1", "192.0.2.10"), ["DNS:web1", "DNS:web1.example.net", "IP:192.0.2.10"]),
    (("", "", ""), ["DNS:web1"]),
    (("WEB1", "", "192.0.2.10"), ["DNS:web1", "IP:192.0.2.10"]),
])
def test_expand_default_sans_gives_what_the_facts_would_have_given(facts, sans):
    entry = identity_plan.resolve_identity(
        {"name": "web1", "profile": "server", "sans": identity_plan.default_sans("web1", on_host=True)}, {})
    expanded = identity_plan.expand_default_sans([entry, "junk", {"name": "x", "sans": "DNS:y"}], *facts)
    assert expanded[0]["sans"] == sans
    assert expanded[1:] == ["junk", {"name": "x", "sans": "DNS:y"}]
    # The same set as the role resolves with the facts on the controller (renewal compares sets).
    with_facts = identity_plan.resolve_identity(
        {"name": "web1", "profile": "server", "sans": identity_plan.default_sans("web1", *facts)}, {})
    canonical = identity_plan.canonical_san
    assert set(map(canonical, expanded[0]["sans"])) == set(map(canonical, with_facts["sans"]))
    assert identity_plan.expand_default_sans("not a list") == "not a list"


def test_default_identities():
    assert identity_plan.default_identities("web1", "server", ["DNS:web1"], "root") == [
        {"name": "web1", "profile": "server", "sans": ["DNS:web1"], "group": "root", "mode": "0600"}]
    assert identity_plan.default_identities("mq", "server", [], "mosquitto")[0]["mode"] == "0640"
    assert identity_plan.default_identities("lost", "", ["DNS:lost"], "root") == []


# ---- resolved identities ---------------------------------------------------------------------

def test_an_entry_with_only_a_name_gets_every_default():
    assert resolve(name="web") == {
        "name": "web", "profile": "server", "sans": ["DNS:web"], "common_name": "web", "key_type": "ec_p256",
        "validity_days": 90, "owner": "root", "group": "root", "mode": "0600", "new_key_on_renew": True,
        "central_key": False, "renew_fraction": 0.333, "renew_days": None}


def test_entry_settings_win_over_defaults():
    entry = resolve(name="app", profile="client", key_type="rsa2048", validity_days=30, owner="svc", group="svc",
                    mode="0640", new_key_on_renew=False, central_key=True, extra="kept")
    assert {key: entry[key] for key in ("key_type", "validity_days", "owner", "group", "mode", "new_key_on_renew",
                                        "central_key", "extra")} == {
        "key_type": "rsa2048", "validity_days": 30, "owner": "svc", "group": "svc", "mode": "0640",
        "new_key_on_renew": False, "central_key": True, "extra": "kept"}


@pytest.mark.parametrize("common_name, san", [
    ("web.example.net", "DNS:web.example.net"),
    ("Web.Example.NET", "DNS:web.example.net"),
    ("192.0.2.10", "IP:192.0.2.10"),
    ("2001:DB8:0::1", "IP:2001:db8::1"),
    ("web01", "DNS:web01"),
])
def test_a_server_common_name_that_is_a_host_name_or_address_is_the_first_san(common_name, san):
    entry = resolve(name="web", common_name=common_name, sans=["DNS:other.example.net"])
    assert entry["common_name"] == common_name
    assert entry["sans"] == [san, "DNS:other.example.net"]
    # The same SAN the signer adds: the role asks for exactly what it gets.
    assert names.common_name_san("server", common_name) == san
    assert set(names.leaf_sans("server", common_name, ["DNS:other.example.net"])) == set(entry["sans"])


@pytest.mark.parametrize("profile", ["server", "server_client"])
def test_both_server_profiles_get_the_common_name_san(profile):
    assert resolve(name="web", profile=profile)["sans"] == ["DNS:web"]


def test_a_client_common_name_is_no_san():
    assert resolve(name="app", profile="client")["sans"] == []
    assert resolve(name="app", profile="client", common_name="app.example.net", sans=["URI:spiffe://x/app"])["sans"] \
        == ["URI:spiffe://x/app"]
    assert names.common_name_san("client", "app.example.net") is None


@pytest.mark.parametrize("common_name", ["My Service", "svc@example.net", "spiffe://example/x", "a..b"])
def test_a_common_name_that_is_no_host_name_adds_no_san(common_name):
    entry = resolve(name="web", common_name=common_name, sans=["DNS:web.example.net"])
    assert entry["sans"] == ["DNS:web.example.net"]
    # ... and the signer (and the csr module through it) names the problem.
    with pytest.raises(MtlsError, match="is not a DNS name or IP address"):
        names.leaf_sans("server", common_name, ["DNS:web.example.net"])


def test_an_empty_common_name_is_the_name():
    assert resolve(name="web", common_name="")["common_name"] == "web"
    assert resolve(name="web", common_name=None)["common_name"] == "web"


@pytest.mark.parametrize("sans", [["DNS:web.example.net"], ["dns:WEB.example.net"], ["web.example.net"]])
def test_a_san_already_present_is_not_added_again(sans):
    assert resolve(name="web", common_name="web.example.net", sans=sans)["sans"] == sans


def test_an_address_san_already_present_in_another_spelling_is_not_added():
    assert resolve(name="db", common_name="2001:db8::1", sans=["IP:2001:0db8:0:0::1"])["sans"] == ["IP:2001:0db8:0:0::1"]


def test_invalid_sans_are_left_for_the_checks():
    # A string instead of a list stays a string: role_inputs.identity_problems names it.
    assert resolve(name="web", sans="DNS:a.test")["sans"] == "DNS:a.test"
    assert resolve(name="web", sans=["DNS:bad..name"])["sans"] == ["DNS:web", "DNS:bad..name"]
    assert identity_plan.resolve_identities(["not a dict"], DEFAULTS) == ["not a dict"]
    assert identity_plan.resolve_identities("nope", DEFAULTS) == "nope"


def test_the_defaults_are_not_shared_between_entries():
    first, second = identity_plan.resolve_identities([{"name": "a"}, {"name": "b"}], DEFAULTS)
    first["sans"].append("DNS:x")
    assert second["sans"] == ["DNS:b"]
    assert identity_plan.ENTRY_DEFAULTS["sans"] == []


@pytest.mark.parametrize("entry, defaults, fraction, days", [
    ({}, {}, 0.333, None),
    ({}, {"renew_days": 20}, 0.333, 20),
    ({"renew_days": 10}, {}, None, 10),
    ({"renew_days": 10}, {"renew_days": 20}, None, 10),
    ({"renew_fraction": 0.5}, {"renew_days": 20}, 0.5, 20),
    ({"renew_fraction": 0.5, "renew_days": 10}, {}, 0.5, 10),
    ({"renew_fraction": None}, {}, None, None),
    # ansible-core 2.16 renders an unset mtls_identity_renew_days (default(none)) as "".
    ({}, {"renew_days": ""}, 0.333, None),
    ({"renew_days": 10}, {"renew_days": ""}, None, 10),
])
def test_renew_days_and_renew_fraction_defaults(entry, defaults, fraction, days):
    settings = dict(DEFAULTS, **defaults)
    resolved = identity_plan.resolve_identity(dict(entry, name="web", profile="client"), settings)
    assert (resolved["renew_fraction"], resolved["renew_days"]) == (fraction, days)


def test_settings_by_name():
    identities = identity_plan.resolve_identities([{"name": "a"}, {"name": "b", "profile": "client"}], DEFAULTS)
    assert identity_plan.settings_by_name(identities) == {"a": identities[0], "b": identities[1]}


# ---- the batch -------------------------------------------------------------------------------

def _check(name, needs_issue=True, reason="missing", central_key=False, key_created=False, **item):
    item = dict(resolve(name=name, central_key=central_key, **item))
    return {"item": item, "needs_issue": needs_issue, "reason": reason, "csr": None if central_key else "CSR-" + name,
            "key_created": key_created, "key_path": "/m/private/%s.key" % name, "csr_path": "/m/certs/%s.csr" % name}


def test_batch_plan_requests_in_batch_order_host_made_first():
    csr = [("h1", [_check("web", key_created=True), _check("ok", needs_issue=False, reason="valid")]),
           ("h2", [_check("api", reason="renewal_window", validity_days="30")]),
           ("h3", [])]
    central = [("h1", [_check("dev", central_key=True, key_type="rsa2048", profile="client")]),
               ("h2", []), ("h3", [_check("cam", central_key=True, reason="key_mismatch")])]
    plan = identity_plan.batch_plan(csr, central)
    assert [(p["host"], p["identity"], p["reason"], p["central_key"]) for p in plan["pending"]] == [
        ("h1", "web", "missing", False), ("h1", "dev", "missing", True), ("h2", "api", "renewal_window", False),
        ("h3", "cam", "key_mismatch", True)]
    assert plan["csr_requests"] == [
        {"identity": "web", "host": "h1", "profile": "server", "sans": ["DNS:web"], "common_name": "web",
         "validity_days": 90, "csr": "CSR-web"},
        {"identity": "api", "host": "h2", "profile": "server", "sans": ["DNS:api"], "common_name": "api",
         "validity_days": 30, "csr": "CSR-api"}]
    assert plan["central_requests"] == [
        {"identity": "dev", "host": "h1", "profile": "client", "sans": [], "common_name": "dev",
         "validity_days": 90, "key_type": "rsa2048"},
        {"identity": "cam", "host": "h3", "profile": "server", "sans": ["DNS:cam"], "common_name": "cam",
         "validity_days": 90, "key_type": "ec_p256"}]
    assert plan["names"] == "h1/web, h1/dev, h2/api, h3/cam"
    assert plan["summary"] == "h1/web/missing, h1/dev/missing, h2/api/renewal_window, h3/cam/key_mismatch"
    assert plan["unsigned_files"] == [{"host": "h1", "path": "/m/private/web.key"},
                                      {"host": "h1", "path": "/m/certs/web.csr"}]


def test_skipped_checks_need_nothing():
    plan = identity_plan.batch_plan([("h1", [{"skipped": True, "item": {"name": "x"}}])], [])
    assert plan["pending"] == [] and plan["csr_requests"] == [] and plan["names"] == "" and plan["summary"] == ""


def test_pending_names_stop_after_twenty():
    pending = [{"host": "h%d" % n, "identity": "id"} for n in range(23)]
    names = identity_plan.pending_names(pending)
    assert names.startswith("h0/id, h1/id, ") and names.endswith("h19/id and 3 more")
    assert "h20/" not in names
    assert identity_plan.pending_names(pending[:20]).endswith("h19/id")
    assert "more" not in identity_plan.pending_names(pending[:20])


def test_the_filter_reads_the_checks_from_hostvars():
    hostvars = {"h1": {"_mtls_identity_csrs": {"results": [_check("web")]},
                       "_mtls_identity_central_checks": {"results": [], "skipped": True}},
                "h2": {}}
    plan = FilterModule().filters()["identity_batch"](["h1", "h2"], hostvars)
    assert plan["names"] == "h1/web"


# ---- after signing ---------------------------------------------------------------------------

def test_issued_for_host():
    signed = {"certificates": [{"host": "h1", "identity": "a"}, {"host": "h2", "identity": "b"}], "ca_chain": "CHAIN"}
    central = {"certificates": [{"host": "h1", "identity": "c", "key_path": "/k"}], "ca_chain": "CHAIN"}
    issued = identity_plan.issued_for_host("h1", signed, central)
    assert issued == {"certificates": [{"host": "h1", "identity": "a"}, {"host": "h1", "identity": "c", "key_path": "/k"}],
                      "central": [{"host": "h1", "identity": "c", "key_path": "/k"}], "ca_chain": "CHAIN"}
    assert identity_plan.issued_for_host("h1", {"skipped": True}, central)["ca_chain"] == "CHAIN"
    assert identity_plan.issued_for_host("h3", {}, {}) == {"certificates": [], "central": [], "ca_chain": ""}


def test_identities_to_check_follow_host_status():
    identities = [{"name": "web", "central_key": False}, {"name": "api", "central_key": False},
                  {"name": "device", "central_key": True}, {"name": "badge", "central_key": True}]
    status = {"identities": [{"name": "web", "due": False}, {"name": "api", "due": True},
                             {"name": "device", "due": True}, {"name": "badge", "due": False}]}
    assert [entry["name"] for entry in identity_plan.identities_to_check(identities, status)] == ["api"]
    assert [entry["name"] for entry in identity_plan.identities_to_check(identities, status, True)] == ["device"]
    # Only a trust bundle, CRL or reload due: no identity is looked at.
    quiet = {"identities": [dict(answer, due=False) for answer in status["identities"]]}
    assert identity_plan.identities_to_check(identities, quiet) == []
    assert identity_plan.identities_to_check(identities, quiet, central_key=True) == []
    # No answer (a status that did not run): every entry of the kind.
    assert [entry["name"] for entry in identity_plan.identities_to_check(identities, {"skipped": True})] == ["web", "api"]
    assert identity_plan.identities_to_check([], status) == []


SETTINGS = {"web": {"owner": "root", "group": "root", "mode": "0600"},
            "api": {"owner": "root", "group": "root", "mode": "0600"},
            "broker": {"owner": "root", "group": "mosquitto", "mode": "0640"}}


def _issue(*names):
    return {"certificates": [{"host": "h1", "identity": name, "certificate": "CERT-" + name, "serial": "0a"}
                             for name in names], "central": [], "ca_chain": "CHAIN"}


def test_install_calls_carry_the_bundles_with_root_owned_certificates():
    calls = identity_plan.install_calls(_issue("web", "api"), SETTINGS, "TRUST", "CRL")
    assert [(call["identity"], call["trust_bundle_content"], call["crl_content"]) for call in calls] == [
        ("web", "TRUST", "CRL"), ("api", "TRUST", "CRL")]
    assert calls[0]["certificate"] == "CERT-web" and calls[0]["chain"] == "CHAIN"
    assert (calls[0]["owner"], calls[0]["group"], calls[0]["mode"]) == ("root", "root", "0600")
    assert calls[0]["label"] == "web (serial 0a) with the trust bundle and CRLs"


def test_install_calls_never_give_the_bundles_to_a_service_owned_identity():
    # The broker's files are group mosquitto: the bundles are installed alone, before its certificate.
    calls = identity_plan.install_calls(_issue("broker"), SETTINGS, "TRUST", "CRL")
    assert [(call["identity"], call["trust_bundle_content"]) for call in calls] == [(None, "TRUST"), ("broker", None)]
    assert calls[0]["certificate"] is None and calls[0]["owner"] is None and calls[0]["label"] == "trust bundle and CRLs"
    assert calls[1]["group"] == "mosquitto" and calls[1]["crl_content"] is None
    # With a root-owned certificate as well, that one carries them and goes first.
    calls = identity_plan.install_calls(_issue("broker", "web"), SETTINGS, "TRUST", "CRL")
    assert [(call["identity"], call["trust_bundle_content"]) for call in calls] == [("web", "TRUST"), ("broker", None)]


def test_install_calls_without_certificates_or_ca():
    assert identity_plan.install_calls(_issue(), SETTINGS, "TRUST", "CRL") == [
        {"identity": None, "certificate": None, "chain": None, "serial": None, "owner": None, "group": None,
         "mode": None, "trust_bundle_content": "TRUST", "crl_content": "CRL", "manifest_identities": None,
         "manifest_consumers": None, "label": "trust bundle and CRLs"}]
    assert identity_plan.install_calls({}, SETTINGS, "TRUST", "CRL", has_identities=False) == []
    # Before the CA has published (check mode of a first run) nothing is installed.
    assert identity_plan.install_calls({}, SETTINGS, "", "", ca_ready=False) == []


def test_install_calls_record_an_outdated_manifest_with_the_last_call():
    web, consumer = {"name": "web"}, {"name": "app"}
    calls = identity_plan.install_calls(_issue("web", "broker"), SETTINGS, "TRUST", "CRL", record_manifest=True,
                                        manifest_identities=[web], manifest_consumers=[consumer])
    assert [(call["identity"], call["manifest_identities"], call["manifest_consumers"]) for call in calls] == [
        ("web", None, None), ("broker", [web], [consumer])]
    assert calls[-1]["label"] == "broker (serial 0a) and the manifest"
    # Up to date: no call records it.
    calls = identity_plan.install_calls(_issue("web"), SETTINGS, "TRUST", "CRL", record_manifest=False,
                                        manifest_identities=[web])
    assert [call["manifest_identities"] for call in calls] == [None]
    # Nothing else to install (a consumer declared on a converged host): one call for the manifest alone.
    assert identity_plan.install_calls({}, SETTINGS, "", "", ca_ready=False, record_manifest=True,
                                       manifest_identities=[web]) == [
        {"identity": None, "certificate": None, "chain": None, "serial": None, "owner": None, "group": None,
         "mode": None, "trust_bundle_content": None, "crl_content": None, "manifest_identities": [web],
         "manifest_consumers": [], "label": "manifest"}]


def test_install_changes_and_changed():
    results = [{"item": {"identity": "a"}, "changes": {"certificate": True, "key": True}},
               {"item": {"identity": "b"}, "changes": {"certificate": True, "key": False}},
               {"item": {"identity": "c"}, "skipped": True}]
    changes = identity_plan.install_changes(results, {"changes": {"trust_bundle": False, "crl": True}})
    assert changes == {"certificates": ["a", "b"], "keys": ["a"], "trust": False, "crl": True}
    assert identity_plan.any_change(changes) is True
    # Bundles installed by the certificate calls or alone: changed when any call changed them.
    calls = [{"item": {"identity": None}, "changes": {"certificate": False, "key": False, "trust_bundle": True,
                                                      "crl": False}},
             {"item": {"identity": "a"}, "changes": {"certificate": True, "key": False, "trust_bundle": False,
                                                     "crl": True}}]
    assert identity_plan.install_changes(calls) == {"certificates": ["a"], "keys": [], "trust": True, "crl": True}
    assert identity_plan.install_changes(calls[:1])["certificates"] == []
    nothing = identity_plan.install_changes([], {"skipped": True})
    assert nothing == {"certificates": [], "keys": [], "trust": False, "crl": False}
    assert identity_plan.any_change(nothing) is False
    assert identity_plan.any_change(dict(nothing, trust=True)) is True


def test_filters_are_the_library_functions():
    filters = FilterModule().filters()
    assert filters["identity_default_profile"] is identity_plan.default_profile
    assert filters["identity_default_key_group"] is identity_plan.default_key_group
    assert filters["identity_default_sans"] is identity_plan.default_sans
    assert filters["identity_default_identities"] is identity_plan.default_identities
    assert filters["identity_settings"] is identity_plan.settings_by_name
    assert filters["identity_issued"] is identity_plan.issued_for_host
    assert filters["identity_checks"] is identity_plan.identities_to_check
    assert filters["identity_install_calls"] is identity_plan.install_calls
    assert filters["identity_changes"] is identity_plan.install_changes
    assert filters["identity_changed"] is identity_plan.any_change
    assert filters["identity_list"]([{"name": "web"}], DEFAULTS)[0]["sans"] == ["DNS:web"]


HOSTVARS = {
    "app1.fleet.test": {"mtls_identities": [
        {"name": "app1", "profile": "client"},
        {"name": "api", "common_name": "api.fleet.test"},
        {"name": "blank", "common_name": ""}]},
    "app2.fleet.test": {},
}


@pytest.mark.parametrize("host, identity, common_name", [
    ("app1.fleet.test", "app1", "app1"),
    ("app1.fleet.test", "api", "api.fleet.test"),
    ("app1.fleet.test", "blank", "blank"),
    ("app2.fleet.test", "app2", "app2"),
])
def test_declared_common_name(host, identity, common_name):
    assert identity_plan.declared_common_name(HOSTVARS, host, identity) == common_name
    assert FilterModule().filters()["identity_common_name"](HOSTVARS, host, identity) == common_name


@pytest.mark.parametrize("hostvars, host, identity, message", [
    (HOSTVARS, "app9.fleet.test", "app9", "app9.fleet.test is not a host of the inventory"),
    (HOSTVARS, "app1.fleet.test", "web",
     r"app1.fleet.test declares no identity web \(its identities: app1, api, blank\)"),
    (HOSTVARS, "app2.fleet.test", "api",
     "sets no mtls_identities: its only identity is the default one, app2, not api"),
    ({"h": {"mtls_identities": "app1"}}, "h", "app1", "mtls_identities of h must be a list, got str"),
    (HOSTVARS, "", "app1", "must be an inventory name"),
    (HOSTVARS, "app1.fleet.test", "", "must be a name"),
])
def test_declared_common_name_names_the_problem(hostvars, host, identity, message):
    with pytest.raises(MtlsError, match=message):
        identity_plan.declared_common_name(hostvars, host, identity)


def test_the_common_name_filter_raises_a_filter_error():
    from ansible.errors import AnsibleFilterError  # pylint: disable=import-outside-toplevel
    with pytest.raises(AnsibleFilterError, match="fleet.mtls.identity_common_name: app9 is not a host"):
        FilterModule().filters()["identity_common_name"](HOSTVARS, "app9", "app9")


def test_the_recorded_common_name_comes_first_and_needs_no_declaration():
    recorded = [{"name": "myapp", "common_name": "myapp.internal"}]
    assert identity_plan.declared_common_name({"h": {"mtls_identities": []}}, "h", "myapp", recorded) == "myapp.internal"
    # Without a manifest entry the inventory's declaration answers, as before.
    assert identity_plan.declared_common_name({"h": {}}, "h", "h", [{"name": "other", "common_name": "x"}]) == "h"
