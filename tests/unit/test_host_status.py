# -*- coding: utf-8 -*-
"""host_status: the one read-only answer of a maintenance run for a host, without Ansible. Each kind
of "due", "nothing due", and that nothing is ever written."""

from __future__ import annotations

import hashlib
import os
import re

import pytest
from cryptography import x509

from ansible_collections.fleet.mtls.plugins.module_utils import identity_plan
from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError
from ansible_collections.fleet.mtls.plugins.module_utils.host_identity import install_identity, request_identity
from ansible_collections.fleet.mtls.plugins.module_utils.host_status import host_status
from ansible_collections.fleet.mtls.plugins.module_utils.loaded_state import fingerprints, record_loaded
from ansible_collections.fleet.mtls.plugins.module_utils.manifest import empty_manifest, merged, write_manifest
from pki_factory import Pki, crl_pem, make_crl  # noqa: E402

CN = "web.example.net"
SANS = ["DNS:web.example.net"]


@pytest.fixture(scope="module")
def pki():
    return Pki()


class _PublicOnly:
    def __init__(self, public_key):
        self._public_key = public_key

    def public_key(self):
        return self._public_key


def entry(**extra):
    """An identity entry as the identity role resolves it (validity_days is ignored here)."""
    value = {"name": "web", "common_name": CN, "sans": SANS, "profile": "server", "key_type": "ec_p256",
             "owner": None, "group": None, "mode": "0600", "renew_fraction": 0.333, "renew_days": None,
             "new_key_on_renew": True, "central_key": False, "validity_days": 90}
    value.update(extra)
    return value


def publication(pki, crl=None):
    crl = crl or crl_pem(make_crl(pki.root), make_crl(pki.issuing))
    return pki.trust_bundle_pem.decode(), crl.decode()


@pytest.fixture
def converged(tmp_path, pki):
    """A host whose identity, trust bundle, CRLs and NGINX record are all current."""
    etc = str(tmp_path / "etc")
    request = request_identity({"dir": etc, "name": "web", "common_name": CN, "sans": SANS, "profile": "server"})
    csr = x509.load_pem_x509_csr(request["csr"].encode())
    leaf = pki.issuing.issue(CN, key=_PublicOnly(csr.public_key()), sans=SANS, eku=["serverAuth"])
    bundle, crls = publication(pki)
    install_identity({"dir": etc, "name": "web", "certificate": leaf.cert_pem.decode(),
                      "chain": leaf.chain_pem.decode(), "trust_bundle_content": bundle, "crl_content": crls})
    state = str(tmp_path / "state" / "nginx.json")
    loaded = [os.path.join(etc, "certs", "web.chain.pem"), os.path.join(etc, "private", "web.key"),
              os.path.join(etc, "trust-bundle.pem"), os.path.join(etc, "crl.pem")]
    record_loaded(fingerprints(loaded), state)
    return {"dir": etc, "identities": [entry()], "trusted_issuers": pki.issuing.cert_pem.decode(),
            "trust_bundle_content": bundle, "crl_content": crls, "loaded_state_files": {"nginx": state},
            "_tree": str(tmp_path)}


def params_of(converged, **changes):
    params = dict((key, value) for key, value in converged.items() if not key.startswith("_"))
    params.update(changes)
    return params


def tree_digest(top):
    digest = hashlib.sha256()
    for root, dirs, names in sorted(os.walk(top)):
        dirs.sort()
        for name in sorted(names):
            path = os.path.join(root, name)
            stat = os.lstat(path)
            digest.update(("%s %o %d\n" % (os.path.relpath(path, top), stat.st_mode, stat.st_mtime_ns)).encode())
            with open(path, "rb") as handle:
                digest.update(handle.read())
    return digest.hexdigest()


def test_a_converged_host_has_nothing_due(converged):
    before = tree_digest(converged["_tree"])
    answer = host_status(params_of(converged))
    assert answer["due"] is False and answer["reasons"] == [] and answer["changed"] is False
    assert [(item["name"], item["needs_issue"], item["reason"]) for item in answer["identities"]] == \
        [("web", False, "valid")]
    assert answer["trust"] == {"trust_bundle": False, "crl": False, "attributes": False}
    assert answer["reloads"] == {"nginx": {"record_found": True, "pending_paths": [], "owed": False}}
    assert tree_digest(converged["_tree"]) == before


def test_an_identity_in_its_renewal_window_is_due_and_nothing_is_written(converged):
    before = tree_digest(converged["_tree"])
    answer = host_status(params_of(converged, identities=[entry(renew_days=3650, renew_fraction=None)]))
    assert answer["due"] is True
    assert answer["identities"][0]["reason"] == "renewal_window"
    assert len(answer["reasons"]) == 1 and answer["reasons"][0].startswith("identity web: renewal_window")
    # The csr module in a real run would stage a key and a CSR; the check writes neither.
    assert tree_digest(converged["_tree"]) == before


def test_a_missing_identity_is_due_and_no_key_is_made(converged, tmp_path):
    answer = host_status(params_of(converged, identities=[entry(), entry(name="api", common_name="api.example.net",
                                                                         sans=["DNS:api.example.net"])]))
    assert [(item["name"], item["reason"]) for item in answer["identities"]] == [("web", "valid"), ("api", "missing")]
    assert answer["reasons"] == ["identity api: missing" + (" (%s)" % answer["identities"][1]["detail"]
                                                            if answer["identities"][1]["detail"] else "")]
    assert not os.path.exists(os.path.join(converged["dir"], "private", "api.key"))


def test_a_leaf_from_another_ca_is_due_after_a_ca_rotation(converged, pki):
    answer = host_status(params_of(converged, trusted_issuers=pki.foreign_issuing.cert_pem.decode()))
    assert answer["due"] and answer["identities"][0]["reason"] == "issuer_untrusted"


def test_forced_identities_are_due(converged):
    answer = host_status(params_of(converged, force=True))
    assert answer["due"] and answer["identities"][0]["reason"] == "forced"


def test_key_file_attributes_the_csr_module_would_fix_are_due(converged):
    os.chmod(os.path.join(converged["dir"], "private", "web.key"), 0o640)
    answer = host_status(params_of(converged))
    assert answer["due"] and answer["identities"][0]["attributes_differ"] is True
    assert answer["reasons"] == ["identity web: key file owner, group or mode differs"]
    assert answer["identities"][0]["needs_issue"] is False


def test_a_new_crl_publication_is_due(converged, pki):
    bundle, crls = publication(pki, crl_pem(make_crl(pki.root, crl_number=2), make_crl(pki.issuing, crl_number=2)))
    answer = host_status(params_of(converged, crl_content=crls))
    assert answer["due"] and answer["trust"] == {"trust_bundle": False, "crl": True, "attributes": False}
    assert answer["reasons"] == ["CRLs differ from what the CA publishes"]


def test_a_new_trust_bundle_is_due(converged, pki):
    bundle = converged["trust_bundle_content"] + pki.foreign_root.cert_pem.decode()
    answer = host_status(params_of(converged, trust_bundle_content=bundle))
    assert answer["due"] and answer["trust"]["trust_bundle"] is True and answer["trust"]["crl"] is False
    assert "trust bundle differs from what the CA publishes" in answer["reasons"]


def test_a_crl_not_signed_by_the_bundle_fails_naming_it(converged, pki):
    with pytest.raises(MtlsError, match="trust bundle and CRLs in .*not signed by a CA of the trust bundle"):
        host_status(params_of(converged, crl_content=crl_pem(make_crl(pki.foreign_root)).decode()))


def test_without_a_publication_trust_is_not_checked(converged):
    answer = host_status(params_of(converged, trust_bundle_content=None, crl_content=None))
    assert answer["trust"] is None and answer["due"] is False


def test_a_reload_still_owed_is_due(converged):
    chain = os.path.join(converged["dir"], "certs", "web.chain.pem")
    with open(chain, "ab") as handle:
        handle.write(b"\n")
    answer = host_status(params_of(converged))
    assert answer["reloads"]["nginx"] == {"record_found": True, "pending_paths": [chain], "owed": True}
    assert answer["reasons"] == ["nginx: reload owed for %s" % chain]


def test_a_service_without_a_record_owes_a_reload(converged, tmp_path):
    state = str(tmp_path / "state" / "mosquitto.json")
    records = dict(converged["loaded_state_files"], mosquitto=state)
    answer = host_status(params_of(converged, loaded_state_files=records))
    assert answer["reloads"]["mosquitto"] == {"record_found": False, "pending_paths": [], "owed": True}
    assert answer["reloads"]["nginx"]["owed"] is False
    assert answer["reasons"] == ["mosquitto: no record of the files it loaded (%s)" % state]


def test_everything_due_at_once_lists_every_reason(converged, pki):
    bundle, crls = publication(pki, crl_pem(make_crl(pki.root, crl_number=3), make_crl(pki.issuing, crl_number=3)))
    os.unlink(converged["loaded_state_files"]["nginx"])
    answer = host_status(params_of(converged, crl_content=crls, force=True))
    assert len(answer["reasons"]) == 3 and answer["due"]


def test_a_broken_key_fails_naming_the_identity(converged):
    with open(os.path.join(converged["dir"], "private", "web.key"), "wb") as handle:
        handle.write(b"not a key\n")
    with pytest.raises(MtlsError, match="^identity web: "):
        host_status(params_of(converged))


@pytest.mark.parametrize("bad, message", [
    ({"renew_days": "soon"}, "identity web: renew_days must be a whole number of days, got 'soon'"),
    ({"new_key_on_renew": "maybe"}, "identity web: new_key_on_renew must be a boolean"),
    ({"sans": "DNS:web.example.net"}, 'mtls_identities[0] ("web"): sans must be a list'),
])
def test_bad_entries_are_refused_naming_identity_and_value(converged, bad, message):
    with pytest.raises(MtlsError, match="^" + re.escape(message)):
        host_status(params_of(converged, identities=[entry(**bad)]))


def test_duplicate_and_nameless_entries_are_refused_as_the_role_refuses_them(converged):
    # The same checks and words as the identity role's (role_inputs.identity_problems).
    with pytest.raises(MtlsError, match='name "web" is used by 2 entries; names must be unique'):
        host_status(params_of(converged, identities=[entry(), entry()]))
    with pytest.raises(MtlsError, match=r"mtls_identities\[0\] \(null\): name must be"):
        host_status(params_of(converged, identities=[{"common_name": CN, "profile": "server"}]))
    with pytest.raises(MtlsError, match=r"mtls_identities\[0\] must be a dict"):
        host_status(params_of(converged, identities=["web"]))


def test_default_sans_left_to_the_host_are_made_from_its_facts(converged):
    """A marker from identity_default_sans(on_host=True) is expanded with the facts read on the host:
    the same SANs give the same answer as the fully resolved entry; other facts make it due."""
    marker = identity_plan.default_sans("web.example.net", on_host=True)
    assert len(marker) == 1 and marker[0].startswith(identity_plan.DEFAULT_SANS_ON_HOST)
    calls = []

    def facts(fqdn):
        def read():
            calls.append(fqdn)
            return {"fqdn": fqdn, "hostname": "", "default_ipv4": ""}
        return read

    params = params_of(converged, identities=[entry(sans=marker)])
    assert host_status(params, read_facts=facts("web.example.net"))["due"] is False
    answer = host_status(params, read_facts=facts("db.example.net"))
    assert answer["due"] is True and "sans_changed" in answer["reasons"][0]
    assert calls == ["web.example.net", "db.example.net"]
    # Facts are read only when an identity needs them.
    host_status(params_of(converged), read_facts=facts("never"))
    assert calls == ["web.example.net", "db.example.net"]
    with pytest.raises(MtlsError, match="no way to read its facts"):
        host_status(params)


def test_string_booleans_and_numbers_from_role_data_are_accepted(converged):
    answer = host_status(params_of(converged, identities=[entry(new_key_on_renew="true", renew_fraction="0.333")]))
    assert answer["due"] is False


def test_a_centrally_keyed_identity_ignores_key_file_settings(converged):
    answer = host_status(params_of(converged, identities=[entry(central_key=True, mode="0640", owner="nobody")]))
    assert answer["due"] is False


def test_the_resolved_identities_and_the_manifest_are_returned(converged):
    """identity_list is what the identity role acts on: the declared entries, then the recorded ones,
    default SANs made from the facts read on the host."""
    recorded = entry(name="myapp", common_name="myapp", sans=[], profile="client")
    write_manifest(converged["dir"], merged(empty_manifest(), [recorded], [{"name": "app", "identities": ["myapp"]}]))
    marker = identity_plan.default_sans("web.example.net", on_host=True)
    answer = host_status(params_of(converged, identities=[entry(sans=marker)]),
                         read_facts=lambda: {"fqdn": "web.example.net", "hostname": "", "default_ipv4": ""})
    assert [item["name"] for item in answer["identity_list"]] == ["web", "myapp"]
    assert answer["identity_list"][0]["sans"] == SANS
    assert answer["manifest"]["consumers"] == [{"name": "app", "identities": ["myapp"]}]
    assert answer["manifest"]["identities"][0]["name"] == "myapp"


def test_with_record_manifest_a_manifest_that_would_change_is_due(converged, tmp_path):
    """The identity role's own check: recording the identities and the declared consumers must leave the
    manifest as it is, or the host is due; without record_manifest (fleet.mtls.rotate) it is not asked."""
    records = str(tmp_path / "records")
    consumers = [{"name": "app", "identities": ["web"], "apply": {"default": {"service": "app"}}}]
    drift = "manifest: the identities or consumers it records differ from the declaration"
    answer = host_status(params_of(converged, record_manifest=True, consumers=consumers,
                                   consumer_records_dir=records))
    assert answer["due"] is True and answer["reasons"] == [drift] and answer["manifest_outdated"] is True
    unasked = host_status(params_of(converged, consumers=consumers, consumer_records_dir=records))
    assert unasked["due"] is False and unasked["manifest_outdated"] is False

    write_manifest(converged["dir"], merged(empty_manifest(), [entry()], consumers))
    # Recorded now: the manifest is current, and the consumer, which never loaded the files, owes them.
    answer = host_status(params_of(converged, record_manifest=True, consumers=consumers,
                                   consumer_records_dir=records))
    assert answer["reasons"] == ["consumer app: no record of the files it loaded (%s)"
                                 % os.path.join(records, "consumer-app.json")]
    assert answer["manifest_outdated"] is False

    # A changed setting of a declared identity is recorded again.
    answer = host_status(params_of(converged, record_manifest=True, consumers=consumers, consumer_records_dir=records,
                                   identities=[entry(renew_days=10, renew_fraction=None)]))
    assert drift in answer["reasons"]


def test_a_host_without_identities_has_no_manifest_to_record(converged):
    answer = host_status(params_of(converged, identities=[], record_manifest=True,
                                   consumers=[{"name": "app", "identities": []}]))
    assert answer["due"] is False and answer["reasons"] == []
