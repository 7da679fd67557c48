# -*- coding: utf-8 -*-
"""fleet.mtls.verify's probes and expectations are the Python decision (module_utils.nginx_access).

The task "List the services to probe" is taken from playbooks/verify.yml as it is and run by
ansible-playbook over an inventory of service hosts (their hostvars are all it reads; nothing is
contacted), for a client whose subject is on a site's allow_dn while a location of that site has
its own allow_cn: NGINX answers 403 there, and verify must expect it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import yaml

from conftest import REPO, _ansible_playbook, _collections_path, import_library

nginx_access = import_library("nginx_access")

SITES = [
    {"name": "api", "server_name": ["api.test"], "allow_dn": ["CN=ops,O=Example"], "locations": [
        {"path": "/", "return": '200 "ok"'},
        {"path": "/billing/", "allow_cn": ["billing"], "return": '200 "billing"'},
        {"path": "= /health", "allow_cn": [], "return": '200 "up"'}]},
    {"name": "portal", "server_name": ["portal.test"], "listen": 8444, "verify_client": "optional", "locations": [
        {"path": "/", "root": "/srv/portal"},
        {"path": "/members/", "require_client_cert": True, "return": '200 "m"'}]},
]


def _verify_task(name):
    with open(os.path.join(REPO, "playbooks", "verify.yml")) as handle:
        plays = yaml.safe_load(handle)
    return next(task for task in plays[0]["tasks"] if task["name"] == name)


def _targets(tmp_path, subject, common_name):
    inventory = {"all": {
        "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
        "children": {
            "mtls_nginx": {"hosts": {"web1": {"ansible_host": "192.0.2.10", "mtls_nginx_sites": SITES}}},
            "mtls_mosquitto": {"hosts": {"mq1": {"mtls_mosquitto_port": 18883}}},
            "mtls_clients": {"hosts": {"client1": {}}}}}}
    play = [{"hosts": "mtls_clients", "gather_facts": False, "tasks": [
        {"name": "client identity", "ansible.builtin.set_fact": {
            "_mtls_verify_subject": subject, "_mtls_verify_common_name": common_name}},
        _verify_task("List the services to probe"),
        {"name": "show", "ansible.builtin.copy": {
            "content": "{{ _mtls_verify_targets | to_json }}", "dest": str(tmp_path / "targets.json")}}]}]
    (tmp_path / "inventory.json").write_text(json.dumps(inventory))
    (tmp_path / "play.yml").write_text(json.dumps(play))
    env = dict(os.environ)
    env.update({"ANSIBLE_COLLECTIONS_PATH": _collections_path(), "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_LOCALHOST_WARNING": "false", "ANSIBLE_PYTHON_INTERPRETER": sys.executable})
    proc = subprocess.run([_ansible_playbook(), "-i", str(tmp_path / "inventory.json"), str(tmp_path / "play.yml")],
                          capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=300, check=False)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return json.loads((tmp_path / "targets.json").read_text())


def test_verify_expects_what_nginx_answers_for_location_allowlists(tmp_path):
    targets = _targets(tmp_path, "CN=ops,O=Example", "ops")
    hosts = [{"inventory_hostname": "web1", "ansible_host": "192.0.2.10", "mtls_nginx_sites": SITES}]
    brokers = [{"inventory_hostname": "mq1", "mtls_mosquitto_port": 18883}]
    assert targets == nginx_access.verify_targets(hosts, brokers, subject="CN=ops,O=Example", common_name="ops")
    expect = {(t["label"], t["http_path"]): (t["with_identity"], t["without_identity"]) for t in targets}
    assert expect == {
        ("web1:443 (api) /", "/"): ("accepted", "rejected"),
        # The location's own allow_cn replaces the site's allow_dn: NGINX answers 403 to ops.
        ("web1:443 (api) /billing/", "/billing/"): ("rejected", "rejected"),
        # An own empty list opens the location to every verified client (verify_client on: 400 without one).
        ("web1:443 (api) = /health", "/health"): ("accepted", "rejected"),
        ("web1:8444 (portal) /", "/"): ("accepted", "accepted"),
        ("web1:8444 (portal) /members/", "/members/"): ("accepted", "rejected"),
        ("mq1:18883 (mosquitto)", "/"): ("accepted", "rejected"),
    }
    assert targets[0]["host"] == "192.0.2.10" and targets[0]["server_name"] == "api.test"


def test_verify_with_only_a_common_name(tmp_path):
    """mtls_verify_identity given: the subject is unknown, CN lists match by name."""
    targets = _targets(tmp_path, "", "billing")
    assert [t["with_identity"] for t in targets] == ["rejected", "accepted", "accepted", "accepted", "accepted",
                                                     "accepted"]
