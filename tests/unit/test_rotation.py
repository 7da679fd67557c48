# -*- coding: utf-8 -*-
"""CA generations and the three-phase rotation: every transition, every refusal, resume after an
interruption in each phase, and the state file left byte-identical when a transition fails."""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import stat
import threading
import time

import pytest

from ansible_collections.fleet.mtls.plugins.module_utils import fsutil
from ansible_collections.fleet.mtls.plugins.module_utils import rotation as rot
from ansible_collections.fleet.mtls.plugins.module_utils.ca_store import create_intermediate, create_root
from ansible_collections.fleet.mtls.plugins.module_utils.compat import UTC
from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError

PASS = "rotation test passphrase"
T0 = datetime.datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC)


def at(minutes):
    return T0 + datetime.timedelta(minutes=minutes)


def states(state):
    return dict((g["id"], g["state"]) for g in state.generations)


def run_phase(state, phase, minutes):
    """Record the phase's work on the fleet as done (what the playbook does after each phase)."""
    return rot.complete(state, phase, now=at(minutes))


def full_rotation(state, scope, start=0):
    state = rot.begin(state, scope, now=at(start))
    state = run_phase(state, "trust", start + 1)
    state = rot.advance(state, now=at(start + 2))
    state = run_phase(state, "reissue", start + 3)
    state = rot.advance(state, blocking_leaves=[], now=at(start + 4))
    return run_phase(state, "retire", start + 5)


def digest(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


# -- transitions -----------------------------------------------------------------------------------

def test_initial_state_has_generation_one_active():
    state = rot.RotationState.initial()
    assert state.data["active"] == 1
    assert state.active_generation() == {"id": 1, "root": "root-1", "issuing": "issuing-1", "state": "active"}
    assert state.rotation is None and state.next_phase() is None
    assert state.trusted_stores() == ["root-1", "issuing-1"]


def test_root_rotation_walks_every_phase():
    state = rot.begin(rot.RotationState.initial(), "root", now=at(0))
    assert state.generation(2) == {"id": 2, "root": "root-2", "issuing": "issuing-2", "state": "incoming"}
    assert state.rotation == {"scope": "root", "from": 1, "to": 2, "phase": "trust",
                              "started": "2026-11-26T10:00:00Z", "phase_started": "2026-11-26T10:00:00Z",
                              "phase_completed": None}
    assert state.data["active"] == 1, "an incoming generation does not sign yet"
    assert state.trusted_stores() == ["root-1", "issuing-1", "root-2", "issuing-2"]
    assert state.next_phase() == "trust"

    state = run_phase(state, "trust", 1)
    assert state.rotation["phase_completed"] == "2026-11-26T10:01:00Z"
    assert state.next_phase() == "reissue"

    state = rot.advance(state, now=at(2))
    assert states(state) == {1: "retiring", 2: "active"}
    assert state.data["active"] == 2 and state.active_generation()["issuing"] == "issuing-2"
    assert state.rotation["phase"] == "reissue" and state.rotation["phase_completed"] is None
    assert state.rotation["phase_started"] == "2026-11-26T10:02:00Z"
    assert state.trusted_stores() == ["root-1", "issuing-1", "root-2", "issuing-2"], "old stays trusted"

    state = run_phase(state, "reissue", 3)
    state = rot.advance(state, blocking_leaves=[], now=at(4))
    assert states(state) == {1: "retired", 2: "active"}
    assert state.rotation["phase"] == "retire"
    assert state.trusted_stores() == ["root-2", "issuing-2"]

    state = run_phase(state, "retire", 5)
    assert state.rotation is None
    assert state.data["history"] == [{"scope": "root", "from": 1, "to": 2, "started": "2026-11-26T10:00:00Z",
                                      "finished": "2026-11-26T10:05:00Z"}]
    assert state.summary() == "generation 2 active, no rotation under way"


def test_issuing_rotation_keeps_the_root_and_lists_it_once():
    state = rot.begin(rot.RotationState.initial(), "issuing", now=at(0))
    assert state.generation(2) == {"id": 2, "root": "root-1", "issuing": "issuing-2", "state": "incoming"}
    assert state.trusted_stores() == ["root-1", "issuing-1", "issuing-2"]
    state = full_rotation(rot.RotationState.initial(), "issuing")
    assert states(state) == {1: "retired", 2: "active"}
    assert state.trusted_stores() == ["root-1", "issuing-2"], "the shared root stays trusted"


def test_successive_rotations_number_new_stores():
    state = full_rotation(rot.RotationState.initial(), "issuing")
    state = full_rotation(state, "root", start=10)
    assert state.generation(3) == {"id": 3, "root": "root-2", "issuing": "issuing-3", "state": "active"}
    state = rot.begin(state, "issuing", now=at(20))
    assert state.generation(4) == {"id": 4, "root": "root-2", "issuing": "issuing-4", "state": "incoming"}
    assert len(state.data["history"]) == 2


def test_begin_again_with_the_same_scope_resumes():
    state = rot.begin(rot.RotationState.initial(), "root", now=at(0))
    assert rot.begin(state, "root", now=at(9)) == state
    state = run_phase(state, "trust", 1)
    state = rot.advance(state, now=at(2))
    assert rot.begin(state, "root", now=at(9)) == state


def test_complete_is_idempotent():
    state = run_phase(rot.begin(rot.RotationState.initial(), "root", now=at(0)), "trust", 1)
    assert rot.complete(state, "trust", now=at(7)) == state


@pytest.mark.parametrize("setup, action, message", [
    (lambda s: s, rot.advance, "no CA rotation is under way"),
    (lambda s: s, lambda s: rot.complete(s, "trust"), "no CA rotation is under way"),
    (lambda s: rot.begin(s, "root"), lambda s: rot.begin(s, "issuing"),
     "a root rotation (generation 1 to 2) is under way in phase trust"),
    (lambda s: rot.begin(s, "root"), rot.advance, "phase trust of the root rotation has not completed"),
    (lambda s: rot.begin(s, "root"), lambda s: rot.complete(s, "reissue"),
     "cannot complete phase reissue: the rotation is in phase trust"),
    (lambda s: rot.begin(s, "root"), lambda s: rot.complete(s, "bogus"), "phase 'bogus' is not one of"),
    (lambda s: s, lambda s: rot.begin(s, "everything"), "scope 'everything' is not one of issuing, root"),
    (lambda s: rot.advance(rot.complete(rot.begin(s, "root"), "trust")), rot.advance,
     "phase reissue of the root rotation has not completed"),
])
def test_illegal_transitions_are_refused(setup, action, message):
    state = setup(rot.RotationState.initial())
    before = state.to_dict()
    with pytest.raises(MtlsError, match=re.escape(message)):
        action(state)
    assert state.to_dict() == before, "a refused transition does not touch its input"


def test_retire_is_refused_while_leaves_chain_to_the_old_generation():
    state = rot.begin(rot.RotationState.initial(), "root", now=at(0))
    state = rot.advance(run_phase(state, "trust", 1), now=at(2))
    state = run_phase(state, "reissue", 3)
    blocking = [{"host": "web2", "identity": "web2", "serial": "1a"},
                {"host": "mqtt1", "identity": "mqtt1", "serial": "2b"},
                {"host": "web2", "identity": "api", "serial": "3c"}]
    with pytest.raises(MtlsError) as refused:
        rot.advance(state, blocking_leaves=blocking, now=at(4))
    assert str(refused.value).startswith(
        "refusing to retire CA generation 1: 3 live certificate(s) still chain to it, on mqtt1, web2.")
    assert refused.value.details["blocking_hosts"] == ["mqtt1", "web2"]
    assert refused.value.details["blocking_leaves"] == blocking
    assert rot.advance(state, blocking_leaves=[], now=at(4)).phase == "retire"


def test_no_phase_after_retire():
    state = rot.begin(rot.RotationState.initial(), "root", now=at(0))
    state = rot.advance(run_phase(state, "trust", 1))
    state = rot.advance(run_phase(state, "reissue", 2))
    with pytest.raises(MtlsError, match="phase retire of the root rotation has not completed"):
        rot.advance(state)


# -- which leaves still chain to a generation ---------------------------------------------------------

def test_leaves_on_generation_matches_by_key_id_then_issuer():
    leaves = [
        {"host": "a", "identity": "a", "aki": "AA:BB", "issuer": "CN=Other", "serial": "1"},
        {"host": "b", "identity": "b", "aki": "cc:dd", "issuer": "CN=Old Issuing", "serial": "2"},
        {"host": "c", "identity": "c", "aki": None, "issuer": "CN=Old Issuing", "serial": "3"},
        {"host": "d", "identity": "d", "exists": False},
    ]
    blocking = rot.leaves_on_generation(leaves, ["aa:bb"], ["CN=Old Issuing"])
    assert blocking == [{"host": "a", "identity": "a", "serial": "1", "issuer": "CN=Other"},
                        {"host": "c", "identity": "c", "serial": "3", "issuer": "CN=Old Issuing"}]


def test_leaves_without_a_host_are_an_error():
    with pytest.raises(MtlsError, match="every leaf must be an object with 'host'"):
        rot.leaves_on_generation([{"aki": "aa"}], ["aa"])


# -- validation of the recorded state ----------------------------------------------------------------

def _base():
    return rot.RotationState.initial().to_dict()


def _mutate(change):
    data = _base()
    change(data)
    return data


def _rotating(phase="trust"):
    state = rot.begin(rot.RotationState.initial(), "root", now=at(0))
    if phase != "trust":
        state = rot.advance(run_phase(state, "trust", 1), now=at(2))
    return state.to_dict()


@pytest.mark.parametrize("data, message", [
    ([], "expected a JSON object, got list"),
    (_mutate(lambda d: d.update(format=2)), "format 2; this version reads format 1"),
    (_mutate(lambda d: d.update(extra=1)), "unknown keys extra"),
    (_mutate(lambda d: d.update(generations=[])), "'generations' must be a non-empty list"),
    (_mutate(lambda d: d["generations"][0].pop("root")), "generation #1 lacks root"),
    (_mutate(lambda d: d["generations"][0].update(id=0)), "generation #1 has id 0"),
    (_mutate(lambda d: d["generations"][0].update(id=True)), "generation #1 has id True"),
    (_mutate(lambda d: d["generations"][0].update(root="../etc")), "root store '../etc' is not named root-<N>"),
    (_mutate(lambda d: d["generations"][0].update(issuing="issuing-x")), "is not named issuing-<N>"),
    (_mutate(lambda d: d["generations"][0].update(state="asleep")), "generation 1 has state 'asleep'"),
    (_mutate(lambda d: d["generations"].append(dict(d["generations"][0]))), "generation id 1 appears twice"),
    (_mutate(lambda d: d["generations"].append({"id": 2, "root": "root-1", "issuing": "issuing-1",
                                                "state": "retired"})), "issuing-1 belongs to two generations"),
    (_mutate(lambda d: d["generations"][0].update(state="retired")), "exactly one generation must be active, found 0"),
    (_mutate(lambda d: d.update(active=2)), "'active' is 2 but generation 1 is the active one"),
    (_mutate(lambda d: d.update(phase="trust")), "'phase' belongs inside 'rotation'"),
    (_mutate(lambda d: d["generations"].append({"id": 2, "root": "root-2", "issuing": "issuing-2",
                                                "state": "incoming"})), "generation 2 is incoming but no rotation"),
    (_mutate(lambda d: d.update(rotation="soon")), "'rotation' must be an object or null"),
    (_mutate(lambda d: d.update(history={})), "'history' must be a list of objects"),
])
def test_invalid_state_is_refused_with_the_problem_named(data, message):
    with pytest.raises(MtlsError, match=message):
        rot.RotationState(data, "/ca/rotation.json")


@pytest.mark.parametrize("change, message", [
    (lambda r: r.pop("phase"), "rotation lacks phase"),
    (lambda r: r.update(scope="leaf"), "rotation scope 'leaf'"),
    (lambda r: r.update(phase="party"), "rotation phase 'party'"),
    (lambda r: r.update(to=9), "rotation 'to' names generation 9, which does not exist"),
    (lambda r: r.update(to=1), "rotation goes from generation 1 to itself"),
    (lambda r: r.update(started="yesterday"), "rotation started must be a timestamp"),
    (lambda r: r.update(phase="reissue"), "in phase reissue generation 1 must be retiring and generation 2 active"),
    (lambda r: r.update(scope="issuing"), "a rotation with scope issuing keeps the root store"),
])
def test_invalid_rotation_record_is_refused(change, message):
    data = _rotating()
    change(data["rotation"])
    with pytest.raises(MtlsError, match=message):
        rot.RotationState(data)


def test_state_written_by_an_older_ca_role_is_read():
    legacy = {"active": 1, "generations": [{"id": 1, "root": "root-1", "issuing": "issuing-1", "state": "active"}],
              "phase": None}
    state = rot.RotationState(legacy)
    assert state == rot.RotationState.initial()


# -- the state file: atomic, locked, untouched on failure, resumable -----------------------------------

@pytest.fixture
def ca_dir(tmp_path):
    path = tmp_path / "ca"
    path.mkdir(mode=0o700)
    return str(path)


def test_missing_file_reads_as_initial_and_first_transition_writes_it(ca_dir):
    state_file = rot.StateFile(ca_dir)
    assert not state_file.exists() and state_file.read() == rot.RotationState.initial()
    before, after, changed = state_file.transition(lambda s: rot.begin(s, "root", now=at(0)))
    assert changed and before == rot.RotationState.initial() and after.phase == "trust"
    assert stat.S_IMODE(os.stat(state_file.path).st_mode) == 0o600
    with open(state_file.path) as handle:
        assert json.load(handle) == after.to_dict()
    assert sorted(os.listdir(ca_dir)) == ["rotation.json", "rotation.lock"], "no temporary file is left"


def test_unchanged_transition_does_not_rewrite(ca_dir):
    state_file = rot.StateFile(ca_dir)
    state_file.transition(lambda s: rot.begin(s, "root", now=at(0)))
    mtime = os.stat(state_file.path).st_mtime_ns
    time.sleep(0.01)
    dummy, dummy2, changed = state_file.transition(lambda s: rot.begin(s, "root", now=at(5)))
    assert not changed and os.stat(state_file.path).st_mtime_ns == mtime


def test_check_mode_writes_nothing(ca_dir):
    state_file = rot.StateFile(ca_dir)
    dummy, after, changed = state_file.transition(lambda s: rot.begin(s, "issuing"), check_mode=True)
    assert changed and after.phase == "trust"
    assert os.listdir(ca_dir) == []


def test_legacy_file_is_rewritten_in_the_current_layout_on_the_first_transition(ca_dir):
    state_file = rot.StateFile(ca_dir)
    with open(state_file.path, "w") as handle:
        json.dump({"active": 1, "phase": None,
                   "generations": [{"id": 1, "root": "root-1", "issuing": "issuing-1", "state": "active"}]}, handle)
    dummy, after, changed = state_file.transition(lambda s: s)
    assert changed
    with open(state_file.path) as handle:
        assert json.load(handle) == rot.RotationState.initial().to_dict()


@pytest.mark.parametrize("setup, action", [
    (lambda s: rot.begin(s, "root", now=at(0)), lambda s: rot.begin(s, "issuing")),
    (lambda s: rot.begin(s, "root", now=at(0)), rot.advance),
    (lambda s: rot.advance(rot.complete(rot.begin(s, "root", now=at(0)), "trust", now=at(1)), now=at(2)),
     lambda s: rot.complete(s, "retire")),
    (lambda s: rot.complete(rot.advance(rot.complete(rot.begin(s, "root", now=at(0)), "trust", now=at(1)),
                                        now=at(2)), "reissue", now=at(3)),
     lambda s: rot.advance(s, blocking_leaves=[{"host": "web1"}])),
])
def test_refused_transition_leaves_the_file_byte_identical(ca_dir, setup, action):
    state_file = rot.StateFile(ca_dir)
    state_file.transition(setup)
    before = digest(state_file.path)
    with pytest.raises(MtlsError):
        state_file.transition(action)
    assert digest(state_file.path) == before
    assert sorted(os.listdir(ca_dir)) == ["rotation.json", "rotation.lock"]


def test_failed_write_leaves_the_file_as_it_was(ca_dir, monkeypatch):
    state_file = rot.StateFile(ca_dir)
    state_file.transition(lambda s: rot.begin(s, "root", now=at(0)))
    before = digest(state_file.path)

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fsutil.os, "fsync", full_disk)
    with pytest.raises(MtlsError, match="No space left on device"):
        state_file.transition(lambda s: rot.complete(s, "trust", now=at(1)))
    assert digest(state_file.path) == before
    assert sorted(os.listdir(ca_dir)) == ["rotation.json", "rotation.lock"]


def test_corrupt_file_is_reported_and_kept(ca_dir):
    state_file = rot.StateFile(ca_dir)
    with open(state_file.path, "w") as handle:
        handle.write('{"active": 1,')
    with pytest.raises(MtlsError, match="rotation.json is not a valid CA generation state: not JSON"):
        state_file.transition(lambda s: rot.begin(s, "root"))
    with open(state_file.path) as handle:
        assert handle.read() == '{"active": 1,'


def test_missing_ca_directory_is_named(tmp_path):
    with pytest.raises(MtlsError, match="CA directory .*/nowhere does not exist"):
        rot.StateFile(str(tmp_path / "nowhere")).transition(lambda s: s)


@pytest.mark.parametrize("interrupted_in", rot.PHASES)
def test_resume_after_an_interruption_in_each_phase(ca_dir, interrupted_in):
    """A run killed while a phase's work was under way: the phase is recorded as started, not
    completed. A new run (new process: the state comes from the file) re-runs that phase, then
    carries on to the end, and reaches the same end state as an uninterrupted rotation."""
    state_file = rot.StateFile(ca_dir)
    state_file.transition(lambda s: rot.begin(s, "root", now=at(0)))
    for phase in rot.PHASES:
        if phase == interrupted_in:
            break
        state_file.transition(lambda s, p=phase: rot.complete(s, p, now=at(1)))
        state_file.transition(lambda s: rot.advance(s, now=at(2)))

    resumed = rot.StateFile(ca_dir).read()
    assert resumed.phase == interrupted_in and not resumed.phase_completed
    assert resumed.next_phase() == interrupted_in, "the interrupted phase runs again"
    assert rot.begin(resumed, "root") == resumed, "begin with the same scope does not restart"

    phase = resumed.next_phase()
    while phase is not None:
        state_file.transition(lambda s, p=phase: rot.complete(s, p, now=at(3)))
        state = state_file.read()
        if state.next_phase() is not None:
            state_file.transition(lambda s: rot.advance(s, now=at(4)))
        phase = state_file.read().next_phase()
    final = state_file.read()
    assert final.rotation is None and states(final) == {1: "retired", 2: "active"}
    assert len(final.data["history"]) == 1


def test_transitions_wait_for_the_lock(ca_dir):
    state_file = rot.StateFile(ca_dir)
    finished = threading.Event()

    def start():
        state_file.transition(lambda s: rot.begin(s, "root", now=at(0)))
        finished.set()

    with fsutil.file_lock(state_file.lock_path):
        worker = threading.Thread(target=start)
        worker.start()
        time.sleep(0.3)
        assert not finished.is_set(), "a transition must not run while another holds the lock"
    worker.join(10)
    assert finished.is_set() and state_file.read().phase == "trust"


# -- trust bundle and generation identifiers from real CA stores ----------------------------------------

def test_trust_bundle_and_identifiers_follow_the_generations(ca_dir):
    create_root(os.path.join(ca_dir, "root-1"), PASS, common_name="Rotation Root 1")
    create_intermediate(os.path.join(ca_dir, "issuing-1"), PASS, os.path.join(ca_dir, "root-1"), PASS,
                        common_name="Rotation Issuing 1")
    state_file = rot.StateFile(ca_dir)
    dummy, state, dummy2 = state_file.transition(lambda s: rot.begin(s, "root", now=at(0)))
    bundle, missing = state_file.trust_bundle(state)
    assert missing == ["root-2", "issuing-2"]
    assert bundle.count("BEGIN CERTIFICATE") == 2

    create_root(os.path.join(ca_dir, "root-2"), PASS, common_name="Rotation Root 2")
    create_intermediate(os.path.join(ca_dir, "issuing-2"), PASS, os.path.join(ca_dir, "root-2"), PASS,
                        common_name="Rotation Issuing 2")
    bundle, missing = state_file.trust_bundle(state)
    assert missing == []
    expected = "".join(open(os.path.join(ca_dir, name, "ca.crt")).read()
                       for name in ("root-1", "issuing-1", "root-2", "issuing-2"))
    assert bundle == expected

    key_ids, subjects = state_file.generation_identifiers(state.generation(1))
    assert subjects == ["CN=Rotation Root 1", "CN=Rotation Issuing 1"]
    assert len(key_ids) == 2 and all(len(k.split(":")) == 20 for k in key_ids)

    state = rot.complete(state, "trust")
    state = rot.complete(rot.advance(state), "reissue")
    state = rot.advance(state)
    bundle, missing = state_file.trust_bundle(state)
    assert bundle == "".join(open(os.path.join(ca_dir, name, "ca.crt")).read() for name in ("root-2", "issuing-2"))


def test_refusal_on_a_fresh_directory_creates_nothing(ca_dir):
    with pytest.raises(MtlsError, match="no CA rotation is under way"):
        rot.StateFile(ca_dir).transition(rot.advance)
    assert os.listdir(ca_dir) == [], "not even the lock file"


# -- store names, initialize and publish -------------------------------------------------------------

@pytest.mark.parametrize("name, suffix", [("root-1", ""), ("issuing-1", ""), ("root-2", " G2"),
                                          ("issuing-12", " G12")])
def test_store_name_suffix(name, suffix):
    assert rot.store_name_suffix(name) == suffix


def test_store_name_suffix_refuses_other_names():
    with pytest.raises(MtlsError, match="not named root-<N> or issuing-<N>"):
        rot.store_name_suffix("ca-1")


def test_trusted_cas_in_bundle_order_shared_root_once():
    state = rot.begin(rot.RotationState.initial(), "issuing", now=at(0))
    assert [(ca["name"], ca["kind"], ca["generation"], ca["parent"], ca["name_suffix"])
            for ca in state.trusted_cas()] == [
        ("root-1", "root", 1, None, ""), ("issuing-1", "intermediate", 1, "root-1", ""),
        ("issuing-2", "intermediate", 2, "root-1", " G2")]
    state = rot.advance(rot.complete(state, "trust", now=at(1)), now=at(2))
    state = rot.advance(rot.complete(state, "reissue", now=at(3)), blocking_leaves=[], now=at(4))
    assert [ca["name"] for ca in state.trusted_cas()] == ["root-1", "issuing-2"]
    assert [ca["name"] for ca in state.trusted_cas()] == state.trusted_stores()


def test_crl_bundle_keeps_a_place_for_a_crl_to_rebuild():
    assert rot.crl_bundle(["A\n", None, " B "]) == "A\n\nB\n"


def test_initialize_writes_generation_one_once(ca_dir):
    state_file = rot.StateFile(ca_dir)
    state, changed = state_file.initialize(check_mode=True)
    assert changed and state == rot.RotationState.initial() and not state_file.exists()
    state, changed = state_file.initialize()
    assert changed and state_file.read() == rot.RotationState.initial()
    assert stat.S_IMODE(os.stat(state_file.path).st_mode) == 0o600
    rot_state = state_file.transition(lambda s: rot.begin(s, "root", now=at(0)))[1]
    state, changed = state_file.initialize()
    assert not changed and state == rot_state, "an existing file is left as it is"


def test_publish_writes_the_bundles_atomically_and_only_when_they_differ(ca_dir):
    create_root(os.path.join(ca_dir, "root-1"), PASS, common_name="Rotation Root 1")
    create_intermediate(os.path.join(ca_dir, "issuing-1"), PASS, os.path.join(ca_dir, "root-1"), PASS,
                        common_name="Rotation Issuing 1")
    state_file = rot.StateFile(ca_dir)
    state = state_file.read()
    texts, changed, before = state_file.publish(state, ["CRL1\n", "CRL2\n"], check_mode=True)
    assert changed == ["trust-bundle.pem", "crl-bundle.pem", "signing-ca.pem"]
    assert before == {"trust-bundle.pem": None, "crl-bundle.pem": None, "signing-ca.pem": None}
    assert not os.path.exists(os.path.join(ca_dir, "trust-bundle.pem")), "check mode writes nothing"
    texts, changed, dummy = state_file.publish(state, ["CRL1\n", "CRL2\n"])
    assert len(changed) == 3
    issuing = open(os.path.join(ca_dir, "issuing-1", "ca.crt")).read()
    assert texts["signing-ca.pem"] == issuing
    assert texts["trust-bundle.pem"] == open(os.path.join(ca_dir, "root-1", "ca.crt")).read() + issuing
    assert open(os.path.join(ca_dir, "crl-bundle.pem")).read() == "CRL1\nCRL2\n"
    assert stat.S_IMODE(os.stat(os.path.join(ca_dir, "signing-ca.pem")).st_mode) == 0o644
    published, missing = state_file.publication()
    assert missing == ["rotation.json"] and published["crl-bundle.pem"] == "CRL1\nCRL2\n"
    assert state_file.publish(state, ["CRL1\n", "CRL2\n"])[1] == []
    assert state_file.publish(state, ["CRL1\n", None], check_mode=True)[1] == ["crl-bundle.pem"]


def test_publish_refuses_missing_stores_and_a_wrong_crl_count(ca_dir):
    state_file = rot.StateFile(ca_dir)
    with pytest.raises(MtlsError, match="one CRL per trusted CA store"):
        state_file.publish(state_file.read(), ["only one"])
    with pytest.raises(MtlsError, match="root-1, issuing-1 do not exist"):
        state_file.publish(state_file.read(), ["a", "b"])


def test_remaining_phases_from_the_next_one_to_the_end():
    state = rot.RotationState.initial()
    assert state.remaining_phases() == []
    state = rot.begin(state, "root", now=at(0))
    assert state.remaining_phases() == ["trust", "reissue", "retire"]
    state = rot.complete(state, "trust", now=at(1))
    assert state.remaining_phases() == ["reissue", "retire"]
    state = rot.advance(rot.complete(rot.advance(state, now=at(2)), "reissue", now=at(3)), now=at(4))
    assert state.remaining_phases() == ["retire"]
    assert rot.complete(state, "retire", now=at(5)).remaining_phases() == []


def test_report_input_reads_every_generation_and_the_trusted_crls(ca_dir):
    state_file = rot.StateFile(ca_dir)
    assert state_file.report_input() == {"rotation": {}, "generations": [], "crls": []}
    create_root(os.path.join(ca_dir, "root-1"), PASS, common_name="Report Root")
    for number in (1, 2):
        create_intermediate(os.path.join(ca_dir, "issuing-%d" % number), PASS, os.path.join(ca_dir, "root-1"), PASS,
                            common_name="Report Issuing %d" % number)
    state_file.initialize()
    state = state_file.transition(lambda s: rot.begin(s, "issuing", now=at(0)))[1]
    with open(os.path.join(ca_dir, "issuing-1", "crl.json"), "w") as handle:
        json.dump({"crl_number": 4, "this_update": "2026-11-26T10:00:00Z", "next_update": "2026-12-03T10:00:00Z"},
                  handle)
    report = state_file.report_input()
    assert report["rotation"] == state.to_dict()
    assert [(g["id"], g["state"]) for g in report["generations"]] == [(1, "active"), (2, "incoming")]
    assert report["generations"][1]["issuing_pem"] == open(os.path.join(ca_dir, "issuing-2", "ca.crt")).read()
    assert report["generations"][1]["root_pem"] == report["generations"][0]["root_pem"]
    assert report["crls"] == [
        {"ca": "root-1", "next_update": None, "this_update": None, "crl_number": None},
        {"ca": "issuing-1", "next_update": "2026-12-03T10:00:00Z", "this_update": "2026-11-26T10:00:00Z",
         "crl_number": 4},
        {"ca": "issuing-2", "next_update": None, "this_update": None, "crl_number": None}]
    os.remove(os.path.join(ca_dir, "issuing-2", "ca.crt"))
    with pytest.raises(MtlsError, match="CA generation 2 lists store issuing-2, but .*ca.crt does not exist"):
        state_file.report_input()
