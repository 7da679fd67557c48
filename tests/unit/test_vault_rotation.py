"""vault_rotation.derive: the CA rotation phase read from a PKI mount's issuers alone (no engine)."""

from __future__ import annotations

import pytest

from ansible_collections.fleet.mtls.plugins.module_utils import vault_rotation as vr
from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError

FULL = set(vr.FULL_USAGE)
PREPARED = set(vr.NO_ISSUING_USAGE)


def issuer(name, parent=None, usage=None, revoked=False, default=False, key=True, subject=None):
    subject = subject or "CN=%s" % name
    ski = "ski:%s" % name
    return {"id": "id-%s" % name, "name": name, "subject": subject,
            "issuer": parent["subject"] if parent else subject, "ski": ski,
            "aki": parent["ski"] if parent else ski, "self_signed": parent is None,
            "key_id": "key-%s" % name if key else "", "usage": set(FULL if usage is None else usage),
            "revoked": revoked, "default": default}


def prepared():
    root = issuer("root-1")
    return root, issuer("issuing-1", root, default=True)


def test_a_prepared_mount_has_no_rotation():
    root, issuing = prepared()
    state = vr.derive([root, issuing])
    assert state.rotation is None and state.remaining_phases() == [] and state.highest == 1
    assert state.summary() == "no CA rotation under way: issuing-1 signs (generation 1)"
    assert state.old_generation_leaves([{"host": "h", "aki": "ski:issuing-1"}]) == []


def test_issuing_trust_then_reissue_then_retire():
    root, old = prepared()
    new = issuer("issuing-2", root, usage=PREPARED)
    state = vr.derive([root, old, new])
    assert state.rotation == {"scope": "issuing", "from": 1, "to": 2, "phase": "trust", "phase_completed": False}
    assert state.remaining_phases() == ["trust", "reissue", "retire"]
    assert state.old == [old] and state.new_issuing is new and state.new_root is None

    old["default"], new["default"] = False, True
    old["usage"], new["usage"] = set(PREPARED), set(FULL)
    state = vr.derive([root, old, new])
    assert state.rotation["phase"] == "reissue" and state.remaining_phases() == ["reissue", "retire"]
    assert (state.source, state.target, state.scope) == (1, 2, "issuing")
    leaves = [{"host": "a", "identity": "x", "aki": "SKI:ISSUING-1"}, {"host": "b", "aki": "ski:issuing-2"},
              {"host": "c", "issuer": "CN=issuing-1"}, {"host": "d", "aki": "ski:issuing-1", "exists": False}]
    assert [leaf["host"] for leaf in state.old_generation_leaves(leaves)] == ["a", "c"]

    old["revoked"] = True
    assert vr.derive([root, old, new]).rotation is None


def test_root_rotation_is_recognised_in_every_phase_and_half_way():
    root, old = prepared()
    root2 = issuer("root-2")
    half = vr.derive([root, old, root2])
    assert half.rotation["scope"] == "root" and half.rotation["phase"] == "trust"
    assert half.new_issuing is None and half.new_root is root2
    new = issuer("issuing-2", root2, usage=PREPARED)
    state = vr.derive([root, old, root2, new])
    assert state.rotation["phase"] == "trust" and state.old == [old, root]
    old["default"], new["default"] = False, True
    state = vr.derive([root, old, root2, new])
    assert state.rotation == {"scope": "root", "from": 1, "to": 2, "phase": "reissue", "phase_completed": False}
    assert set(state.old_identifiers()[0]) == {"ski:issuing-1", "ski:root-1"}
    old["revoked"] = True  # retire interrupted between its two revocations
    assert vr.derive([root, old, root2, new]).rotation["phase"] == "retire"
    root["revoked"] = True
    assert vr.derive([root, old, root2, new]).rotation is None


def test_a_third_generation_after_an_issuing_then_a_root_rotation():
    root, one = prepared()
    one["default"], one["revoked"] = False, True
    two = issuer("issuing-2", root, default=True)
    root3 = issuer("root-3")
    three = issuer("issuing-3", root3, usage=PREPARED)
    state = vr.derive([root, one, two, root3, three])
    assert state.rotation == {"scope": "root", "from": 2, "to": 3, "phase": "trust", "phase_completed": False}
    two["default"], three["default"] = False, True
    state = vr.derive([root, one, two, root3, three])
    assert (state.source, state.phase, [e["name"] for e in state.old]) == (2, "reissue", ["issuing-2", "root-1"])


def test_an_imported_mount_has_an_unnamed_key_less_root():
    root = issuer("", key=False, subject="CN=local root")
    root["id"] = "id-local-root"
    issuing = issuer("issuing-1", root, default=True)
    state = vr.derive([root, issuing])
    assert state.rotation is None and state.chain[-1] is root and not root["key_id"]


@pytest.mark.parametrize("change, message", [
    (lambda r, i: i.update(default=False), "no default issuer"),
    (lambda r, i: i.update(name="fleet"), "named 'fleet', not issuing-<N>"),
    (lambda r, i: i.update(revoked=True), "default issuer issuing-1 is revoked"),
])
def test_a_mount_the_rotation_cannot_read_is_refused(change, message):
    root, issuing = prepared()
    change(root, issuing)
    with pytest.raises(MtlsError, match=message):
        vr.derive([root, issuing])


def test_stray_issuers_are_refused_naming_them():
    root, old = prepared()
    stray = issuer("other")
    with pytest.raises(MtlsError, match="other are neither revoked nor above the default issuer"):
        vr.derive([root, old, stray])
    foreign = issuer("issuing-2", issuer("elsewhere"), usage=PREPARED)
    with pytest.raises(MtlsError, match="issuing-2 is signed by no issuer of the mount"):
        vr.derive([root, old, foreign])


def test_generation_names():
    assert vr.generation_of("issuing-12") == ("issuing", 12)
    assert vr.generation_of("root-1") == ("root", 1)
    assert vr.generation_of("issuing-0") == (None, None)
    assert vr.generation_of("") == (None, None)
