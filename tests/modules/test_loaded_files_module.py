# -*- coding: utf-8 -*-
"""fleet.mtls.loaded_files through ansible: compare, record, check mode, bad input."""

from __future__ import annotations

import json


def test_compare_record_and_change(ansible_module, tmp_path):
    cert, key = tmp_path / "web.chain.pem", tmp_path / "web.key"
    cert.write_text("leaf one\n")
    key.write_text("KEY MATERIAL one\n")
    state = tmp_path / "loaded" / "nginx.json"
    args = {"paths": [str(cert), str(key)], "state_file": str(state)}

    first = ansible_module("loaded_files", args)
    assert not first.get("failed"), first.get("msg")
    assert first["changed"] is False and first["pending"] is True and first["record_found"] is False
    assert first["pending_paths"] == [str(cert), str(key)]
    assert not state.exists()

    checked = ansible_module("loaded_files", dict(args, record=True), check=True)
    assert checked["changed"] is True and not state.exists()

    recorded = ansible_module("loaded_files", dict(args, record=True))
    assert recorded["changed"] is True and state.exists()
    assert "KEY MATERIAL" not in state.read_text() and "KEY MATERIAL" not in recorded.output
    assert json.loads(state.read_text())["files"][str(key)] != "missing"

    again = ansible_module("loaded_files", dict(args, record=True))
    assert again["changed"] is False and again["pending"] is False

    # A renewal lands on disk, but the run that installed it never reloaded the service.
    cert.write_text("leaf two\n")
    key.write_text("KEY MATERIAL two\n")
    owed = ansible_module("loaded_files", args)
    assert owed["changed"] is False and owed["pending"] is True and owed["record_found"] is True
    assert owed["pending_paths"] == [str(cert), str(key)]


def test_bad_input_names_the_problem(ansible_module, tmp_path):
    (tmp_path / "file").write_text("x")
    blocked = ansible_module("loaded_files", {"paths": [str(tmp_path / "file")],
                                              "state_file": str(tmp_path / "file" / "state.json"), "record": True})
    assert blocked.get("failed") and "not a directory" in blocked["msg"].lower() and "state.json" in blocked["msg"]
    missing = ansible_module("loaded_files", {"state_file": str(tmp_path / "s.json")})
    assert missing.get("failed") and "paths" in missing["msg"]
