# -*- coding: utf-8 -*-
"""Bad role inputs, each through real ansible-playbook (include_role on localhost, check mode):
the run must fail before anything changes, with a message naming the variable and the offending
item, never a generic "One or more items failed" or a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import _ansible_playbook, _collections_path

SITE = {"name": "api", "server_name": ["api.test"], "return": '200 "ok"'}


def _site(**changes):
    site = dict(SITE)
    site.update(changes)
    return [site]


def _location(**location):
    return _site(**{"return": None, "locations": [location]})


IDENTITY = {"name": "app", "profile": "client"}

# (id, role, variables, words the failure must contain)
CASES = [
    # fleet.mtls.nginx
    ("nginx verify_client unquoted on", "nginx", {"mtls_nginx_sites": _site(verify_client=True)},
     ["verify_client", "on, optional", "True"]),
    ("nginx verify_client off", "nginx", {"mtls_nginx_sites": _site(verify_client="off")}, ["verify_client", "off"]),
    ("nginx site without name", "nginx", {"mtls_nginx_sites": [{"server_name": ["a.test"], "return": "200"}]},
     ["name", "mtls_nginx_sites"]),
    ("nginx listen not a port", "nginx", {"mtls_nginx_sites": _site(listen="https")}, ["listen", "https"]),
    ("nginx unknown site key", "nginx", {"mtls_nginx_sites": _site(proxypass="http://x")}, ["proxypass"]),
    ("nginx site name with dash", "nginx", {"mtls_nginx_sites": _site(name="bad-name")}, ['"bad-name"', "name must use only"]),
    ("nginx duplicate site names", "nginx", {"mtls_nginx_sites": _site() + _site(server_name=["b.test"])},
     ['"api"', "unique"]),
    ("nginx site serves two things", "nginx", {"mtls_nginx_sites": _site(root="/srv")}, ["mutually exclusive", "root", "return"]),
    ("nginx site serves nothing", "nginx", {"mtls_nginx_sites": _site(**{"return": None})},
     ['site "api"', "exactly one of proxy_pass, root or return", "none"]),
    # The mode decides what a location needs (managed: a path; snippets: a name), so Python checks it.
    ("nginx location without path", "nginx", {"mtls_nginx_sites": _location(root="/srv")},
     ['site "api"', "every location needs a path", "/srv"]),
    ("nginx location serves nothing", "nginx", {"mtls_nginx_sites": _location(path="/")},
     ['site "api" location "/"', "exactly one of proxy_pass, root or return", "none"]),
    ("nginx location serves two things", "nginx", {"mtls_nginx_sites": _location(path="/", root="/srv", proxy_pass="http://x")},
     ["mutually exclusive", "proxy_pass", "root"]),
    ("nginx allow_cn with a DN", "nginx", {"mtls_nginx_sites": _site(allow_cn=["CN=app,O=Example"])},
     ['"CN=app,O=Example"', "allow_cn", 'site "api"']),
    ("nginx require_client_cert not a bool", "nginx",
     {"mtls_nginx_sites": _location(path="/", root="/srv", require_client_cert="sometimes")}, ["require_client_cert", "sometimes"]),
    ("nginx unknown TLS protocol", "nginx", {"mtls_nginx_tls_protocols": ["TLSv1.0"]}, ["mtls_nginx_tls_protocols", "TLSv1.0"]),
    ("nginx disable_default_site maybe", "nginx", {"mtls_nginx_disable_default_site": "maybe"},
     ["mtls_nginx_disable_default_site", "maybe"]),
    ("nginx verify depth not a number", "nginx", {"mtls_nginx_verify_depth": "deep"}, ["mtls_nginx_verify_depth", "int"]),
    # Check mode does not skip the missing-identity check: nothing in this play would install it.
    ("nginx identity missing in check mode", "nginx", {"mtls_nginx_sites": _site(identity="absent-identity")},
     ["absent-identity.chain.pem", "absent-identity.key", "fleet.mtls.identity"]),
    # fleet.mtls.mosquitto
    ("mosquitto ACL access all", "mosquitto", {"mtls_mosquitto_acls": {"sensor": [{"topic": "t/#", "access": "all"}]}},
     ['mtls_mosquitto_acls["sensor"]', '"all"', "access"]),
    ("mosquitto ACL rule without topic", "mosquitto", {"mtls_mosquitto_acls": {"sensor": [{"access": "read"}]}},
     ['mtls_mosquitto_acls["sensor"]', "topic"]),
    ("mosquitto ACL identity with spaces", "mosquitto", {"mtls_mosquitto_acls": {" sensor": [{"topic": "t", "access": "read"}]}},
     ['mtls_mosquitto_acls[" sensor"]', "CN"]),
    ("mosquitto pattern topic two lines", "mosquitto", {"mtls_mosquitto_acl_patterns": [{"topic": "a\nb", "access": "read"}]},
     ["mtls_mosquitto_acl_patterns", "topic"]),
    # fleet.mtls.identity
    ("identity unknown profile", "identity", {"mtls_identities": [dict(IDENTITY, profile="peer")]}, ["profile", "peer"]),
    ("identity unknown key type", "identity", {"mtls_identities": [dict(IDENTITY, key_type="dsa")]}, ["key_type", "dsa"]),
    ("identity without name", "identity", {"mtls_identities": [{"profile": "client"}]}, ["name", "mtls_identities"]),
    ("identity name with slash", "identity", {"mtls_identities": [dict(IDENTITY, name="a/b")]}, ['"a/b"', "name must be"]),
    ("identity duplicate names", "identity", {"mtls_identities": [IDENTITY, IDENTITY]}, ['"app"', "unique"]),
    ("identity sans as one string", "identity", {"mtls_identities": [dict(IDENTITY, sans="DNS:a.test")]},
     ['"DNS:a.test"', "sans must be a list"]),
    ("identity validity not a number", "identity", {"mtls_identities": [dict(IDENTITY, validity_days="long")]},
     ["validity_days", "int", "mtls_identities"]),
    # fleet.mtls.ca
    ("ca short passphrase", "ca", {"mtls_ca_passphrase": "short"}, ["mtls_ca_passphrase", "8 characters"]),
    ("ca unknown key type", "ca", {"mtls_ca_passphrase": "long-enough-passphrase", "mtls_ca_key_type": "dsa"},
     ["mtls_ca_key_type", "dsa"]),
    # fleet.mtls.rotation_schedule
    ("schedule unknown method", "rotation_schedule", {"mtls_rotation_schedule_method": "anacron"},
     ["mtls_rotation_schedule_method", "anacron"]),
    ("schedule name with space", "rotation_schedule", {"mtls_rotation_schedule_name": "a b"},
     ["mtls_rotation_schedule_name", '"a b"']),
]


def _run_role(tmp_path, role, variables):
    variables = dict(variables)
    variables.setdefault("mtls_dir", str(tmp_path / "mtls"))
    variables.setdefault("mtls_ca_dir", str(tmp_path / "ca"))
    variables.setdefault("mtls_identity_gather_facts", False)
    play = [{"hosts": "localhost", "gather_facts": False, "connection": "local", "check_mode": True,
             "tasks": [{"name": "role under test", "ansible.builtin.include_role": {"name": "fleet.mtls.%s" % role},
                        "vars": variables}]}]
    playbook = tmp_path / "play.yml"
    playbook.write_text(json.dumps(play))
    env = dict(os.environ)
    env.update({"ANSIBLE_COLLECTIONS_PATH": _collections_path(), "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_STDOUT_CALLBACK": "default", "ANSIBLE_LOCALHOST_WARNING": "false",
                "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false", "ANSIBLE_PYTHON_INTERPRETER": sys.executable})
    return subprocess.run([_ansible_playbook(), str(playbook)], capture_output=True, text=True, env=env,
                          cwd=str(tmp_path), timeout=600, check=False)


@pytest.mark.parametrize("role, variables, words", [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_bad_role_input_is_refused_by_name(tmp_path, role, variables, words):
    proc = _run_role(tmp_path, role, variables)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output[-3000:]
    failures = [line for line in output.splitlines() if line.startswith(("fatal:", "failed:"))]
    assert failures, output[-3000:]
    assert "One or more items failed" not in output, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    # The message of the failed task (json-escaped on that line) names every word.
    message = "\n".join(failures).replace('\\"', '"').replace("\\n", "\n")
    for word in words:
        assert word in message, (word, message[-3000:])
    assert not (tmp_path / "mtls").exists() and not (tmp_path / "ca").exists()


def test_a_good_site_passes_the_checks(tmp_path):
    """The control case: the same site, quoted `on`, gets past every input check in check mode and
    stops only at the missing identity files (nothing installed them)."""
    proc = _run_role(tmp_path, "nginx", {"mtls_nginx_sites": _site(verify_client="on", allow_cn=["app"])})
    output = proc.stdout + proc.stderr
    assert "Check the site definitions" in output
    assert "Stop when a file the sites need is missing" in output
    assert "chain.pem" in output and "verify_client" not in output.split("Stop when a file")[1]
