# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""fleet.mtls.rotate_ca with ``mtls_ca_backend: vault``: the three phases of rotation.py mapped onto
the PKI engine's issuers. The engine is the only record: the phase is derived from the mount's
issuers (names ``root-<N>`` / ``issuing-<N>``, usage, default, revoked), so two controllers agree
and every step is idempotent.

``derive(issuers)`` is pure: ``issuers`` are dicts ``{id, name, subject, issuer, ski, aki,
self_signed, key_id, usage (set), revoked, default}`` (``issuer_entries`` builds them from the
engine). It returns a ``VaultRotation``.

Engine states (``from`` = N, the generation of the default issuer when the rotation began):

- idle: every non-revoked issuer is the default issuer or above it.
- trust: ``issuing-<M>`` (M > N) exists, not default, usage without ``issuing-certificates``
  (scope root: under a new ``root-<M>``; a ``root-<M>`` without its issuing issuer is a trust
  phase interrupted half way, resumed by ``begin``).
- reissue: ``issuing-<M>`` is the default; the old issuing issuer (and, scope root, its root) is
  neither revoked nor above the default.
- retire: the old issuing issuer is revoked but an old issuer is not (scope root, interrupted).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError
from ansible_collections.fleet.mtls.plugins.module_utils.rotation import PHASES, SCOPES, leaves_on_generation

try:
    from cryptography import x509
    HAS_CRYPTOGRAPHY = True
except ImportError:
    HAS_CRYPTOGRAPHY = False

_NAME = re.compile(r"^(root|issuing)-([1-9][0-9]*)$")
FULL_USAGE = ("read-only", "issuing-certificates", "crl-signing", "ocsp-signing")
# A prepared (trust phase) or retiring issuer: it publishes its CRL, it signs nothing.
NO_ISSUING_USAGE = ("read-only", "crl-signing", "ocsp-signing")


def generation_of(name):
    """(kind, number) of an issuer named ``root-<N>`` or ``issuing-<N>``, else (None, None)."""
    match = _NAME.match(name or "")
    if not match:
        return None, None
    return match.group(1), int(match.group(2))


class VaultRotation:
    """Where a mount stands, derived from its issuers."""

    def __init__(self, issuers, default, chain, scope=None, source=None, target=None, phase=None,
                 new_issuing=None, new_root=None, old=None, highest=0):
        self.issuers = issuers
        self.default = default
        self.chain = chain
        self.scope = scope
        self.source = source
        self.target = target
        self.phase = phase
        self.new_issuing = new_issuing
        self.new_root = new_root
        self.old = old or []
        self.highest = highest

    @property
    def rotation(self):
        if self.phase is None:
            return None
        return {"scope": self.scope, "from": self.source, "to": self.target, "phase": self.phase,
                "phase_completed": False}

    def remaining_phases(self):
        if self.phase is None:
            return []
        return list(PHASES[PHASES.index(self.phase):])

    def summary(self):
        if self.phase is None:
            return "no CA rotation under way: %s signs (generation %d)" % (self.default["name"], self.source)
        return ("%s rotation from generation %d to %d, phase %s in progress"
                % (self.scope, self.source, self.target, self.phase))

    def old_identifiers(self):
        """(subject key ids, subjects) of the issuers a leaf of the old generation names as its issuer."""
        return ([entry["ski"] for entry in self.old if entry["ski"]], [entry["subject"] for entry in self.old])

    def old_generation_leaves(self, leaves):
        if self.phase is None or not leaves:
            return []
        key_ids, subjects = self.old_identifiers()
        return leaves_on_generation(leaves, key_ids, subjects)


def _parent(entry, issuers):
    """The issuer of ``entry`` among ``issuers`` (AKI = SKI, else subject), None for a root."""
    if entry["self_signed"]:
        return None
    for other in issuers:
        if other is entry or other["subject"] != entry["issuer"]:
            continue
        if entry["aki"] and other["ski"] and entry["aki"] != other["ski"]:
            continue
        return other
    return None


def _above(entry, issuers):
    """``entry`` and every issuer above it in the mount."""
    chain = [entry]
    while True:
        parent = _parent(chain[-1], issuers)
        if parent is None or parent in chain:
            return chain
        chain.append(parent)


def derive(issuers):
    """The rotation state of a mount's issuers (see the module docstring)."""
    defaults = [entry for entry in issuers if entry["default"]]
    if len(defaults) != 1:
        raise MtlsError("the mount has no default issuer: prepare it first (fleet.mtls.vault_pki_mount)")
    default = defaults[0]
    kind, current = generation_of(default["name"])
    if kind != "issuing":
        raise MtlsError("the default issuer of the mount is named %r, not issuing-<N>: name the issuer that signs "
                        "issuing-<N> (fleet.mtls.vault_pki_mount names it issuing-1) before rotating"
                        % (default["name"] or default["id"]))
    if default["revoked"]:
        raise MtlsError("the default issuer %s is revoked: make a live issuer the default" % default["name"])
    chain = _above(default, issuers)
    numbers = [generation_of(entry["name"])[1] for entry in issuers if generation_of(entry["name"])[1]]
    highest = max(numbers)
    state = VaultRotation(issuers, default, chain, source=current, highest=highest)
    live = [entry for entry in issuers if not entry["revoked"]]
    named = dict((entry["name"], entry) for entry in issuers if entry["name"])

    newer = [entry for entry in live if (generation_of(entry["name"])[1] or 0) > current]
    if newer:
        target = max(generation_of(entry["name"])[1] for entry in newer)
        new_issuing = named.get("issuing-%d" % target)
        new_root = named.get("root-%d" % target)
        if new_issuing is not None and new_issuing["revoked"]:
            raise MtlsError("issuer issuing-%d is revoked but newer than the default issuer %s: remove it from the "
                            "mount or make it the default before rotating" % (target, default["name"]))
        if new_root is not None and new_root["revoked"]:
            raise MtlsError("issuer root-%d is revoked but newer than the default issuer %s" % (target, default["name"]))
        if new_issuing is not None and new_root is None:
            parent = _parent(new_issuing, issuers)
            if parent is None or parent not in chain:
                raise MtlsError("issuer issuing-%d is signed by no issuer of the mount named root-%d nor by the root "
                                "of %s: cannot tell which rotation it belongs to" % (target, target, default["name"]))
        elif new_issuing is not None and _parent(new_issuing, issuers) is not new_root:
            raise MtlsError("issuer issuing-%d is not signed by root-%d" % (target, target))
        state.scope = "root" if new_root is not None else "issuing"
        state.target, state.phase = target, "trust"
        state.new_issuing, state.new_root = new_issuing, new_root
        state.old = [default] + (chain[1:] if new_root is not None else [])
        return state

    # The default issuer is the newest: anything live outside its chain is the old generation.
    old = [entry for entry in live if entry not in chain]
    if not old:
        return state
    previous = [entry for entry in issuers if generation_of(entry["name"])[0] == "issuing"
                and generation_of(entry["name"])[1] < current]
    if not previous:
        raise MtlsError("mount issuers %s are neither revoked nor above the default issuer %s, and no issuing-<N> "
                        "below generation %d exists: cannot tell which rotation they belong to"
                        % (", ".join(sorted(entry["name"] or entry["id"] for entry in old)), default["name"], current))
    old_issuing = max(previous, key=lambda entry: generation_of(entry["name"])[1])
    old_chain = _above(old_issuing, issuers)
    state.scope = "issuing" if len(old_chain) > 1 and old_chain[1] in chain else "root"
    state.source, state.target = generation_of(old_issuing["name"])[1], current
    state.new_issuing = default
    state.new_root = chain[-1] if state.scope == "root" else None
    state.old = [old_issuing] + (old_chain[1:] if state.scope == "root" else [])
    stray = [entry for entry in old if entry not in state.old]
    if stray:
        raise MtlsError("mount issuers %s are neither revoked nor part of generation %d or %d: revoke them or make "
                        "them part of a generation before rotating"
                        % (", ".join(sorted(entry["name"] or entry["id"] for entry in stray)), state.source, current))
    state.phase = "retire" if old_issuing["revoked"] else "reissue"
    return state


# --- the engine --------------------------------------------------------------------------------


def _hex(data):
    return ":".join("%02x" % byte for byte in bytearray(data))


def issuer_entries(pki):
    """The mount's issuers as ``derive`` takes them (plus ``cert``)."""
    from ansible_collections.fleet.mtls.plugins.module_utils.names import subject_string
    # <mount>/issuer/default, not config/issuers: the signing token's policy may read issuers only.
    default = (pki.read("%s/issuer/default" % pki.mount, what="reading the default issuer of mount %s" % pki.mount)
               or {}).get("data") or {}
    default_id = default.get("issuer_id")
    entries = []
    for issuer_id in pki.list("%s/issuers" % pki.mount, what="listing the issuers of mount %s" % pki.mount):
        data = (pki.read("%s/issuer/%s" % (pki.mount, issuer_id),
                         what="reading issuer %s of mount %s" % (issuer_id, pki.mount)) or {}).get("data") or {}
        cert = x509.load_pem_x509_certificate(data["certificate"].encode("ascii"))
        try:
            ski = _hex(cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest)
        except x509.ExtensionNotFound:
            ski = None
        try:
            aki_value = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
            aki = _hex(aki_value) if aki_value else None
        except x509.ExtensionNotFound:
            aki = None
        usage = set(part for part in (data.get("usage") or "").split(",") if part)
        entries.append({"id": issuer_id, "name": data.get("issuer_name") or "", "cert": cert,
                        "subject": subject_string(cert.subject), "issuer": subject_string(cert.issuer),
                        "ski": ski, "aki": aki, "self_signed": cert.subject == cert.issuer and (not aki or aki == ski),
                        "key_id": data.get("key_id") or "", "usage": usage, "revoked": bool(data.get("revoked")),
                        "default": issuer_id == default_id})
    return entries


def _describe(entry):
    return {"id": entry["id"], "name": entry["name"], "subject": entry["subject"],
            "usage": sorted(entry["usage"]), "revoked": entry["revoked"], "default": entry["default"],
            "has_key": bool(entry["key_id"])}


def report_input(pki, entries=None):
    """What ``report.build_report`` takes as ``ca``, from the engine (the local backend's
    ``StateFile.report_input``): the generations (``issuing-<N>`` with its root; active = the default
    issuer's, incoming above it, retiring below it, retired once revoked), the rotation under way, and
    the CRL state of every live issuer the engine holds a key for (an imported root's CRL is the local
    CA's, not the engine's)."""
    from cryptography.hazmat.primitives.serialization import Encoding
    from ansible_collections.fleet.mtls.plugins.module_utils.compat import crl_last_update, crl_next_update, isoformat
    from ansible_collections.fleet.mtls.plugins.module_utils.crl import crl_number_of

    entries = entries if entries is not None else issuer_entries(pki)
    state = derive(entries)
    active = generation_of(state.default["name"])[1]
    members = {}
    for entry in entries:
        kind, number = generation_of(entry["name"])
        if kind:
            members.setdefault(number, {})[kind] = entry
    generations = []
    for number in sorted(members):
        issuing = members[number].get("issuing")
        if issuing is None:
            continue  # a root whose issuing CA is not made yet (trust interrupted half way)
        root = members[number].get("root") or _above(issuing, entries)[-1]
        status = ("retired" if issuing["revoked"] else "active" if number == active
                  else "incoming" if number > active else "retiring")
        generations.append({"id": number, "state": status,
                            "issuing_pem": issuing["cert"].public_bytes(Encoding.PEM).decode("ascii"),
                            "root_pem": root["cert"].public_bytes(Encoding.PEM).decode("ascii")})
    crls = []
    for entry in sorted(entries, key=lambda e: (e["name"], e["id"])):
        if entry["revoked"] or not entry["key_id"]:
            continue
        answer = pki.read("%s/issuer/%s/crl" % (pki.mount, entry["id"]),
                          what="reading the CRL of issuer %s of mount %s" % (entry["name"] or entry["id"], pki.mount))
        text = ((answer or {}).get("data") or {}).get("crl") or ""
        row = {"ca": entry["name"] or entry["id"], "next_update": None, "this_update": None, "crl_number": None}
        if "BEGIN X509 CRL" in text:
            crl = x509.load_pem_x509_crl(text.encode("ascii"))
            row.update(this_update=isoformat(crl_last_update(crl)), crl_number=crl_number_of(crl),
                       next_update=isoformat(crl_next_update(crl)) if crl_next_update(crl) else None)
        crls.append(row)
    return {"rotation": {"active": active, "rotation": state.rotation}, "generations": generations, "crls": crls}


def report(state, leaves=None):
    """The module's return values (the keys of ca_rotation's that mean something here)."""
    return {
        "rotation": state.rotation,
        "phase": state.phase,
        "phase_completed": False,
        "next_phase": state.phase,
        "remaining_phases": state.remaining_phases(),
        "phases": list(PHASES),
        "active": generation_of(state.default["name"])[1],
        "summary": state.summary(),
        "default_issuer": state.default["name"],
        "issuers": [_describe(entry) for entry in sorted(state.issuers, key=lambda e: (e["name"], e["id"]))],
        "old_issuers": [entry["name"] or entry["id"] for entry in state.old] if state.phase else [],
        "old_generation_leaves": state.old_generation_leaves(leaves),
    }


class Rotator:
    """The engine steps of each phase; in check mode the writes are only recorded in ``changes``."""

    def __init__(self, pki, check_mode=False, key_type="ec_p256", root_common_name="fleet.mtls root CA",
                 issuing_common_name="fleet.mtls issuing CA", root_validity_days=3650, issuing_validity_days=1095,
                 leaf_not_after_behavior="err"):
        for name, value in (("root_validity_days", root_validity_days),
                            ("issuing_validity_days", issuing_validity_days)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise MtlsError("%s must be a positive number of days, got %r" % (name, value))
        self.pki = pki
        self.check_mode = check_mode
        self.key_type = key_type
        self.root_common_name = root_common_name
        self.issuing_common_name = issuing_common_name
        self.root_days = root_validity_days
        self.issuing_days = issuing_validity_days
        self.leaf_not_after_behavior = leaf_not_after_behavior
        self.changes = []

    def state(self):
        return derive(issuer_entries(self.pki))

    def _write(self, change, method, path, data=None):
        self.changes.append(change)
        if self.check_mode:
            return None
        return self.pki.call(method, path, data or {}, what="%s (%s %s)" % (change, method, path))

    def _key(self):
        from ansible_collections.fleet.mtls.plugins.module_utils.keys import check_key_type
        from ansible_collections.fleet.mtls.plugins.module_utils.vault_pki import _ENGINE_KEY_TYPES
        engine_type, bits = _ENGINE_KEY_TYPES[check_key_type(self.key_type)]
        return {"key_type": engine_type, "key_bits": bits}

    # trust ------------------------------------------------------------------------------------

    def begin(self, scope):
        """Prepare the new generation (phase trust); a rotation under way with this scope is resumed."""
        if scope not in SCOPES:
            raise MtlsError("scope must be issuing or root, got %r" % (scope,))
        state = self.state()
        if state.phase is not None:
            if state.scope != scope:
                raise MtlsError("cannot begin a rotation with scope %s: %s; finish it first (or name scope %s)"
                                % (scope, state.summary(), state.scope))
            if state.phase == "trust":
                self._prepare(state, scope, state.target)
            return
        self._prepare(state, scope, state.highest + 1)

    def _prepare(self, state, scope, target):
        from ansible_collections.fleet.mtls.plugins.module_utils.vault_pki import _hours
        mount = self.pki.mount
        root = state.chain[-1]
        if scope == "issuing":
            if not root["self_signed"]:
                raise MtlsError("the root of %s is not among the issuers of mount %s: rotate with scope root"
                                % (state.default["name"], mount))
            if not root["key_id"]:
                raise MtlsError("mount %s holds no key for the root %s (%s): it was imported with the local CA "
                                "(ca_source=import), so the engine cannot sign a new issuing CA under it; rotate "
                                "with scope root (mtls_rotate_ca_scope=root)"
                                % (mount, root["name"] or root["id"], root["subject"]), mount=mount)
            parent = root["name"] or root["id"]
        else:
            parent = "root-%d" % target
            if state.new_root is None:
                self._write("generate root CA %s" % parent, "POST", "%s/root/generate/internal" % mount,
                            dict(self._key(), common_name="%s G%d" % (self.root_common_name, target),
                                 ttl=_hours(self.root_days), issuer_name=parent, key_name=parent))
        name = "issuing-%d" % target
        if state.new_issuing is None:
            common_name = "%s G%d" % (self.issuing_common_name, target)
            answer = self._write("generate issuing CA %s (CSR)" % name, "POST",
                                 "%s/intermediate/generate/internal" % mount,
                                 dict(self._key(), common_name=common_name, key_name=name))
            if self.check_mode:
                self.changes.extend(["sign %s with %s" % (name, parent),
                                     "import %s, not signing (usage %s)" % (name, ",".join(NO_ISSUING_USAGE))])
                return
            signed = self.pki.write("%s/issuer/%s/sign-intermediate" % (mount, parent),
                                    {"csr": answer["data"]["csr"], "common_name": common_name,
                                     "ttl": _hours(self.issuing_days), "max_path_length": 0, "format": "pem"},
                                    what="signing %s with %s (%s/issuer/%s/sign-intermediate)" % (name, parent, mount, parent))["data"]
            self.changes.append("sign %s with %s" % (name, parent))
            imported = self.pki.write("%s/issuers/import/cert" % mount, {"pem_bundle": signed["certificate"]},
                                      what="importing %s (%s/issuers/import/cert)" % (name, mount))["data"]
            issuer_id = ([i for i in imported.get("imported_issuers") or [] if i]
                         or list((imported.get("mapping") or {}).keys()))[0]
            self.pki.patch("%s/issuer/%s" % (mount, issuer_id),
                           {"issuer_name": name, "usage": ",".join(NO_ISSUING_USAGE),
                            "leaf_not_after_behavior": self.leaf_not_after_behavior},
                           what="naming %s (PATCH %s/issuer/%s)" % (name, mount, issuer_id))
            self.changes.append("import %s, not signing (usage %s)" % (name, ",".join(NO_ISSUING_USAGE)))
        elif "issuing-certificates" in state.new_issuing["usage"]:
            # Interrupted reissue step never leaves trust with a signing new issuer: take it back.
            self._usage(state.new_issuing, NO_ISSUING_USAGE)

    def _usage(self, entry, usage):
        self._write("issuer %s: usage %s" % (entry["name"], ",".join(usage)), "PATCH",
                    "%s/issuer/%s" % (self.pki.mount, entry["id"]), {"usage": ",".join(usage)})

    # reissue ----------------------------------------------------------------------------------

    def reissue(self):
        """The new issuing issuer signs (full usage, default); the old one stops signing."""
        state = self.state()
        if state.phase is None:
            raise MtlsError("cannot enter phase reissue: %s" % state.summary())
        if state.phase == "retire":
            raise MtlsError("cannot enter phase reissue: %s" % state.summary())
        if state.phase == "trust":
            if state.new_issuing is None:
                raise MtlsError("cannot enter phase reissue: issuing-%d does not exist yet; run phase trust first"
                                % state.target)
            if set(FULL_USAGE) - state.new_issuing["usage"]:
                self._usage(state.new_issuing, FULL_USAGE)
            self._write("make %s the default issuer" % state.new_issuing["name"], "POST",
                        "%s/config/issuers" % self.pki.mount, {"default": state.new_issuing["id"]})
        # The old issuing issuer comes first in ``old`` (in phase trust it is still the default).
        old_issuing = state.old[0]
        if "issuing-certificates" in old_issuing["usage"]:
            self._usage(old_issuing, NO_ISSUING_USAGE)

    # retire -----------------------------------------------------------------------------------

    def retire(self, leaves):
        """Revoke the old generation's issuers once no leaf chains to them; rebuild the CRLs."""
        state = self.state()
        if state.phase is None:
            raise MtlsError("cannot enter phase retire: %s" % state.summary())
        if state.phase == "trust":
            raise MtlsError("cannot enter phase retire: %s; run phase reissue first" % state.summary())
        if leaves is None:
            raise MtlsError("entering phase retire needs leaves: the fleet's live certificates "
                            "(fleet.mtls.cert_info results with host), to prove none chains to the old generation")
        blocking = state.old_generation_leaves(leaves)
        if blocking:
            hosts = sorted(set(leaf["host"] for leaf in blocking))
            raise MtlsError("cannot retire generation %d: %d installed leaf certificate(s) still chain to it on %s; "
                            "run phase reissue again (it re-issues them)"
                            % (state.source, len(blocking), ", ".join(hosts)),
                            blocking_hosts=hosts, old_generation_leaves=blocking)
        revoked = False
        # The issuing issuer first: a retire interrupted after it is still recognised (phase retire).
        for entry in state.old:
            if not entry["revoked"]:
                self._write("revoke issuer %s" % (entry["name"] or entry["id"]), "POST",
                            "%s/issuer/%s/revoke" % (self.pki.mount, entry["id"]))
                revoked = True
        if revoked:
            self._write("rebuild the CRLs of mount %s" % self.pki.mount, "GET", "%s/crl/rotate" % self.pki.mount)

    # the module's states ---------------------------------------------------------------------

    def advance(self, phase, leaves=None):
        """Enter ``phase``: trust (begun by ``begin``: nothing to do), reissue or retire."""
        if phase == "trust":
            state = self.state()
            if state.phase is None:
                raise MtlsError("cannot enter phase trust: %s; start a rotation with state=begin" % state.summary())
            if state.phase != "trust":
                raise MtlsError("cannot enter phase trust: %s; the next phase is %s" % (state.summary(), state.phase))
            return
        if phase == "reissue":
            return self.reissue()
        if phase == "retire":
            return self.retire(leaves)
        raise MtlsError("phase must be one of %s, got %r" % (", ".join(PHASES), phase))

    def complete(self, phase):
        """Nothing is recorded (the engine is the record): check that the engine has reached ``phase``."""
        if phase not in PHASES:
            raise MtlsError("phase must be one of %s, got %r" % (", ".join(PHASES), phase))
        state = self.state()
        reached = len(PHASES) if state.phase is None else PHASES.index(state.phase)
        if reached < PHASES.index(phase):
            raise MtlsError("cannot complete phase %s: %s" % (phase, state.summary()))


def check_mode_report(before, action, scope, phase):
    """What check mode reports of a transition it did not make: the phase the engine would be in."""
    if action == "begin" and before.phase is None:
        target = before.highest + 1
        rotation = {"scope": scope, "from": before.source, "to": target, "phase": "trust", "phase_completed": False}
    elif action == "advance" and before.rotation is not None:
        rotation = dict(before.rotation, phase=phase)
    else:
        return {}
    remaining = list(PHASES[PHASES.index(rotation["phase"]):])
    return {"rotation": rotation, "phase": rotation["phase"], "next_phase": rotation["phase"],
            "remaining_phases": remaining,
            "summary": "%s rotation from generation %d to %d, phase %s (check mode: not made)"
                       % (rotation["scope"], rotation["from"], rotation["to"], rotation["phase"])}
