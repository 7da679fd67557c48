# -*- coding: utf-8 -*-
"""consumers: the declaration check (every problem names the consumer and the field), what a consumer
owes against its record, and applying it once with real commands and a real process for signals."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from ansible_collections.fleet.mtls.plugins.module_utils import consumers as lib
from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError


def run(argv):
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    return done.returncode, done.stdout, done.stderr


@pytest.fixture
def host(tmp_path):
    directory = tmp_path / "mtls"
    for name in ("certs", "private"):
        (directory / name).mkdir(parents=True)
    for identity in ("db", "api"):
        (directory / "certs" / (identity + ".crt")).write_text("cert %s\n" % identity)
        (directory / "certs" / (identity + ".chain.pem")).write_text("chain %s\n" % identity)
        (directory / "private" / (identity + ".key")).write_text("key %s\n" % identity)
    (directory / "trust-bundle.pem").write_text("bundle 1\n")
    (directory / "crl.pem").write_text("crl 1\n")
    return str(directory), str(tmp_path / "records"), tmp_path


def logger(tmp_path, name="applied.log"):
    """A command that appends its argument to a log: proves an action ran, and how often."""
    log = tmp_path / name
    return [sys.executable, "-c", "import sys; open(sys.argv[1], 'a').write(sys.argv[2] + '\\n')", str(log)], log


def checked(host, declaration, identities=("db", "api")):
    directory, records, dummy = host
    return lib.check_consumers(declaration, directory, list(identities), records)


def test_a_consumer_is_applied_once_then_only_when_a_file_it_reads_changes(host):
    directory, dummy, tmp_path = host
    command, log = logger(tmp_path)
    consumer = checked(host, [{"name": "postgresql", "identities": ["db"], "trust_bundle": True, "crl": True,
                               "apply": {"default": {"command": command + ["reload"]}}}])
    assert [k for dummy_path, k in consumer[0].files] == ["identity"] * 3 + ["trust_bundle", "crl"]
    first = lib.apply_consumers(consumer, run)
    assert first["changed"] and first["consumers"][0]["applied"] and not first["consumers"][0]["record_found"]
    assert log.read_text() == "reload\n"
    again = lib.apply_consumers(consumer, run)
    assert not again["changed"] and log.read_text() == "reload\n"
    # A file of another identity is not this consumer's business.
    open(os.path.join(directory, "certs", "api.crt"), "a").write("renewed\n")
    assert not lib.apply_consumers(consumer, run)["changed"]
    open(os.path.join(directory, "certs", "db.crt"), "a").write("renewed\n")
    renewed = lib.apply_consumers(consumer, run)
    assert renewed["consumers"][0]["changed_files"] == {"identity": [os.path.join(directory, "certs", "db.crt")]}
    assert log.read_text() == "reload\nreload\n"


def test_each_kind_of_change_takes_its_action_once_and_a_restart_covers_a_reload(host, tmp_path):
    directory = host[0]
    command, log = logger(tmp_path)
    consumer = checked(host, [{"name": "app", "identities": ["api"], "trust_bundle": True, "crl": True,
                               "apply": {"default": {"command": command + ["reload"]},
                                         "trust_bundle": {"command": command + ["restart"]}}}])
    lib.apply_consumers(consumer, run)  # first run: every kind, each action once
    assert sorted(log.read_text().split()) == ["reload", "restart"]
    log.write_text("")
    open(os.path.join(directory, "crl.pem"), "a").write("crl 2\n")
    open(os.path.join(directory, "private", "api.key"), "a").write("new key\n")
    lib.apply_consumers(consumer, run)
    assert log.read_text() == "reload\n"  # identity and crl share the default action: once
    unit = checked(host, [{"name": "svc", "crl": True, "trust_bundle": True,
                           "apply": {"default": {"service": "svc"}, "trust_bundle": {"service": "svc",
                                                                                     "action": "restart"}}}])[0]
    assert [a.describe() for a in unit.actions_for({"crl", "trust_bundle"})] == ["restart svc"]
    assert [a.describe() for a in unit.actions_for({"crl"})] == ["reload svc"]


def test_a_failing_validate_command_applies_nothing_and_leaves_the_change_owed(host, tmp_path):
    command, log = logger(tmp_path)
    gate = tmp_path / "config-ok"
    validate = [sys.executable, "-c", "import os, sys; sys.exit(0 if os.path.exists(sys.argv[1]) else 3)", str(gate)]
    consumer = checked(host, [{"name": "proxy", "crl": True, "validate": validate,
                               "apply": {"default": {"command": command + ["reload"]}}}])
    refused = lib.apply_consumers(consumer, run)
    assert refused["failed"] and "consumer proxy: validate command" in refused["failed"][0]["msg"]
    assert "exit status 3" in refused["failed"][0]["msg"] and "still owed" in refused["failed"][0]["msg"]
    assert not log.exists() and not os.path.exists(consumer[0].record_path)
    gate.write_text("")
    assert lib.apply_consumers(consumer, run)["consumers"][0]["applied"] and log.read_text() == "reload\n"


def test_one_failing_consumer_does_not_stop_the_others(host, tmp_path):
    command, log = logger(tmp_path)
    declared = checked(host, [{"name": "broken", "crl": True, "apply": {"default": {"command": ["/bin/false"]}}},
                              {"name": "fine", "crl": True, "apply": {"default": {"command": command + ["ok"]}}}])
    result = lib.apply_consumers(declared, run)
    assert [f["name"] for f in result["failed"]] == ["broken"]
    assert "command /bin/false failed (exit status 1)" in result["failed"][0]["msg"]
    assert [c["applied"] for c in result["consumers"]] == [False, True] and log.read_text() == "ok\n"


def test_a_signal_reaches_the_process_of_a_pid_file(host, tmp_path):
    seen = tmp_path / "got-hup"
    script = ("import signal, sys, time\n"
              "signal.signal(signal.SIGHUP, lambda *a: open(sys.argv[1], 'w').write('hup'))\n"
              "open(sys.argv[2], 'w').write('ready')\n"
              "deadline = time.time() + 30\n"
              "while time.time() < deadline: time.sleep(0.05)\n")
    ready = tmp_path / "ready"
    process = subprocess.Popen([sys.executable, "-c", script, str(seen), str(ready)])
    try:
        for dummy in range(200):
            if ready.exists():
                break
            time.sleep(0.05)
        pid_file = tmp_path / "svc.pid"
        pid_file.write_text("%d\n" % process.pid)
        consumer = checked(host, [{"name": "daemon", "trust_bundle": True,
                                   "apply": {"default": {"pid_file": str(pid_file)}}}])
        assert consumer[0].actions["default"].describe() == "signal HUP to the process in %s" % pid_file
        assert lib.apply_consumers(consumer, run)["consumers"][0]["applied"]
        for dummy in range(100):
            if seen.exists():
                break
            time.sleep(0.05)
        assert seen.read_text() == "hup"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
    stale = checked(host, [{"name": "gone", "crl": True, "apply": {"default": {"pid_file": str(tmp_path / "none")}}}])
    failed = lib.apply_consumers(stale, run)["failed"]
    assert "cannot read a process id from %s" % (tmp_path / "none") in failed[0]["msg"]


def test_check_mode_reports_what_is_owed_and_changes_nothing(host, tmp_path):
    command, log = logger(tmp_path)
    consumer = checked(host, [{"name": "app", "crl": True, "apply": {"default": {"command": command + ["x"]}}}])
    result = lib.apply_consumers(consumer, run, check_mode=True)
    assert result["changed"] and result["consumers"][0]["actions"] == ["command %s x" % " ".join(command)]
    assert not log.exists() and not os.path.exists(consumer[0].record_path)


@pytest.mark.parametrize("declaration, message", [
    ({"name": "Bad Name", "crl": True, "apply": {"default": {"service": "x"}}}, "consumer 1: name must be"),
    ({"name": "nginx", "crl": True, "apply": {"default": {"service": "x"}}}, "consumer nginx: name: nginx is the fleet.mtls.nginx role's"),
    ({"name": "pg", "identities": ["web"], "apply": {"default": {"service": "x"}}},
     "consumer pg: identities: web is not an identity of this host (it has db, api)"),
    ({"name": "pg", "files": ["/etc/passwd"], "apply": {"default": {"service": "x"}}},
     "consumer pg: files: /etc/passwd is outside this host's identity files"),
    ({"name": "pg", "crl": True, "config_files": ["relative.conf"], "apply": {"default": {"service": "x"}}},
     "consumer pg: config_files: 'relative.conf' is not an absolute path"),
    ({"name": "pg", "apply": {"default": {"service": "x"}}}, "consumer pg: reads no file"),
    ({"name": "pg", "crl": True}, "consumer pg: apply: must be a mapping with at least default"),
    ({"name": "pg", "crl": True, "apply": {"default": {"service": "x"}, "cert": {"service": "x"}}},
     "consumer pg: apply: unknown kind of change 'cert'"),
    ({"name": "pg", "crl": True, "apply": {"default": {"service": "x", "action": "bounce"}}},
     "consumer pg: apply.default.action: must be one of reload, restart, signal, got 'bounce'"),
    ({"name": "pg", "crl": True, "apply": {"default": {"service": "x", "action": "signal", "signal": "NOPE"}}},
     "consumer pg: apply.default.signal: 'NOPE' is not a signal name"),
    ({"name": "pg", "crl": True, "apply": {"default": {"command": "systemctl reload pg"}}},
     "consumer pg: apply.default.command: must be a non-empty list of arguments"),
    ({"name": "pg", "crl": True, "validate": ["pg_validate"], "apply": {"default": {"service": "x"}}},
     "consumer pg: validate: must be a command as a list of arguments, the program an absolute path"),
    ({"name": "pg", "crl": True, "reload": "yes", "apply": {"default": {"service": "x"}}},
     "consumer pg: unknown field(s) reload"),
])
def test_bad_declarations_name_the_consumer_and_the_field(host, declaration, message):
    with pytest.raises(MtlsError) as caught:
        checked(host, [declaration])
    assert message in str(caught.value)


def test_every_problem_is_reported_at_once_and_duplicates_are_refused(host):
    with pytest.raises(MtlsError) as caught:
        checked(host, [{"name": "a", "crl": True, "apply": {"default": {"service": "a"}}},
                       {"name": "a", "crl": True, "apply": {"default": {"service": "a"}}},
                       {"name": "b", "apply": {"default": {"service": "b"}}}])
    assert caught.value.details["problems"] == ["consumer a: name: declared twice", "consumer b: reads no file: "
                                                "give identities, trust_bundle, crl, files or config_files"]


# --- NGINX and Mosquitto as consumers registered by their roles --------------------------------

def test_a_service_role_registers_its_consumer_under_its_own_record(host):
    directory = host[0]
    nginx = {"name": "nginx", "role": "fleet.mtls.nginx",
             "files": [os.path.join(directory, "certs", "api.chain.pem"), os.path.join(directory, "private", "api.key"),
                       os.path.join(directory, "trust-bundle.pem"), os.path.join(directory, "crl.pem")],
             "config_files": ["/etc/nginx/sites-available/fleet-mtls.conf"],
             "validate": ["/usr/sbin/nginx", "-t", "-q"], "apply": {"default": {"service": "nginx"}}}
    consumer = checked(host, [nginx])[0]
    # The role's handler and the consumer keep one record: what either loaded, the other sees.
    assert consumer.record_path == "/var/lib/fleet-mtls/loaded/nginx.json"
    assert consumer.kind_of("/etc/nginx/sites-available/fleet-mtls.conf") == "config"
    assert consumer.kind_of(os.path.join(directory, "crl.pem")) == "crl"
    # ... and the host's check reports it under the service's name only (service_records), not twice.
    assert lib.consumer_records([nginx, {"name": "postgresql"}], "/r") == {"consumer postgresql": "/r/consumer-postgresql.json"}


@pytest.mark.parametrize("declaration, message", [
    ({"name": "mosquitto", "crl": True, "apply": {"default": {"service": "x"}}},
     "consumer mosquitto: name: mosquitto is the fleet.mtls.mosquitto role's own consumer; name yours otherwise"),
    ({"name": "nginx", "role": "fleet.mtls.mosquitto", "crl": True, "apply": {"default": {"service": "x"}}},
     "consumer nginx: name: nginx is the fleet.mtls.nginx role's own consumer"),
    ({"name": "pg", "role": "fleet.mtls.nginx", "crl": True, "apply": {"default": {"service": "x"}}},
     "consumer pg: role: only the fleet.mtls.nginx and fleet.mtls.mosquitto roles register consumers of their own, "
     "got 'fleet.mtls.nginx'"),
])
def test_only_the_service_roles_own_their_names(host, declaration, message):
    with pytest.raises(MtlsError) as caught:
        checked(host, [declaration])
    assert message in caught.value.message


def test_a_maintenance_run_refuses_a_service_host_whose_role_never_registered_it():
    recorded = [{"name": "nginx", "role": "fleet.mtls.nginx"}, {"name": "postgresql"}]
    assert lib.missing_service_consumers(["mtls_nginx", "web"], recorded) == []
    assert lib.missing_service_consumers(["mtls_clients"], []) == []
    problems = lib.missing_service_consumers(["mtls_nginx", "mtls_mosquitto"], recorded)
    assert problems == ["mosquitto is in group mtls_mosquitto but mosquitto is not registered as a consumer of its "
                        "files yet: run fleet.mtls.site (or the fleet.mtls.mosquitto role) once on it, then this "
                        "playbook again"]
