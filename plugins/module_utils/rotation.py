# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""CA generations and the three-phase CA rotation (``rotation.json`` in the CA directory).

The state file (docs/architecture.md, "CA generations and rotation")::

    {"format": 1, "active": 2,
     "generations": [{"id": 1, "root": "root-1", "issuing": "issuing-1", "state": "retiring"},
                     {"id": 2, "root": "root-2", "issuing": "issuing-2", "state": "active"}],
     "rotation": {"scope": "root", "from": 1, "to": 2, "phase": "reissue",
                  "started": "...", "phase_started": "...", "phase_completed": null},
     "history": [{"scope", "from", "to", "started", "finished"}, ...]}

Generation states move ``incoming`` -> ``active`` -> ``retiring`` -> ``retired``; exactly one
generation is ``active`` (it signs leaves). A rotation goes through the phases ``trust`` (the new
generation is ``incoming``: trusted everywhere, not signing), ``reissue`` (the new generation
signs, the old one is ``retiring``: still trusted) and ``retire`` (the old one is ``retired``:
dropped from trust bundles). Each phase is recorded when it starts (``phase_started``) and when
its work on the fleet is done (``phase_completed``); the next phase may only start after that, so
an interrupted run resumes by re-running the recorded phase (every phase's work is idempotent).
Completing ``retire`` closes the rotation (``rotation`` -> null, an entry in ``history``).

The transitions are pure functions on ``RotationState`` (``begin``, ``advance``, ``complete``);
``StateFile`` reads, validates and writes the file atomically under ``rotation.lock``, and
``StateFile.transition(fn)`` does read-modify-write in one locked step that leaves the file
untouched when ``fn`` refuses.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import json
import os
import re

from ansible_collections.fleet.mtls.plugins.module_utils.ca_store import CAStore, certificate_pem
from ansible_collections.fleet.mtls.plugins.module_utils.compat import isoformat, parse_isoformat, utcnow
from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError
from ansible_collections.fleet.mtls.plugins.module_utils.fsutil import atomic_write, file_lock, read_file
from ansible_collections.fleet.mtls.plugins.module_utils.x509_info import subject_key_id
from ansible_collections.fleet.mtls.plugins.module_utils.names import subject_string

STATE_FORMAT = 1
STATE_FILE = "rotation.json"
LOCK_FILE = "rotation.lock"
STATE_FILE_MODE = 0o600

SCOPES = ("issuing", "root")
PHASES = ("trust", "reissue", "retire")
GENERATION_STATES = ("incoming", "active", "retiring", "retired")
# What the two generations of a rotation are in each phase: (old, new).
PHASE_GENERATION_STATES = {
    "trust": ("active", "incoming"),
    "reissue": ("retiring", "active"),
    "retire": ("retired", "active"),
}

_ROOT_NAME = re.compile(r"^root-([0-9]+)$")
_ISSUING_NAME = re.compile(r"^issuing-([0-9]+)$")
_KNOWN_KEYS = frozenset(("format", "active", "generations", "rotation", "history", "phase"))
# What the ca role publishes in the CA directory for the identity role (besides rotation.json).
TRUST_BUNDLE_FILE = "trust-bundle.pem"
CRL_BUNDLE_FILE = "crl-bundle.pem"
SIGNING_CA_FILE = "signing-ca.pem"
PUBLICATION_FILES = (STATE_FILE, TRUST_BUNDLE_FILE, CRL_BUNDLE_FILE, SIGNING_CA_FILE)
PUBLICATION_MODE = 0o644


def _store_number(name, pattern):
    return int(pattern.match(name).group(1))


def store_name_suffix(name):
    """Common name suffix of a CA store: ``root-1``/``issuing-1`` keep the configured names, later
    stores get `` G<N>``, so two generations' CAs never share a subject (issuer lookups, CRL
    matching, reports)."""
    match = _ROOT_NAME.match(name) or _ISSUING_NAME.match(name)
    if not match:
        raise MtlsError("CA store %r is not named root-<N> or issuing-<N>" % (name,))
    number = int(match.group(1))
    return "" if number == 1 else " G%d" % number


def crl_bundle(crls):
    """One CRL per trusted CA, in bundle order, as one PEM text. A ``None`` entry (check mode: the
    CRL would be rebuilt) leaves its place empty, so the bundle differs as it would."""
    return "\n".join((crl or "").strip() for crl in crls) + "\n"


class RotationState:
    """A validated copy of the state; transitions return new objects and never mutate this one."""

    def __init__(self, data, source=STATE_FILE):
        self.source = source
        self.data = _validated(copy.deepcopy(data), source)

    @classmethod
    def initial(cls):
        """Generation 1 active, no rotation: what a CA directory starts with."""
        return cls({"format": STATE_FORMAT, "active": 1,
                    "generations": [{"id": 1, "root": "root-1", "issuing": "issuing-1", "state": "active"}],
                    "rotation": None, "history": []})

    def to_dict(self):
        return copy.deepcopy(self.data)

    def to_json(self):
        return json.dumps(self.data, indent=2, sort_keys=True) + "\n"

    def __eq__(self, other):
        return isinstance(other, RotationState) and self.data == other.data

    def __ne__(self, other):
        return not self == other

    @property
    def generations(self):
        return self.data["generations"]

    @property
    def rotation(self):
        return self.data["rotation"]

    @property
    def phase(self):
        return self.rotation["phase"] if self.rotation else None

    @property
    def phase_completed(self):
        return bool(self.rotation and self.rotation.get("phase_completed"))

    def generation(self, generation_id):
        for generation in self.generations:
            if generation["id"] == generation_id:
                return generation
        raise MtlsError("%s has no CA generation %r" % (self.source, generation_id))

    def active_generation(self):
        return self.generation(self.data["active"])

    def trusted_generations(self):
        return [g for g in self.generations if g["state"] != "retired"]

    def trusted_stores(self):
        """Store names of the trust bundle, in order: each trusted generation's root, then its
        issuing CA; a root shared by two generations (scope issuing) appears once."""
        names = []
        for generation in self.trusted_generations():
            for name in (generation["root"], generation["issuing"]):
                if name not in names:
                    names.append(name)
        return names

    def trusted_cas(self):
        """The CA stores of the trusted generations in bundle order, one entry per store (a root
        shared by two generations once): ``name``, ``kind`` (root or intermediate), ``generation``
        (the first trusted generation using it), ``parent`` (the root of an issuing CA) and
        ``name_suffix`` (see ``store_name_suffix``)."""
        cas, seen = [], set()
        for generation in self.trusted_generations():
            for name, kind, parent in ((generation["root"], "root", None),
                                       (generation["issuing"], "intermediate", generation["root"])):
                if name in seen:
                    continue
                seen.add(name)
                cas.append({"name": name, "kind": kind, "generation": generation["id"], "parent": parent,
                            "name_suffix": store_name_suffix(name)})
        return cas

    def old_generation(self):
        """The generation a rotation replaces (None without a rotation)."""
        return self.generation(self.rotation["from"]) if self.rotation else None

    def next_phase(self):
        """The phase a playbook runs next: the recorded one until it completes, then the following
        one; None when no rotation is under way."""
        if not self.rotation:
            return None
        if not self.phase_completed:
            return self.phase
        index = PHASES.index(self.phase)
        return PHASES[index + 1] if index + 1 < len(PHASES) else None

    def remaining_phases(self):
        """The phases a run that goes to the end still has to go through, from ``next_phase()`` on;
        empty without a rotation."""
        following = self.next_phase()
        return list(PHASES[PHASES.index(following):]) if following else []

    def summary(self):
        """One line for humans: where the CA stands."""
        if not self.rotation:
            return "generation %d active, no rotation under way" % self.data["active"]
        return ("%s rotation from generation %d to %d: phase %s %s" % (
            self.rotation["scope"], self.rotation["from"], self.rotation["to"], self.phase,
            "completed" if self.phase_completed else "in progress"))


def _fail(source, problem):
    raise MtlsError("%s is not a valid CA generation state: %s" % (source, problem))


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check_timestamp(source, where, value, required=True):
    if value is None and not required:
        return
    try:
        parse_isoformat(value)
    except (TypeError, ValueError):
        _fail(source, "%s must be a timestamp like 2026-11-26T10:00:00Z, got %r" % (where, value))


def _validated(data, source):
    if not isinstance(data, dict):
        _fail(source, "expected a JSON object, got %s" % type(data).__name__)
    unknown = sorted(set(data) - _KNOWN_KEYS)
    if unknown:
        _fail(source, "unknown keys %s" % ", ".join(unknown))
    # A file without "format" was written by an earlier version of the ca role: same layout.
    if data.get("format", STATE_FORMAT) != STATE_FORMAT:
        _fail(source, "format %r; this version reads format %d" % (data.get("format"), STATE_FORMAT))
    if data.get("phase") is not None:
        _fail(source, "'phase' belongs inside 'rotation' (found %r at the top level)" % (data["phase"],))
    data.pop("phase", None)
    data["format"] = STATE_FORMAT
    data.setdefault("rotation", None)
    data.setdefault("history", [])
    generations = data.get("generations")
    if not isinstance(generations, list) or not generations:
        _fail(source, "'generations' must be a non-empty list")
    seen_ids, seen_issuing = set(), set()
    for position, generation in enumerate(generations):
        where = "generation #%d" % (position + 1)
        if not isinstance(generation, dict):
            _fail(source, "%s is not an object" % where)
        missing = [key for key in ("id", "root", "issuing", "state") if key not in generation]
        if missing:
            _fail(source, "%s lacks %s" % (where, ", ".join(missing)))
        if not _is_int(generation["id"]) or generation["id"] < 1:
            _fail(source, "%s has id %r; ids are positive integers" % (where, generation["id"]))
        if generation["id"] in seen_ids:
            _fail(source, "generation id %d appears twice" % generation["id"])
        seen_ids.add(generation["id"])
        if not isinstance(generation["root"], str) or not _ROOT_NAME.match(generation["root"]):
            _fail(source, "generation %d: root store %r is not named root-<N>" % (generation["id"], generation["root"]))
        if not isinstance(generation["issuing"], str) or not _ISSUING_NAME.match(generation["issuing"]):
            _fail(source, "generation %d: issuing store %r is not named issuing-<N>"
                  % (generation["id"], generation["issuing"]))
        if generation["issuing"] in seen_issuing:
            _fail(source, "issuing store %s belongs to two generations" % generation["issuing"])
        seen_issuing.add(generation["issuing"])
        if generation["state"] not in GENERATION_STATES:
            _fail(source, "generation %d has state %r (one of %s)"
                  % (generation["id"], generation["state"], ", ".join(GENERATION_STATES)))
    active = [g["id"] for g in generations if g["state"] == "active"]
    if len(active) != 1:
        _fail(source, "exactly one generation must be active, found %d (%s)"
              % (len(active), ", ".join(str(i) for i in active) or "none"))
    if data.get("active") != active[0]:
        _fail(source, "'active' is %r but generation %d is the active one" % (data.get("active"), active[0]))
    _validate_rotation(data, source)
    if not isinstance(data["history"], list) or not all(isinstance(entry, dict) for entry in data["history"]):
        _fail(source, "'history' must be a list of objects")
    return data


def _validate_rotation(data, source):
    rotation = data["rotation"]
    by_id = dict((g["id"], g) for g in data["generations"])
    in_rotation = set()
    if rotation is not None:
        if not isinstance(rotation, dict):
            _fail(source, "'rotation' must be an object or null")
        missing = [key for key in ("scope", "from", "to", "phase", "started", "phase_started") if key not in rotation]
        if missing:
            _fail(source, "rotation lacks %s" % ", ".join(missing))
        rotation.setdefault("phase_completed", None)
        if rotation["scope"] not in SCOPES:
            _fail(source, "rotation scope %r is not one of %s" % (rotation["scope"], ", ".join(SCOPES)))
        if rotation["phase"] not in PHASES:
            _fail(source, "rotation phase %r is not one of %s" % (rotation["phase"], ", ".join(PHASES)))
        for end in ("from", "to"):
            if rotation[end] not in by_id:
                _fail(source, "rotation '%s' names generation %r, which does not exist" % (end, rotation[end]))
        if rotation["from"] == rotation["to"]:
            _fail(source, "rotation goes from generation %d to itself" % rotation["from"])
        for key in ("started", "phase_started"):
            _check_timestamp(source, "rotation %s" % key, rotation[key])
        _check_timestamp(source, "rotation phase_completed", rotation["phase_completed"], required=False)
        old, new = by_id[rotation["from"]], by_id[rotation["to"]]
        expected_old, expected_new = PHASE_GENERATION_STATES[rotation["phase"]]
        if (old["state"], new["state"]) != (expected_old, expected_new):
            _fail(source, "in phase %s generation %d must be %s and generation %d %s, found %s and %s"
                  % (rotation["phase"], old["id"], expected_old, new["id"], expected_new,
                     old["state"], new["state"]))
        shares_root = old["root"] == new["root"]
        if shares_root != (rotation["scope"] == "issuing"):
            _fail(source, "a rotation with scope %s %s the root store (generations %d and %d: %s, %s)"
                  % (rotation["scope"], "keeps" if rotation["scope"] == "issuing" else "replaces",
                     old["id"], new["id"], old["root"], new["root"]))
        in_rotation = set((old["id"], new["id"]))
    for generation in data["generations"]:
        if generation["state"] in ("incoming", "retiring") and generation["id"] not in in_rotation:
            _fail(source, "generation %d is %s but no rotation involves it"
                  % (generation["id"], generation["state"]))


def _now_text(now):
    return isoformat(now or utcnow())


def begin(state, scope, now=None):
    """Start a rotation: a new generation, ``incoming``, phase ``trust``.

    The same scope while a rotation is under way changes nothing (a re-run resumes it); another
    scope is refused, as is a second rotation.
    """
    if scope not in SCOPES:
        raise MtlsError("scope %r is not one of %s" % (scope, ", ".join(SCOPES)))
    if state.rotation:
        if state.rotation["scope"] == scope:
            return state
        raise MtlsError("a %s rotation (generation %d to %d) is under way in phase %s: finish it before "
                        "starting another one (scope %s)" % (state.rotation["scope"], state.rotation["from"],
                                                             state.rotation["to"], state.phase, scope))
    data = state.to_dict()
    active = state.active_generation()
    new_id = max(g["id"] for g in state.generations) + 1
    issuing_number = max(_store_number(g["issuing"], _ISSUING_NAME) for g in state.generations) + 1
    if scope == "root":
        root = "root-%d" % (max(_store_number(g["root"], _ROOT_NAME) for g in state.generations) + 1)
    else:
        root = active["root"]
    stamp = _now_text(now)
    data["generations"].append({"id": new_id, "root": root, "issuing": "issuing-%d" % issuing_number,
                                "state": "incoming"})
    data["rotation"] = {"scope": scope, "from": active["id"], "to": new_id, "phase": "trust",
                        "started": stamp, "phase_started": stamp, "phase_completed": None}
    return RotationState(data, state.source)


def complete(state, phase, now=None):
    """Record that ``phase``'s work on the fleet is done. Completing ``retire`` closes the rotation.

    Completing the phase again changes nothing; completing another phase than the recorded one is
    refused.
    """
    _require_rotation(state, "complete phase %s" % phase)
    if phase not in PHASES:
        raise MtlsError("phase %r is not one of %s" % (phase, ", ".join(PHASES)))
    if phase != state.phase:
        raise MtlsError("cannot complete phase %s: the rotation is in phase %s" % (phase, state.phase))
    if state.phase_completed:
        return state
    data = state.to_dict()
    stamp = _now_text(now)
    if phase == "retire":
        rotation = data["rotation"]
        data["history"].append({"scope": rotation["scope"], "from": rotation["from"], "to": rotation["to"],
                                "started": rotation["started"], "finished": stamp})
        data["rotation"] = None
    else:
        data["rotation"]["phase_completed"] = stamp
    return RotationState(data, state.source)


def advance(state, blocking_leaves=(), now=None):
    """Enter the next phase; the recorded phase must be completed first.

    ``trust`` -> ``reissue``: the new generation becomes active, the old one retiring.
    ``reissue`` -> ``retire``: refused while ``blocking_leaves`` (leaves that still chain to the old
    generation, see ``leaves_on_generation``) is not empty; the refusal names their hosts.
    After ``retire`` there is no next phase: ``complete`` closes the rotation.
    Entering the recorded phase again (it is not completed yet) changes nothing.
    """
    _require_rotation(state, "advance")
    if not state.phase_completed:
        raise MtlsError("phase %s of the %s rotation has not completed yet: run it to the end (it is "
                        "safe to re-run) before the next phase" % (state.phase, state.rotation["scope"]))
    target = state.next_phase()
    if target is None:
        raise MtlsError("the rotation has no phase after %s: complete it instead" % state.phase)
    data = state.to_dict()
    rotation = data["rotation"]
    old = next(g for g in data["generations"] if g["id"] == rotation["from"])
    new = next(g for g in data["generations"] if g["id"] == rotation["to"])
    if target == "retire":
        blocking = list(blocking_leaves)
        if blocking:
            hosts = sorted(set(leaf.get("host") or "?" for leaf in blocking))
            raise MtlsError(
                "refusing to retire CA generation %d: %d live certificate(s) still chain to it, on %s. "
                "Re-run the reissue phase (mtls_rotate_ca_phase=reissue) for these hosts first"
                % (old["id"], len(blocking), ", ".join(hosts)), blocking_hosts=hosts, blocking_leaves=blocking)
    old["state"], new["state"] = PHASE_GENERATION_STATES[target]
    data["active"] = new["id"]
    stamp = _now_text(now)
    rotation.update({"phase": target, "phase_started": stamp, "phase_completed": None})
    return RotationState(data, state.source)


def phases_to_run(remaining, asked="all", under_way=True, check_mode=False):
    """The phases a ``rotate_ca`` run goes through: every ``remaining`` phase for ``asked`` ``all``,
    else the one asked. In check mode a rotation that is not under way yet is only planned: its
    ``begin`` was not made, so no phase can be checked against it (each one needs what the one
    before wrote); a rotation under way has its phases checked."""
    if asked != "all" and asked not in PHASES:
        raise MtlsError("mtls_rotate_ca_phase must be all or one of %s, got %r" % (", ".join(PHASES), asked))
    if check_mode and not under_way:
        return []
    return list(remaining) if asked == "all" else [asked]


def _require_rotation(state, action):
    if not state.rotation:
        raise MtlsError("cannot %s: no CA rotation is under way (%s)" % (action, state.summary()))


def leaves_on_generation(leaves, key_ids, subjects=()):
    """The leaves issued by one of a generation's CAs: what still chains to it.

    ``leaves``: dicts as fleet.mtls.cert_info returns them, plus ``host`` (and ideally
    ``identity``). A leaf matches when its ``aki`` is one of ``key_ids`` (the generation's subject
    key ids, colon hex); a leaf without an ``aki`` matches by its ``issuer`` being one of
    ``subjects``. Entries with ``exists: false`` (no certificate installed) are skipped.
    """
    key_ids = set(key_id.lower() for key_id in key_ids if key_id)
    subjects = set(subjects)
    blocking = []
    for leaf in leaves:
        if not isinstance(leaf, dict) or not leaf.get("host"):
            raise MtlsError("every leaf must be an object with 'host' and 'aki' or 'issuer', got %r" % (leaf,))
        if leaf.get("exists") is False:
            continue
        aki = leaf.get("aki")
        if (aki.lower() in key_ids) if aki else (leaf.get("issuer") in subjects):
            blocking.append(dict((key, leaf[key]) for key in ("host", "identity", "path", "serial", "issuer")
                                 if leaf.get(key) is not None))
    return blocking


def _mode_of(path):
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        return None


class StateFile:
    """``rotation.json`` in a CA directory, read and written under ``rotation.lock``."""

    def __init__(self, ca_dir):
        if not ca_dir:
            raise MtlsError("the CA directory is empty")
        self.ca_dir = os.path.abspath(os.path.expanduser(ca_dir))
        self.path = os.path.join(self.ca_dir, STATE_FILE)
        self.lock_path = os.path.join(self.ca_dir, LOCK_FILE)

    def exists(self):
        return os.path.isfile(self.path)

    def read(self):
        """The recorded state; the initial one (generation 1 active) when there is no file yet."""
        raw = read_file(self.path, "CA generation state")
        if raw is None:
            return RotationState.initial()
        try:
            data = json.loads(raw.decode("utf-8"))
        except ValueError as exc:
            raise MtlsError("%s is not a valid CA generation state: not JSON (%s)" % (self.path, exc))
        return RotationState(data, self.path)

    def _require_dir(self):
        if not os.path.isdir(self.ca_dir):
            raise MtlsError("CA directory %s does not exist: run the fleet.mtls.ca role first" % self.ca_dir)

    def transition(self, change, check_mode=False):
        """Read, apply ``change(state) -> state`` and write when it differs, all under the lock.

        Returns ``(before, after, changed)``. When ``change`` raises, the file is left as it was.
        A file that exists but lacks the current layout (older ca role) counts as changed, so the
        first transition writes it in full.
        """
        self._require_dir()
        # A refusal is found before the lock file is created, so it leaves the directory as it was;
        # the locked pass below decides for real.
        before = self.read()
        after = change(before)
        if check_mode:
            return before, after, after != before or (not self._is_current(after))
        with file_lock(self.lock_path):
            before = self.read()
            after = change(before)
            changed = after != before or not self._is_current(after)
            if changed:
                atomic_write(self.path, after.to_json(), STATE_FILE_MODE)
        return before, after, changed

    def initialize(self, check_mode=False):
        """Record generation 1 when the CA directory has no ``rotation.json`` yet; an existing file is
        left as it is. Returns ``(state, changed)``."""
        self._require_dir()
        if self.exists():
            return self.read(), False
        state = RotationState.initial()
        if check_mode:
            return state, True
        with file_lock(self.lock_path):
            if self.exists():
                return self.read(), False
            atomic_write(self.path, state.to_json(), STATE_FILE_MODE)
        return state, True

    def publication(self):
        """What the ca role published: ``({file name: text}, [missing file names])``."""
        published, missing = {}, []
        for name in PUBLICATION_FILES:
            raw = read_file(os.path.join(self.ca_dir, name), "CA publication")
            if raw is None:
                missing.append(name)
            else:
                published[name] = raw.decode("utf-8")
        return published, missing

    def publish(self, state, crls, check_mode=False):
        """Write the trust bundle, CRL bundle and signing CA of ``state`` (each atomically, only
        when it differs). ``crls``: the CRL of every trusted store, in ``trusted_stores`` order.

        Returns ``({file name: text}, [changed file names], {file name: previous text or None})``.
        """
        stores = state.trusted_stores()
        if len(crls) != len(stores):
            raise MtlsError("publishing needs one CRL per trusted CA store (%s), got %d"
                            % (", ".join(stores), len(crls)))
        bundle, missing = self.trust_bundle(state)
        if missing:
            raise MtlsError("cannot publish the trust bundle: CA store(s) %s do not exist in %s; the "
                            "fleet.mtls.ca role creates them" % (", ".join(missing), self.ca_dir))
        signing = CAStore(self.store_path(state.active_generation()["issuing"]))
        texts = {TRUST_BUNDLE_FILE: bundle, CRL_BUNDLE_FILE: crl_bundle(crls),
                 SIGNING_CA_FILE: certificate_pem(signing.certificate()).decode("ascii")}
        changed, before = [], {}
        for name in (TRUST_BUNDLE_FILE, CRL_BUNDLE_FILE, SIGNING_CA_FILE):
            path = os.path.join(self.ca_dir, name)
            raw = read_file(path, "CA publication")
            before[name] = None if raw is None else raw.decode("utf-8")
            if before[name] == texts[name] and _mode_of(path) == PUBLICATION_MODE:
                continue
            changed.append(name)
            if not check_mode:
                atomic_write(path, texts[name].encode("utf-8"), PUBLICATION_MODE)
        return texts, changed, before

    def report_input(self):
        """What ``report.build_report`` takes as ``ca``: the recorded state (``{}`` without
        ``rotation.json``), every generation's CA certificates (PEM, retired ones included: old
        leaves still name them) and the CRL state (``crl.json``) of every trusted store."""
        from ansible_collections.fleet.mtls.plugins.module_utils.crl import load_crl_state

        if not self.exists():
            return {"rotation": {}, "generations": [], "crls": []}
        state = self.read()
        generations = []
        for generation in state.generations:
            pems = {}
            for key in ("root", "issuing"):
                path = os.path.join(self.store_path(generation[key]), "ca.crt")
                raw = read_file(path, "CA certificate")
                if raw is None:
                    raise MtlsError("CA generation %d lists store %s, but %s does not exist"
                                    % (generation["id"], generation[key], path))
                pems[key + "_pem"] = raw.decode("ascii")
            generations.append(dict(pems, id=generation["id"], state=generation["state"]))
        crls = []
        for name in state.trusted_stores():
            crl_state = load_crl_state(os.path.join(self.store_path(name), "crl.json")) or {}
            crls.append({"ca": name, "next_update": crl_state.get("next_update"),
                         "this_update": crl_state.get("this_update"), "crl_number": crl_state.get("crl_number")})
        return {"rotation": state.to_dict(), "generations": generations, "crls": crls}

    def _is_current(self, state):
        raw = read_file(self.path, "CA generation state")
        return raw is not None and raw.decode("utf-8") == state.to_json()

    def store_path(self, name):
        return os.path.join(self.ca_dir, name)

    def generation_cas(self, generation):
        """The CA certificates of a generation's stores, as ``CAStore`` objects (root, issuing)."""
        return [CAStore(self.store_path(generation["root"])), CAStore(self.store_path(generation["issuing"]))]

    def generation_identifiers(self, generation):
        """(subject key ids, subjects) of a generation's existing CA certificates: what a leaf that
        chains to the generation names as its issuer."""
        key_ids, subjects = [], []
        for store in self.generation_cas(generation):
            if store.exists():
                cert = store.certificate()
                key_ids.append(subject_key_id(cert))
                subjects.append(subject_string(cert.subject))
        return key_ids, subjects

    def trust_bundle(self, state):
        """(PEM of every trusted CA certificate in bundle order, names of stores not created yet)."""
        blocks, missing = [], []
        for name in state.trusted_stores():
            store = CAStore(self.store_path(name))
            if not store.exists():
                missing.append(name)
                continue
            blocks.append(certificate_pem(store.certificate()).decode("ascii"))
        return "".join(blocks), missing
