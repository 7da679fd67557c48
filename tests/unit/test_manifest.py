# -*- coding: utf-8 -*-
"""The host manifest: recording merges by name, what a run acts on, retiring (and its refusals),
a manifest that cannot be parsed, and host_status checking what the manifest holds."""
from __future__ import annotations

import json
import os
import stat

import pytest

from ansible_collections.fleet.mtls.plugins.module_utils import manifest as lib
from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError
from ansible_collections.fleet.mtls.plugins.module_utils.host_status import host_status

APP = {"name": "app", "profile": "client", "common_name": "app", "sans": [], "key_type": "ec_p256",
       "validity_days": 90, "renew_fraction": 0.333, "renew_days": None, "new_key_on_renew": True,
       "owner": "root", "group": "root", "mode": "0600", "central_key": False}
CONSUMER = {"name": "app", "identities": ["app"], "apply": {"default": {"service": "app"}}}


def test_a_missing_manifest_is_empty_and_recording_merges_by_name(tmp_path):
    directory = str(tmp_path)
    assert lib.read_manifest(directory) == lib.empty_manifest()
    first = lib.merged(lib.read_manifest(directory), [dict(APP, extra="ignored")], [CONSUMER])
    assert lib.write_manifest(directory, first) is True
    assert stat.S_IMODE(os.stat(lib.manifest_path(directory)).st_mode) == 0o644
    assert lib.read_manifest(directory)["identities"] == [APP]  # only the settings a renewal needs
    assert lib.write_manifest(directory, first) is False
    web = dict(APP, name="web", profile="server")
    second = lib.merged(lib.read_manifest(directory), [web, dict(APP, validity_days=30)], [])
    assert [(e["name"], e["validity_days"]) for e in second["identities"]] == [("app", 30), ("web", 90)]
    assert second["consumers"] == [CONSUMER]


def test_records_change_agrees_with_what_the_manifest_module_would_write(tmp_path):
    from ansible.errors import AnsibleFilterError
    from ansible_collections.fleet.mtls.plugins.filter.identity import FilterModule
    outdated = FilterModule().filters()["manifest_outdated"]
    directory = str(tmp_path)
    cases = [([APP], [CONSUMER]), ([APP], [CONSUMER]), ([dict(APP, mode="0640")], [CONSUMER]),
             ([APP], []),  # a consumer recorded before and not declared now stays: no change
             ([dict(APP, name="web", profile="server")], [dict(CONSUMER, reload_signal="HUP")])]
    for identities, consumers in cases:
        read = lib.read_manifest(directory)
        predicted = outdated(read, identities, consumers)
        assert predicted is lib.records_change(read, identities, consumers)
        assert predicted is lib.write_manifest(directory, lib.merged(read, identities, consumers))
    # The same entries again: the second of the pair above, and the run after the last one.
    assert [outdated(lib.empty_manifest(), [APP], [])] == [True]
    assert outdated(lib.read_manifest(directory), [dict(APP, name="web", profile="server")], []) is False
    with pytest.raises(AnsibleFilterError, match="must be a manifest"):
        outdated({"identities": "app"}, [APP], [])


def test_a_run_acts_on_the_declared_entries_then_the_recorded_ones(tmp_path):
    declared = [dict(APP, name="web")]
    recorded = [dict(APP, name="web", profile="server"), APP]
    assert lib.with_recorded(declared, recorded) == [dict(APP, name="web"), APP]
    assert lib.with_recorded([], []) == []


@pytest.mark.parametrize("text, problem", [
    ("{broken", "is not valid JSON"),
    (json.dumps({"format": 7, "identities": [], "consumers": []}), "is not a format 1 manifest"),
    (json.dumps({"format": 1, "identities": [{"profile": "client"}], "consumers": []}), "has no list of named identities"),
    (json.dumps({"format": 1, "identities": [{"name": "../etc"}], "consumers": []}), "lists an identity with invalid identity name"),
])
def test_a_manifest_that_cannot_be_used_fails_naming_the_file(tmp_path, text, problem):
    (tmp_path / "manifest.json").write_text(text)
    with pytest.raises(MtlsError) as caught:
        lib.read_manifest(str(tmp_path))
    assert "host manifest %s %s" % (tmp_path / "manifest.json", problem) in str(caught.value)


def _install(tmp_path, name):
    for sub, suffix in (("certs", ".crt"), ("certs", ".chain.pem"), ("private", ".key"), ("private", ".key.new")):
        (tmp_path / sub).mkdir(exist_ok=True)
        (tmp_path / sub / (name + suffix)).write_text(name)


def test_retiring_removes_the_files_and_the_entries_and_refuses_what_is_still_needed(tmp_path):
    directory = str(tmp_path)
    _install(tmp_path, "app")
    _install(tmp_path, "web")
    lib.write_manifest(directory, lib.merged(lib.empty_manifest(), [APP, dict(APP, name="web")], [CONSUMER]))
    with pytest.raises(MtlsError, match="identity app is read by consumer app"):
        lib.retire(directory, ["app"])
    with pytest.raises(MtlsError, match="identity web is still declared for this host"):
        lib.retire(directory, ["web"], declared_names=["web"])
    with pytest.raises(MtlsError, match="consumer app is still declared"):
        lib.retire(directory, ["app"], ["app"], declared_consumers=["app"])
    assert (tmp_path / "certs" / "app.crt").exists()
    dry = lib.retire(directory, ["app"], ["app"], check_mode=True)
    assert dry["changed"] and (tmp_path / "certs" / "app.crt").exists()
    done = lib.retire(directory, ["app"], ["app"])
    assert done["retired"] == ["app"] and done["retired_consumers"] == ["app"] and len(done["removed_files"]) == 4
    assert sorted(os.listdir(tmp_path / "certs")) == ["web.chain.pem", "web.crt"]
    assert [e["name"] for e in lib.read_manifest(directory)["identities"]] == ["web"]
    assert lib.retire(directory, ["app"])["changed"] is False


def test_retiring_removes_a_link_in_a_key_path_and_never_what_it_points_to(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("not ours")
    (tmp_path / "private").mkdir()
    os.symlink(str(target), str(tmp_path / "private" / "app.key"))
    lib.write_manifest(str(tmp_path), lib.merged(lib.empty_manifest(), [APP], []))
    lib.retire(str(tmp_path), ["app"])
    assert not os.path.lexists(tmp_path / "private" / "app.key") and target.read_text() == "not ours"


def test_host_status_checks_the_identities_and_consumers_the_manifest_holds(tmp_path):
    directory = str(tmp_path / "mtls")
    os.makedirs(directory)
    lib.write_manifest(directory, lib.merged(lib.empty_manifest(), [APP], [dict(CONSUMER, crl=True)]))
    answer = host_status({"dir": directory, "identities": [], "consumer_records_dir": str(tmp_path / "records")})
    assert [entry["name"] for entry in answer["identities"]] == ["app"]
    assert answer["due"] and "identity app: missing" in answer["reasons"][0]
    assert "consumer app" in answer["reloads"] and not answer["reloads"]["consumer app"]["record_found"]
