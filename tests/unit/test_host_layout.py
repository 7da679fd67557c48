# -*- coding: utf-8 -*-
"""On-host layout and the identity-name rule (moved from test_renewal.py)."""
from __future__ import annotations

import pytest

from ansible_collections.fleet.mtls.plugins.module_utils import host_layout
from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError


@pytest.mark.parametrize("name", ["", ".hidden", "-x", "a/b", "../etc", "a b", "x" * 129])
def test_identity_name_must_be_a_plain_file_name(name):
    with pytest.raises(MtlsError, match="invalid identity name"):
        host_layout.HostLayout("/etc/mtls", name)
    with pytest.raises(MtlsError, match="invalid identity name"):
        host_layout.check_identity_name(name)


def test_identity_name_accepts_plain_names():
    for name in ("web", "web1.example.net", "_svc", "a" * 128, "mqtt-client_2"):
        assert host_layout.check_identity_name(name) == name


def test_host_layout_paths():
    layout = host_layout.HostLayout("/etc/mtls", "web")
    assert layout.key == "/etc/mtls/private/web.key"
    assert layout.staged_key == "/etc/mtls/private/web.key.new"
    assert layout.certificate == "/etc/mtls/certs/web.crt"
    assert layout.chain == "/etc/mtls/certs/web.chain.pem"
    assert layout.csr == "/etc/mtls/certs/web.csr"
    assert layout.trust_bundle == "/etc/mtls/trust-bundle.pem"
    assert layout.crl == "/etc/mtls/crl.pem"


def test_host_layout_lock_beside_the_key():
    assert host_layout.HostLayout("/etc/mtls", "web").lock == "/etc/mtls/private/.web.lock"


def test_installed_identities_lists_regular_leaf_files_by_name(tmp_path):
    certs = tmp_path / "certs"
    certs.mkdir()
    for name in ("web.crt", "app.crt", "app.chain.pem", ".web.crt.abcdefgh", ".hidden.crt", "notes.txt", ".crt"):
        (certs / name).write_text("x")
    (certs / "link.crt").symlink_to(certs / "web.crt")
    (certs / "dir.crt").mkdir()
    found = host_layout.installed_identities(str(tmp_path))
    assert [layout.name for layout in found] == ["app", "web"]
    assert found[0].chain == str(certs / "app.chain.pem")


def test_installed_identities_without_certs_directory(tmp_path):
    assert host_layout.installed_identities(str(tmp_path)) == []
    (tmp_path / "certs").write_text("not a directory")
    assert host_layout.installed_identities(str(tmp_path)) == []
