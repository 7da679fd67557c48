# -*- coding: utf-8 -*-
"""Fleet report: status classification, CA generation matching and the three output formats."""

from __future__ import annotations

import json

import os
import re
import sys

import pytest
from cryptography.hazmat.primitives import hashes, serialization

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from report_helpers import DAY, NOW, Generation, fleet_generations  # noqa: E402
from report_helpers import ca_input as _ca  # noqa: E402
from report_helpers import host as _host  # noqa: E402
from report_helpers import info as _info  # noqa: E402
from report_helpers import make_cert as _cert  # noqa: E402
from report_helpers import pem as _pem  # noqa: E402

from ansible_collections.fleet.mtls.plugins.module_utils import report as report_lib  # noqa: E402
from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError  # noqa: E402


@pytest.fixture(scope="module")
def generations():
    return fleet_generations()


def _one(generations, info, chain=None, warn_days=30, with_ca=True):
    chain = chain if chain is not None else generations["3"].leaf_chain("web")
    hosts = [_host("web1", [{"identity": "web", "path": "/etc/mtls/certs/web.crt", "info": info,
                             "chain_pem": chain}], _pem(generations["3"].root, generations["3"].issuing))]
    report = report_lib.build_report(hosts, _ca(generations) if with_ca else None, warn_days=warn_days, now=NOW)
    return report["certificates"][0]


# ---------------------------------------------------------------- inputs


def test_fingerprints_match_cryptography_and_skip_other_blocks(generations):
    gen = generations["3"]
    key_pem = gen.issuing_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()).decode()
    text = _pem(gen.root) + key_pem + _pem(gen.issuing)
    assert report_lib.certificate_fingerprints(text) == [
        gen.root.fingerprint(hashes.SHA256()).hex(), gen.issuing.fingerprint(hashes.SHA256()).hex()]
    assert report_lib.certificate_fingerprints("") == []
    assert report_lib.certificate_fingerprints(None) == []


def test_fingerprint_of_corrupt_block_is_an_error():
    with pytest.raises(MtlsError, match="not valid base64"):
        report_lib.certificate_fingerprints("-----BEGIN CERTIFICATE-----\nnot*base64!\n-----END CERTIFICATE-----\n")


@pytest.mark.parametrize("value", ["2026-06-01T12:00:00Z", "2026-06-01T14:00:00+02:00", "20260601120000Z",
                                   1780315200, "2026-06-01T12:00:00"])
def test_parse_time_accepts_the_formats_modules_return(value):
    assert report_lib.parse_time(value) == NOW


@pytest.mark.parametrize("value", ["yesterday", "", None, True])
def test_parse_time_rejects_garbage_naming_the_field(value):
    with pytest.raises(MtlsError, match="not_after of web"):
        report_lib.parse_time(value, "not_after of web")


@pytest.mark.parametrize("days", [-1, "30", float("nan")])
def test_bad_thresholds_are_rejected(days):
    with pytest.raises(MtlsError, match="warn_days must be a number of days"):
        report_lib.build_report([], warn_days=days, now=NOW)


def test_unknown_generation_state_is_rejected(generations):
    ca = _ca(generations)
    ca["generations"][0]["state"] = "archived"
    with pytest.raises(MtlsError, match="unknown state 'archived'"):
        report_lib.build_report([], ca, now=NOW)


# ---------------------------------------------------------------- classification


def test_healthy_leaf_is_ok_with_its_generation(generations):
    row = _one(generations, _info(60))
    assert row["status"] == "ok"
    assert row["issuer_generation"] == "3"
    assert row["days_left"] == 60.0
    assert row["reasons"] == []
    assert row["expiry_timestamp"] == int((NOW + 60 * DAY).timestamp())


def test_warn_days_boundary(generations):
    assert _one(generations, _info(30), warn_days=30)["status"] == "renew_soon"
    assert _one(generations, _info(30.1), warn_days=30)["status"] == "ok"


def test_expired_beats_renew_soon_and_revoked_beats_expired(generations):
    assert _one(generations, _info(-0.5))["status"] == "expired"
    row = _one(generations, _info(-0.5, revoked=True))
    assert row["status"] == "revoked"
    assert any("expired" in reason for reason in row["reasons"])


def test_every_renewal_reason_has_a_meaning_in_the_report():
    from ansible_collections.fleet.mtls.plugins.module_utils import renewal
    assert set(report_lib.RENEWAL_REASON_STATUS) == set(renewal.REASONS) | {renewal.VALID}
    assert set(report_lib.RENEWAL_REASON_STATUS.values()) - {None} <= set(report_lib.CERT_STATUSES)


def _renewal(reason, detail=""):
    return {"needs_issue": reason != "valid", "reason": reason, "detail": detail}


def test_broken_identity_files_from_the_renewal_check_are_unreadable(generations):
    row = _one(generations, dict(_info(60), renewal=_renewal("key_mismatch", "the certificate does not belong to the private key")))
    assert row["status"] == "unreadable"
    assert row["renewal_reason"] == "key_mismatch"
    assert row["reasons"] == ["the certificate does not belong to the private key"]
    assert _one(generations, dict(_info(60), renewal=_renewal("files_inconsistent", "chain")))["status"] == "unreadable"


def test_renewal_reasons_the_report_judges_itself_keep_its_status(generations):
    window = _one(generations, dict(_info(60), renewal=_renewal("renewal_window", "20 days left")))
    assert (window["status"], window["renewal_reason"], window["reasons"]) == ("ok", "renewal_window", [])
    expired = _one(generations, dict(_info(-0.5), renewal=_renewal("expired", "expired 0.5 days ago")))
    assert expired["status"] == "expired" and len(expired["reasons"]) == 1
    # Worst first: files that cannot be used outrank a revocation; both reasons are listed.
    revoked = _one(generations, dict(_info(60, revoked=True), renewal=_renewal("key_missing", "no key")))
    assert revoked["status"] == "unreadable"
    assert revoked["reasons"] == ["listed in the host's CRL", "no key"]
    assert _one(generations, _info(60))["renewal_reason"] is None


def test_unknown_renewal_reason_is_named(generations):
    with pytest.raises(MtlsError, match="web1 web: unknown renewal reason 'gremlins'"):
        _one(generations, dict(_info(60), renewal=_renewal("gremlins")))


def test_chain_not_valid_is_untrusted_issuer(generations):
    row = _one(generations, _info(60, chain_valid=False))
    assert row["status"] == "untrusted_issuer"
    assert "does not chain to the host's trust bundle" in row["reasons"]


def test_retired_generation_is_untrusted_and_retiring_needs_renewal(generations):
    retired = _one(generations, _info(60), chain=generations["1"].leaf_chain("web"))
    assert (retired["status"], retired["issuer_generation"]) == ("untrusted_issuer", "1")
    retiring = _one(generations, _info(60), chain=generations["2"].leaf_chain("web"))
    assert (retiring["status"], retiring["issuer_generation"]) == ("renew_soon", "2")
    assert "retiring CA generation 2" in retiring["reasons"][0]


def test_foreign_issuer_is_untrusted_only_when_generations_are_known(generations):
    foreign = Generation("x", "active").leaf_chain("web")
    assert _one(generations, _info(60), chain=foreign)["status"] == "untrusted_issuer"
    row = _one(generations, _info(60), chain=foreign, with_ca=False)
    assert (row["status"], row["issuer_generation"]) == ("ok", "unknown")


def test_issuer_generation_from_cert_info_fingerprints(generations):
    gen = generations["2"]
    leaf, _key = _cert("web", gen.issuing, gen.issuing_key)
    colon = [":".join("%02X" % b for b in cert.fingerprint(hashes.SHA256())) for cert in (leaf, gen.issuing)]
    info = _info(60, certificates=[{"fingerprint_sha256": value} for value in colon])
    row = _one(generations, info, chain="")
    assert row["issuer_generation"] == "2"


def test_missing_chain_file_is_unreadable(generations):
    row = _one(generations, {"exists": False})
    assert row["status"] == "unreadable"
    assert row["reasons"] == ["/etc/mtls/certs/web.crt is missing"]


def test_host_that_could_not_be_inspected_is_a_problem(generations):
    report = report_lib.build_report([{"host": "db1", "error": "unreachable"}], _ca(generations), now=NOW)
    assert report["hosts"][0]["reachable"] is False
    assert report["problems"] == ["db1 could not be inspected: unreachable"]


def test_trust_bundle_given_as_fingerprints(generations):
    old = generations["1"].root.fingerprint(hashes.SHA256()).hex()
    report = report_lib.build_report([{"host": "a", "trust_bundle_fingerprints": [old.upper()]}],
                                     _ca(generations), now=NOW)
    assert report["hosts"][0]["retired_generations"] == ["1"]


def test_unreadable_certificate_keeps_the_modules_message(generations):
    row = _one(generations, {"failed": True, "msg": "cannot read /etc/mtls/certs/web.crt: permission denied"})
    assert row["status"] == "unreadable"
    assert row["reasons"] == ["cannot read /etc/mtls/certs/web.crt: permission denied"]
    assert row["days_left"] is None


def test_hosts_trusting_a_retired_ca_and_missing_bundles(generations):
    old, new = generations["1"], generations["3"]
    hosts = [_host("a", [], _pem(new.root, new.issuing)),
             _host("b", [], _pem(old.root, new.root, new.issuing)),
             _host("c", [], None)]
    report = report_lib.build_report(hosts, _ca(generations), now=NOW)
    by_host = {row["host"]: row for row in report["hosts"]}
    assert by_host["a"]["trusts_retired_ca"] is False
    assert by_host["b"]["retired_generations"] == ["1"]
    assert by_host["c"]["trust_bundle_found"] is False
    assert report["summary"]["hosts_trusting_retired_ca"] == 1
    assert "b trusts retired CA generation(s) 1" in report["problems"]
    assert "c has no trust bundle" in report["problems"]


def test_crl_statuses(generations):
    crls = [{"ca": "issuing-3", "next_update": report_lib.isoformat(NOW + 5 * DAY), "crl_number": 7},
            {"ca": "issuing-2", "next_update": report_lib.isoformat(NOW + 1 * DAY), "crl_number": 3},
            {"ca": "root-3", "next_update": report_lib.isoformat(NOW - DAY)},
            {"ca": "root-2"}]
    report = report_lib.build_report([], _ca(generations, crls), crl_warn_days=2, now=NOW)
    assert {row["ca"]: row["status"] for row in report["crls"]} == {
        "issuing-3": "ok", "issuing-2": "renew_soon", "root-3": "expired", "root-2": "missing"}
    assert report["summary"]["crls_needing_attention"] == 3


def _fleet_report(generations):
    gen = generations["3"]
    bundle = _pem(gen.root, gen.issuing)
    hosts = [
        _host("web1.example.com", [
            {"identity": "web1", "info": _info(60), "chain_pem": gen.leaf_chain("web1")},
            {"identity": 'odd"name\\with\nnewline', "info": _info(3), "chain_pem": gen.leaf_chain("odd")}],
            bundle + _pem(generations["1"].root)),
        _host("client1", [{"identity": "client1", "info": _info(-2), "chain_pem": gen.leaf_chain("c1")}], bundle),
    ]
    crls = [{"ca": "issuing-3", "next_update": report_lib.isoformat(NOW + 5 * DAY), "crl_number": 4}]
    return report_lib.build_report(hosts, _ca(generations, crls), warn_days=14, now=NOW)


def test_rows_are_sorted_and_summarised(generations):
    report = _fleet_report(generations)
    assert [(row["host"], row["status"]) for row in report["certificates"]] == [
        ("client1", "expired"), ("web1.example.com", "renew_soon"), ("web1.example.com", "ok")]
    assert report["summary"]["expired"] == 1 and report["summary"]["renew_soon"] == 1
    assert report["summary"]["ok"] == 1
    assert report["ca"] == {"active_generation": 3, "phase": "reissue", "phase_completed": False,
                            "scope": "root", "from": 2, "to": 3, "generations": [
                                {"id": "1", "state": "retired"}, {"id": "2", "state": "retiring"},
                                {"id": "3", "state": "active"}]}


def test_rows_are_sorted_by_urgency_not_by_host(generations):
    gen = generations["3"]
    bundle = _pem(gen.root, gen.issuing)
    hosts = [
        _host("a-ok", [{"identity": "a", "info": _info(80), "chain_pem": gen.leaf_chain("a")}], bundle),
        _host("b-soon", [{"identity": "b", "info": _info(5), "chain_pem": gen.leaf_chain("b")},
                         {"identity": "b2", "info": _info(2), "chain_pem": gen.leaf_chain("b2")}], bundle),
        _host("c-untrusted", [{"identity": "c", "info": _info(70, chain_valid=False),
                               "chain_pem": gen.leaf_chain("c")}], bundle),
        _host("d-revoked", [{"identity": "d", "info": _info(40, revoked=True), "chain_pem": gen.leaf_chain("d")}],
              bundle),
        _host("e-expired", [{"identity": "e", "info": _info(-1), "chain_pem": gen.leaf_chain("e")}], bundle),
        {"host": "f-down", "error": "unreachable"},
    ]
    report = report_lib.build_report(hosts, _ca(generations), warn_days=14, now=NOW)
    assert [row["identity"] for row in report["certificates"]] == ["d", "e", "c", "b2", "b", "a"]
    table = report_lib.report_table(report)
    hosts_in_order = [line.split()[0] for line in table.split("\n\n", maxsplit=1)[0].split("\n")[2:]]
    assert hosts_in_order == ["d-revoked", "e-expired", "c-untrusted", "f-down", "b-soon", "b-soon", "a-ok"]
    down = [line for line in table.split("\n") if line.startswith("f-down")]
    assert down[0].split()[-1] == "not_inspected"
    assert any(line.startswith("HOST NOT INSPECTED") for line in table.split("\n"))
    section = [part for part in table.split("\n\n") if part.startswith("HOST NOT INSPECTED")]
    assert section[0].split("\n")[2].split() == ["f-down", "never", "unreachable"]


# ---------------------------------------------------------------- formats


def test_table_aligns_columns_and_ends_with_a_summary(generations):
    table = report_lib.report_table(_fleet_report(generations))
    lines = table.split("\n")
    header, rule = lines[0], lines[1]
    assert header.split() == ["HOST", "IDENTITY", "GEN", "NOT", "AFTER", "DAYS", "LEFT", "STATUS"]
    assert set(rule.replace(" ", "")) == {"-"}
    days_column_end = header.index("DAYS LEFT") + len("DAYS LEFT")
    first_row = lines[2]
    # Numbers are right-aligned under their header.
    assert first_row[:days_column_end].endswith("-2.0")
    assert "client1" in first_row and "expired" in first_row
    assert "web1.example.com  trusts" not in table
    assert "HOST TRUSTING A RETIRED CA" in table
    # A newline inside a value must not break the table's rows.
    assert 'odd"name\\with\\nnewline' in table
    assert lines[-1] == ("3 certificate(s): expired 1, renew_soon 1, ok 1; 0 host(s) not inspected; "
                         "1 host(s) trust a retired CA; 0 CRL(s) need attention")


def test_format_table_rejects_nothing_and_pads_missing_values():
    table = report_lib.format_table([{"a": "x", "b": None}, {"a": "longer", "b": 5}], [("a", "A"), ("b", "B")])
    assert table.split("\n") == ["A       B", "------  -", "x       -", "longer  5"]


def test_json_round_trips(generations):
    report = _fleet_report(generations)
    assert json.loads(report_lib.report_json(report)) == report


# ---------------------------------------------------------------- verify summary


def _probe(expect, with_identity=True, **result):
    return {"client": "client1", "target": "web1:443", "protocol": "http", "with_identity": with_identity,
            "identity": "client1" if with_identity else None, "expect": expect, "result": result}


def test_probe_summary_judges_each_expectation():
    summary = report_lib.summarize_probes([
        _probe("accepted", accepted=True, outcome="accepted", stage=None),
        _probe("rejected", with_identity=False, accepted=False, outcome="rejected", stage="post_handshake",
               error="tlsv13 alert certificate required"),
    ])
    assert summary["passed"] is True
    assert [row["result"] for row in summary["rows"]] == ["PASS", "PASS"]
    assert [row["identity"] for row in summary["rows"]] == ["client1", "none"]
    assert summary["table"].endswith("2 probe(s), 2 passed, 0 failed")


def test_probe_summary_fails_wrong_outcomes_and_unreachable_targets():
    summary = report_lib.summarize_probes([
        _probe("rejected", with_identity=False, accepted=True, outcome="accepted", stage=None),
        _probe("rejected", with_identity=False, accepted=False, outcome="error", stage="connect",
               error="connection refused"),
        _probe("accepted", failed=True, msg="client_key: no such file"),
    ])
    assert summary["passed"] is False
    assert sorted(row["outcome"] for row in summary["failures"]) == ["accepted", "error", "error"]
    assert "connection refused" in summary["table"] and "client_key: no such file" in summary["table"]
    assert summary["table"].endswith("3 probe(s), 0 passed, 3 failed")


def test_probe_summary_without_probes_does_not_pass():
    assert report_lib.summarize_probes([])["passed"] is False


def test_probe_summary_rejects_bad_expectation():
    with pytest.raises(MtlsError, match="expect='maybe'"):
        report_lib.summarize_probes([_probe("maybe", accepted=True, outcome="accepted")])


def test_filter_plugin_wraps_errors_for_ansible():
    from ansible.errors import AnsibleFilterError
    from ansible_collections.fleet.mtls.plugins.filter.report import FilterModule

    filters = FilterModule().filters()
    with pytest.raises(AnsibleFilterError, match="fleet.mtls.fleet_report: warn_days"):
        filters["fleet_report"]([], warn_days=-3)
    rendered = filters["fleet_report"]([], now="2026-06-01T12:00:00Z")
    assert set(rendered) == {"report", "table", "json", "html", "prometheus"}


def test_probe_summary_names_a_wrong_acceptance_without_an_error_text():
    """A server that accepts a client without a certificate gives the probe no error to show."""
    summary = report_lib.summarize_probes([
        _probe("rejected", with_identity=False, accepted=True, outcome="accepted", stage=None, error=None),
        _probe("rejected", accepted=True, outcome="accepted", stage=None),
        _probe("accepted", accepted=False, outcome="rejected", stage="handshake"),
    ])
    details = [row["detail"] for row in summary["rows"]]
    assert "accepted without a client certificate; expected rejection" in details
    assert "accepted the client's identity; expected rejection" in details
    assert "rejected the client's identity; expected acceptance" in details
    assert all(row["detail"] for row in summary["failures"])
    assert "accepted without a client certificate; expected rejection" in summary["table"]


# ---------------------------------------------------------------- playbook variables


def test_report_settings_defaults_put_the_html_beside_the_json():
    settings = report_lib.report_settings({"json": "/var/tmp/fleet.json", "warn_days": None})
    assert settings == {"warn_days": 21.0, "crl_warn_days": 1.0, "json": "/var/tmp/fleet.json",
                        "html": "/var/tmp/fleet.html", "prometheus": "", "prometheus_file": "",
                        "fail_on_problems": False}
    assert report_lib.report_settings({"json": "/r/out"})["html"] == "/r/out.html"
    assert report_lib.report_settings({"json": "/r/a.json", "html": ""})["html"] == ""
    assert report_lib.report_settings({})["html"] == ""


def test_report_settings_read_extra_vars_strings():
    settings = report_lib.report_settings({"warn_days": "14", "crl_warn_days": " 0.5 ", "fail_on_problems": "yes",
                                           "prometheus": "/var/lib/node-exporter/", "html": "/srv/r.html"})
    assert (settings["warn_days"], settings["crl_warn_days"], settings["fail_on_problems"]) == (14.0, 0.5, True)
    assert settings["prometheus_file"] == "/var/lib/node-exporter/fleet_mtls.prom"
    assert settings["html"] == "/srv/r.html"


@pytest.mark.parametrize("variables, message", [
    ({"warn_days": "abc"}, "mtls_report_warn_days must be a number of days >= 0, got 'abc'"),
    ({"warn_days": -1}, "mtls_report_warn_days must be a number of days >= 0, got -1"),
    ({"warn_days": True}, "mtls_report_warn_days must be a number"),
    ({"crl_warn_days": "nan"}, "mtls_report_crl_warn_days must be a number"),
    ({"crl_warn_days": "inf"}, "mtls_report_crl_warn_days must be a number"),
    ({"fail_on_problems": "maybe"}, "mtls_report_fail_on_problems must be a boolean"),
    ({"json": ["a"]}, "mtls_report_json must be a path"),
    ({"json": "/r.json", "html": "/r.json"}, "name the same file"),
    ({"warn": 3}, "unknown report setting"),
])
def test_report_settings_refuse_bad_values_naming_the_variable(variables, message):
    with pytest.raises(MtlsError, match=re.escape(message)):
        report_lib.report_settings(variables)


def test_report_settings_filter_wraps_errors():
    from ansible.errors import AnsibleFilterError
    from ansible_collections.fleet.mtls.plugins.filter.report import FilterModule

    with pytest.raises(AnsibleFilterError, match="fleet.mtls.report_settings: mtls_report_warn_days"):
        FilterModule().filters()["report_settings"]({"warn_days": "abc"})


def _target(label, with_identity="accepted", without_identity="rejected", protocol="http"):
    return {"label": label, "protocol": protocol, "with_identity": with_identity, "without_identity": without_identity}


def test_verify_probes_gathers_every_clients_registered_probes():
    """What fleet.mtls.verify's probe play registered, one entry per probe: with the identity, then without."""
    web, broker = _target("web1:443 app"), _target("mq1:8883", protocol="mqtt", with_identity="rejected")
    client_vars = {
        "client1": {"mtls_dir": "/srv/mtls", "_mtls_verify_identity": "client1",
                    "_mtls_verify_with": {"results": [{"item": web, "outcome": "accepted"},
                                                      {"item": broker, "outcome": "rejected"}]},
                    "_mtls_verify_without": {"results": [{"item": web, "outcome": "rejected"}]}},
        # No client identity installed: the probe with it was skipped, which is an error naming the directory.
        "client2": {"mtls_dir": "/srv/mtls2", "_mtls_verify_identity": "",
                    "_mtls_verify_with": {"results": [{"item": web, "skipped": True}]},
                    "_mtls_verify_without": {"results": [{"item": web, "outcome": "rejected"}]}},
        # Unreachable: nothing registered.
        "client3": {},
    }
    probes = report_lib.verify_probes(["client1", "client2", "client3"], client_vars, ["web1", "mq1"])
    assert [(p["client"], p["target"], p["protocol"], p["with_identity"], p["expect"]) for p in probes] == [
        ("client1", "web1:443 app", "http", True, "accepted"),
        ("client1", "mq1:8883", "mqtt", True, "rejected"),
        ("client1", "web1:443 app", "http", False, "rejected"),
        ("client2", "web1:443 app", "http", True, "accepted"),
        ("client2", "web1:443 app", "http", False, "rejected"),
        ("client3", "all services", "-", True, "accepted"),
    ]
    assert probes[0]["identity"] == "client1" and probes[3]["identity"] == "none found"
    assert probes[3]["result"] == {"outcome": "error", "error": "no client identity installed in /srv/mtls2/certs"}
    assert probes[5]["result"]["error"] == "client unreachable or failed before probing"
    summary = report_lib.summarize_probes(probes)
    assert [(row["client"], row["result"]) for row in summary["failures"]] == [("client2", "FAIL"), ("client3", "FAIL")]
    assert len(summary["rows"]) == 6


def test_verify_probes_without_a_service_has_nothing_to_probe():
    # The probe play ended at once: no client registered anything, and that is no failure.
    assert report_lib.verify_probes(["client1", "client2"], {"client1": {}, "client2": {}}, []) == []
    assert report_lib.summarize_probes([])["rows"] == []
