# -*- coding: utf-8 -*-
"""module_common.short_invocation and run_module(bulky=...) on a real AnsibleModule."""
from __future__ import annotations

import json

import pytest
from ansible.module_utils import basic
from ansible.module_utils.basic import AnsibleModule

try:
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # ansible-core before 2.19 (make compat runs 2.16): the arguments AnsibleModule reads
    import contextlib

    @contextlib.contextmanager
    def patch_module_args(args):
        saved = basic._ANSIBLE_ARGS
        basic._ANSIBLE_ARGS = json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode()
        try:
            yield
        finally:
            basic._ANSIBLE_ARGS = saved

from ansible_collections.fleet.mtls.plugins.module_utils import module_common

SECRET = "unit-test-ca-passphrase"
SPEC = dict(
    ca_path=dict(type="path", required=True),
    ca_passphrase=dict(type="str", no_log=True),
    requests=dict(type="list", elements="dict", default=[]),
    validity_days=dict(type="int", default=90),
    key_dir=dict(type="path"),
)
REQUESTS = [{"identity": "web", "host": "host%04d" % n, "csr": "CSR %d" % n} for n in range(7)]


def build_module(args):
    with patch_module_args(args):
        return AnsibleModule(argument_spec=SPEC, supports_check_mode=True)


def test_bulky_option_is_its_count_secret_is_the_placeholder_rest_unchanged():
    module = build_module({"ca_path": "/ca", "ca_passphrase": SECRET, "requests": REQUESTS, "validity_days": 30})
    args = module_common.short_invocation(module, bulky=("requests",))["module_args"]
    assert args == {"ca_path": "/ca", "ca_passphrase": module_common.NO_LOG_PLACEHOLDER,
                    "requests": {"count": 7}, "validity_days": 30, "key_dir": None}
    assert SECRET not in json.dumps(args)


def test_without_bulky_the_list_is_echoed_and_unset_options_stay_none():
    module = build_module({"ca_path": "/ca", "requests": REQUESTS})
    args = module_common.short_invocation(module)["module_args"]
    assert args["requests"] == REQUESTS
    assert args["ca_passphrase"] is None
    assert args["key_dir"] is None


def test_empty_bulky_list_counts_zero():
    module = build_module({"ca_path": "/ca", "ca_passphrase": SECRET})
    assert module_common.short_invocation(module, bulky=("requests",))["module_args"]["requests"] == {"count": 0}


def run_and_read(args, bulky, capsys, action=None):
    # exit_json reads the serialisation profile that patch_module_args sets: stay inside it.
    with patch_module_args(args), pytest.raises(SystemExit) as stop:
        module = AnsibleModule(argument_spec=SPEC, supports_check_mode=True)
        module_common.run_module(module, action or (lambda m: {"changed": True, "issued": 1}),
                                 needs_cryptography=False, bulky=bulky)
    assert stop.value.code == 0
    return json.loads(capsys.readouterr().out)


def test_run_module_exits_with_the_short_invocation(capsys):
    result = run_and_read({"ca_path": "/ca", "ca_passphrase": SECRET, "requests": REQUESTS}, ("requests",), capsys)
    assert result["changed"] is True and result["issued"] == 1
    assert result["invocation"]["module_args"]["requests"] == {"count": 7}
    assert result["invocation"]["module_args"]["ca_passphrase"] == module_common.NO_LOG_PLACEHOLDER
    assert SECRET not in json.dumps(result)


def test_run_module_without_bulky_leaves_ansibles_own_echo(capsys):
    result = run_and_read({"ca_path": "/ca", "ca_passphrase": SECRET, "requests": REQUESTS}, (), capsys)
    assert result["invocation"]["module_args"]["requests"] == REQUESTS
    assert SECRET not in json.dumps(result)


def test_run_module_keeps_an_invocation_the_action_gave(capsys):
    given = {"module_args": {"ca_path": "/ca"}}
    result = run_and_read({"ca_path": "/ca", "requests": REQUESTS}, ("requests",), capsys,
                          action=lambda m: {"changed": False, "invocation": given})
    assert result["invocation"] == given
