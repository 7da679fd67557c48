# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Consumers: any service on a host that reads an identity, the trust bundle or the CRL
(docs/consumers.md).

A consumer declares which of the host's identity files it reads, how to validate a candidate
configuration and how to apply a change, per kind of change::

    {"name": "postgresql", "identities": ["db"], "trust_bundle": true, "crl": true,
     "validate": ["/usr/local/bin/check-pg-config"],
     "apply": {"default": {"service": "postgresql", "action": "reload"},
               "trust_bundle": {"service": "postgresql", "action": "restart"}}}

``check_consumers`` is THE check of a declaration (every problem names the consumer and the field);
``Consumer.pending`` compares the files with the record of what the service last loaded
(``loaded_state``: the same record the NGINX and Mosquitto roles keep), and ``apply_consumers``
validates, applies each needed action once and records. A run that fails or is killed before the
record is written leaves the change owed, and the next run applies it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import signal

from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError
from ansible_collections.fleet.mtls.plugins.module_utils.host_layout import HostLayout, check_identity_name
from ansible_collections.fleet.mtls.plugins.module_utils.loaded_state import (
    RECORDS_DIR, SERVICE_GROUPS, fingerprints, pending_paths, record_loaded, record_path)

_CONSUMER_NAME = re.compile(r"^[a-z0-9][a-z0-9_.@-]{0,63}$")
# What changed, in the order actions are taken.
KINDS = ("identity", "trust_bundle", "crl", "config")
SERVICE_ACTIONS = ("reload", "restart", "signal")
_FIELDS = ("name", "role", "identities", "trust_bundle", "crl", "files", "config_files", "validate", "apply")
_ACTION_FIELDS = ("service", "action", "signal", "pid_file", "command")
# The service roles register NGINX and Mosquitto as consumers under these names (with ``role``
# naming them); their record is the role's own (``loaded_state.record_path``).
RESERVED_NAMES = tuple(service for dummy, service in SERVICE_GROUPS)


def role_of(name):
    """The role whose consumer ``name`` is (``fleet.mtls.nginx``), or None for a user's consumer."""
    return "fleet.mtls.%s" % name if name in RESERVED_NAMES else None


def consumer_record_path(name, records_dir=RECORDS_DIR):
    """Where the record of what consumer ``name`` last loaded lives: ``consumer-<name>.json`` beside
    NGINX's and Mosquitto's, which are the roles' own records (the same file the role's handler writes)."""
    if role_of(name):
        return record_path(name)
    return os.path.join(records_dir, "consumer-%s.json" % name)


def _name_problem(position, name):
    if isinstance(name, str) and _CONSUMER_NAME.match(name):
        return None
    return "consumer %d: name must be 1-64 lower-case letters, digits, '.', '_', '@' or '-', got %r" % (position + 1, name)


def consumer_records(consumers, records_dir=RECORDS_DIR):
    """{"consumer <name>": record path} of a declaration (names only; ``check_consumers`` checks the rest).
    The service roles' consumers are left out: their record is the service's, which the host's groups
    already name (``loaded_state.service_records``)."""
    if not consumers:
        return {}
    if not isinstance(consumers, list):
        raise MtlsError("mtls_consumers must be a list of consumers, got %r" % (consumers,))
    records = {}
    for position, entry in enumerate(consumers):
        name = entry.get("name") if isinstance(entry, dict) else None
        if _name_problem(position, name):
            raise MtlsError(_name_problem(position, name))
        if not role_of(name):
            records["consumer " + name] = consumer_record_path(name, records_dir)
    return records


class Action:
    """One way of applying a change: a systemd unit's reload/restart/signal, a signal to the process
    of a pid file, or a command (argv, no shell)."""

    def __init__(self, service=None, action=None, signal_name=None, pid_file=None, command=None):
        self.service = service
        self.action = action
        self.signal_name = signal_name
        self.pid_file = pid_file
        self.command = command

    def key(self):
        return (self.service, self.action, self.signal_name, self.pid_file, tuple(self.command or ()))

    def describe(self):
        if self.command:
            return "command %s" % " ".join(self.command)
        if self.pid_file:
            return "signal %s to the process in %s" % (self.signal_name, self.pid_file)
        if self.action == "signal":
            return "signal %s to %s" % (self.signal_name, self.service)
        return "%s %s" % (self.action, self.service)

    def to_dict(self):
        out = {"describe": self.describe()}
        for name in ("service", "action", "pid_file", "command"):
            if getattr(self, name):
                out[name] = getattr(self, name)
        if self.signal_name:
            out["signal"] = self.signal_name
        return out


def _signal_number(name):
    text = str(name).upper()
    if not text.startswith("SIG"):
        text = "SIG" + text
    number = getattr(signal, text, None)
    if not isinstance(number, int) or text.startswith("SIG_"):
        return None
    return number


def _check_action(where, spec, problems):
    if not isinstance(spec, dict):
        problems.append("%s: must be a mapping with service (and action) or command, got %r" % (where, spec))
        return None
    unknown = sorted(set(spec) - set(_ACTION_FIELDS))
    if unknown:
        problems.append("%s: unknown field(s) %s (known: %s)" % (where, ", ".join(unknown), ", ".join(_ACTION_FIELDS)))
        return None
    command = spec.get("command")
    if command is not None:
        if set(spec) - {"command"}:
            problems.append("%s: command is run as it is: give it alone, without %s"
                            % (where, ", ".join(sorted(set(spec) - {"command"}))))
            return None
        if not isinstance(command, list) or not command or not all(isinstance(a, str) and a for a in command):
            problems.append("%s.command: must be a non-empty list of arguments (argv, no shell), got %r" % (where, command))
            return None
        if not os.path.isabs(command[0]):
            problems.append("%s.command: the program must be an absolute path, got %r" % (where, command[0]))
            return None
        return Action(command=list(command))
    service, pid_file = spec.get("service"), spec.get("pid_file")
    if bool(service) == bool(pid_file):
        problems.append("%s: give exactly one of service (a systemd unit), pid_file or command" % where)
        return None
    if service is not None and (not isinstance(service, str) or not re.match(r"^[A-Za-z0-9:_.@\\-]+$", service)):
        problems.append("%s.service: %r is not a systemd unit name" % (where, service))
        return None
    if pid_file is not None and (not isinstance(pid_file, str) or not os.path.isabs(pid_file)):
        problems.append("%s.pid_file: must be an absolute path, got %r" % (where, pid_file))
        return None
    action = spec.get("action", "signal" if pid_file else "reload")
    if pid_file and action != "signal":
        problems.append("%s.action: a pid_file can only be sent a signal (action signal), got %r" % (where, action))
        return None
    if action not in SERVICE_ACTIONS:
        problems.append("%s.action: must be one of %s, got %r" % (where, ", ".join(SERVICE_ACTIONS), action))
        return None
    signal_name = spec.get("signal")
    if action == "signal":
        signal_name = signal_name or "HUP"
        if _signal_number(signal_name) is None:
            problems.append("%s.signal: %r is not a signal name" % (where, signal_name))
            return None
        signal_name = str(signal_name).upper().replace("SIG", "", 1) if str(signal_name).upper().startswith("SIG") \
            else str(signal_name).upper()
    elif signal_name is not None:
        problems.append("%s.signal: only with action signal (action is %s)" % (where, action))
        return None
    return Action(service=service, action=action, signal_name=signal_name, pid_file=pid_file)


class Consumer:
    """A checked consumer: its files by kind, its validate command and its actions by kind."""

    def __init__(self, name, files, validate, actions, identities, records_dir=RECORDS_DIR):
        self.name = name
        self.record_path = consumer_record_path(name, records_dir)
        self.files = files  # [(path, kind)] in declaration order, no repeats
        self.validate = validate
        self.actions = actions  # {kind or "default": Action}
        self.identities = identities

    def paths(self):
        return [path for path, dummy in self.files]

    def kind_of(self, path):
        return dict(self.files).get(path, "config")

    def pending(self):
        """(record_found, {kind: [paths]}, digests now) of what changed since the service last loaded its files."""
        current = fingerprints(self.paths())
        found, changed = pending_paths(current, self.record_path)
        by_kind = {}
        for path in changed:
            by_kind.setdefault(self.kind_of(path), []).append(path)
        return found, by_kind, current

    def actions_for(self, kinds):
        """The actions the changed ``kinds`` need, each once; a restart of a unit covers its reload or signal."""
        chosen = []
        for kind in KINDS:
            if kind in kinds:
                action = self.actions.get(kind) or self.actions["default"]
                if action.key() not in [a.key() for a in chosen]:
                    chosen.append(action)
        restarted = set(a.service for a in chosen if a.service and a.action == "restart")
        return [a for a in chosen if not (a.service in restarted and a.action != "restart")]

    def to_dict(self):
        return {"name": self.name, "files": [{"path": p, "kind": k} for p, k in self.files],
                "validate": self.validate, "identities": self.identities, "record": self.record_path,
                "apply": dict((kind, action.to_dict()) for kind, action in sorted(self.actions.items()))}


def missing_service_consumers(group_names, consumers):
    """Problems of a maintenance run on a host whose groups put NGINX or Mosquitto on it but whose
    consumers (declared and recorded) lack the role's: the service would not take up what the run
    changes. The role registers it when it runs (fleet.mtls.site)."""
    names = set(entry.get("name") for entry in consumers or [] if isinstance(entry, dict))
    groups = set(group_names or [])
    return ["%s is in group %s but %s is not registered as a consumer of its files yet: run fleet.mtls.site "
            "(or the %s role) once on it, then this playbook again" % (service, group, service, role_of(service))
            for group, service in SERVICE_GROUPS if group in groups and service not in names]


def identity_files(directory, identities):
    """{path: kind} of every file of the host's identities, its trust bundle and its CRL."""
    files = {}
    for name in identities:
        layout = HostLayout(directory, name)
        for path in (layout.certificate, layout.chain, layout.key):
            files[path] = "identity"
    layout = HostLayout(directory, "trust")
    files[layout.trust_bundle] = "trust_bundle"
    files[layout.crl] = "crl"
    return files


def check_consumers(consumers, directory, identities, records_dir=RECORDS_DIR):
    """Checked ``Consumer`` objects of a host's declaration; every problem (named by consumer and
    field) in one MtlsError. ``identities``: the names of the identities the host holds."""
    if consumers is None:
        return []
    if not isinstance(consumers, list):
        raise MtlsError("mtls_consumers must be a list of consumers, got %r" % (consumers,))
    known = identity_files(directory, identities)
    problems, checked, seen = [], [], set()
    for position, entry in enumerate(consumers):
        label = "consumer %d" % (position + 1)
        if not isinstance(entry, dict):
            problems.append("%s: must be a mapping, got %r" % (label, entry))
            continue
        name = entry.get("name")
        if _name_problem(position, name):
            problems.append(_name_problem(position, name))
            continue
        label = "consumer %s" % name
        before = len(problems)
        if entry.get("role") != role_of(name):
            if role_of(name):
                problems.append("%s: name: %s is the %s role's own consumer; name yours otherwise"
                                % (label, name, role_of(name)))
            else:
                problems.append("%s: role: only the fleet.mtls.nginx and fleet.mtls.mosquitto roles register "
                                "consumers of their own, got %r" % (label, entry.get("role")))
        if name in seen:
            problems.append("%s: name: declared twice" % label)
        seen.add(name)
        unknown = sorted(set(entry) - set(_FIELDS))
        if unknown:
            problems.append("%s: unknown field(s) %s (known: %s)" % (label, ", ".join(unknown), ", ".join(_FIELDS)))
        files = []

        def add(path, kind):
            if path not in [p for p, dummy in files]:
                files.append((path, kind))

        uses = entry.get("identities") or []
        if not isinstance(uses, list):
            problems.append("%s: identities: must be a list of identity names, got %r" % (label, uses))
            uses = []
        for identity in uses:
            try:
                check_identity_name(identity)
            except MtlsError as exc:
                problems.append("%s: identities: %s" % (label, exc))
                continue
            if identity not in identities:
                problems.append("%s: identities: %s is not an identity of this host (it has %s)"
                                % (label, identity, ", ".join(identities) or "none"))
                continue
            layout = HostLayout(directory, identity)
            for path in (layout.certificate, layout.chain, layout.key):
                add(path, "identity")
        for flag, kind in (("trust_bundle", "trust_bundle"), ("crl", "crl")):
            value = entry.get(flag, False)
            if not isinstance(value, bool):
                problems.append("%s: %s: must be true or false, got %r" % (label, flag, value))
            elif value:
                add([p for p, k in known.items() if k == kind][0], kind)
        for field, restricted in (("files", True), ("config_files", False)):
            paths = entry.get(field) or []
            if not isinstance(paths, list):
                problems.append("%s: %s: must be a list of absolute paths, got %r" % (label, field, paths))
                continue
            for path in paths:
                if not isinstance(path, str) or not os.path.isabs(path):
                    problems.append("%s: %s: %r is not an absolute path" % (label, field, path))
                elif restricted and os.path.normpath(path) not in known:
                    problems.append("%s: %s: %s is outside this host's identity files (the certificate, chain "
                                    "and key of %s, %s, %s); a file of the service's own goes in config_files"
                                    % (label, field, path, ", ".join(identities) or "no identity",
                                       HostLayout(directory, "trust").trust_bundle, HostLayout(directory, "trust").crl))
                elif restricted:
                    add(os.path.normpath(path), known[os.path.normpath(path)])
                elif os.path.normpath(path) in known:
                    problems.append("%s: config_files: %s is one of the host's identity files: list it in files"
                                    % (label, path))
                else:
                    add(os.path.normpath(path), "config")
        if not files and len(problems) == before:
            problems.append("%s: reads no file: give identities, trust_bundle, crl, files or config_files" % label)
        validate = entry.get("validate")
        if validate is not None and (not isinstance(validate, list) or not validate
                                     or not all(isinstance(a, str) and a for a in validate)
                                     or not os.path.isabs(validate[0])):
            problems.append("%s: validate: must be a command as a list of arguments, the program an absolute "
                            "path (no shell), got %r" % (label, validate))
            validate = None
        apply = entry.get("apply")
        actions = {}
        if not isinstance(apply, dict) or "default" not in apply:
            problems.append("%s: apply: must be a mapping with at least default (how to apply any change), got %r"
                            % (label, apply))
        else:
            for kind in sorted(apply):
                if kind != "default" and kind not in KINDS:
                    problems.append("%s: apply: unknown kind of change %r (known: default, %s)"
                                    % (label, kind, ", ".join(KINDS)))
                    continue
                action = _check_action("%s: apply.%s" % (label, kind), apply[kind], problems)
                if action is not None:
                    actions[kind] = action
        if len(problems) == before:
            checked.append(Consumer(name, files, validate, actions, [i for i in uses if i in identities], records_dir))
    if problems:
        raise MtlsError("; ".join(problems), problems=problems)
    return checked


def _run_checked(run, argv, what):
    rc, out, err = run(argv)
    if rc != 0:
        text = (err or out or "").strip().splitlines()
        raise MtlsError("%s failed (exit status %s)%s" % (what, rc, (": " + " / ".join(text[-3:])) if text else ""))
    return out


def _unit_known(run, service):
    rc, out, dummy = run(["systemctl", "show", "--property=LoadState", "--value", service])
    return rc == 0 and out.strip() not in ("", "not-found")


def perform(action, run):
    """Take ``action`` now (``run(argv) -> (rc, stdout, stderr)``). Raises MtlsError on failure."""
    if action.command:
        _run_checked(run, action.command, action.describe())
        return
    if action.pid_file:
        try:
            with open(action.pid_file) as handle:
                pid = int(handle.read().split()[0])
        except (OSError, ValueError, IndexError) as exc:
            raise MtlsError("%s: cannot read a process id from %s (%s)" % (action.describe(), action.pid_file, exc))
        try:
            os.kill(pid, _signal_number(action.signal_name))
        except OSError as exc:
            raise MtlsError("%s: process %d: %s" % (action.describe(), pid, exc.strerror or exc))
        return
    if not _unit_known(run, action.service):
        raise MtlsError("unknown service %s: systemd has no such unit" % action.service, service=action.service)
    if action.action == "signal":
        argv = ["systemctl", "kill", "--kill-whom=main", "--signal=SIG%s" % action.signal_name, action.service]
    else:
        argv = ["systemctl", action.action, action.service]
    _run_checked(run, argv, action.describe())


def apply_consumers(consumers, run, check_mode=False):
    """Apply what each consumer owes: validate, take each needed action once, record what it loaded.

    Returns {"changed", "consumers": [{name, owed, record_found, changed_files, actions, applied}],
    "failed": [{"name", "msg"}]}. A consumer that fails (its validate command or an action) is left
    owing the change (no record is written) and the others are still applied; the caller fails the
    task when ``failed`` is not empty.
    """
    results, failed = [], []
    for consumer in consumers:
        found, by_kind, current = consumer.pending()
        owed = (not found) or bool(by_kind)
        kinds = set(KINDS) if not found else set(by_kind)
        actions = consumer.actions_for(kinds) if owed else []
        entry = {"name": consumer.name, "owed": owed, "record_found": found,
                 "changed_files": dict((k, v) for k, v in sorted(by_kind.items())) if found else {},
                 "actions": [a.describe() for a in actions], "applied": False}
        results.append(entry)
        if not owed or check_mode:
            continue
        try:
            if consumer.validate:
                _run_checked(run, consumer.validate, "validate command %s" % " ".join(consumer.validate))
            for action in actions:
                perform(action, run)
        except MtlsError as exc:
            failed.append({"name": consumer.name, "msg": "consumer %s: %s; the change is still owed and is applied "
                           "by the next run" % (consumer.name, exc)})
            continue
        record_loaded(current, consumer.record_path)
        entry["applied"] = True
    return {"changed": any(r["owed"] for r in results), "consumers": results, "failed": failed}
