# -*- coding: utf-8 -*-
"""Bad-input matrix for the certificate module: one row per bad input, each with the fragment its
error message must contain. Every row runs the real module (its own process, JSON arguments, the
way Ansible runs it) against a real CA store and asserts: the module fails, the message names the
problem (and the offending request, identity and host when a request is at fault), the passphrase
is not in the output, and every byte under the CA directory is unchanged.

Add a row for each defect found: (id, changes to the bad request, changes to the module options,
message fragment). A request change of None removes the key.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from ansible_collections.fleet.mtls.plugins.module_utils import ca_store
from ansible_collections.fleet.mtls.plugins.module_utils.issuance import sign_batch
from ansible_collections.fleet.mtls.plugins.module_utils.names import build_name_constraints

from conftest import collections_root
from issuance_helpers import ISSUING_PASS, ROOT_PASS, make_csr, make_hostile_csr, tree_digest

GOOD_CSR = make_csr("ignored.example.com")

MATRIX = [
    # Names (issue 15)
    ("bare wildcard", {"sans": ["DNS:*"]}, {}, "bare wildcard"),
    ("empty label", {"sans": ["DNS:evil..example"]}, {}, "empty label"),
    ("space in DNS name", {"sans": ["DNS:a b.example"]}, {}, "has whitespace"),
    ("NUL in DNS name", {"sans": ["DNS:a\x00b.example"]}, {}, "control character (U+0000)"),
    ("NUL in URI", {"sans": ["URI:https://a\x00b.example/"]}, {}, "control character (U+0000"),
    ("non-ASCII URI", {"sans": ["URI:https://bücher.example/"]}, {}, "non-ASCII characters"),
    ("wildcard on public suffix", {"sans": ["DNS:*.co.uk"]}, {}, "public suffix 'co.uk'"),
    ("wildcard on TLD", {"sans": ["DNS:*.com"]}, {}, "at least two labels"),
    ("wildcard not leftmost", {"sans": ["DNS:a.*.example.com"]}, {}, "whole leftmost label"),
    ("IP in DNS SAN", {"sans": ["DNS:192.0.2.1"]}, {}, "is an IP address"),
    ("numeric TLD", {"sans": ["DNS:10.0.0.256"]}, {}, "last label is all digits"),
    ("bad IP", {"sans": ["IP:999.1.1.1"]}, {}, "invalid IP address"),
    ("URI without authority", {"sans": ["URI:urn:example:x"]}, {}, "needs an authority"),
    ("URI with raw brackets", {"sans": ["URI:https://a.example/<script>"]}, {}, "must be percent-encoded"),
    ("SPIFFE upper-case trust domain", {"sans": ["URI:spiffe://Example.org/x"]}, {}, "trust domain"),
    ("SPIFFE empty segment", {"sans": ["URI:spiffe://example.org//x"]}, {}, "path segment"),
    ("email double dot", {"sans": ["email:a..b@example.org"]}, {}, "bad local part"),
    ("unsupported SAN type", {"sans": ["dirName:/CN=x"]}, {}, "unsupported subject alternative name type"),
    ("sans not a list", {"sans": "DNS:a.example.com"}, {}, "sans must be a list of strings"),
    ("NUL in common name", {"profile": "client", "common_name": "app\x00"}, {}, "has a control character"),
    ("server CN not a host name", {"common_name": "Web Server #1"}, {}, "is not a DNS name or IP address"),
    ("name outside CA constraints", {"common_name": "web1.example.net"}, {"ca": "constrained"},
     "DNS:web1.example.net is outside the name constraints of CA CN=Matrix Constrained"),
    ("SPIFFE ID outside trust domain", {"profile": "client", "sans": ["URI:spiffe://evil.org/admin"]},
     {"ca": "constrained"}, "URI:spiffe://evil.org/admin is outside"),
    # Requests
    ("traversal in identity", {"identity": "../../etc/passwd"}, {}, "invalid identity name"),
    ("traversal in host", {"host": "../h"}, {}, "invalid host '../h'"),
    ("unknown profile", {"profile": "superuser"}, {}, "unknown profile 'superuser'"),
    ("unknown request key", {"colour": "red"}, {}, "unknown request keys colour"),
    ("garbage CSR", {"csr": "hello"}, {}, "not a PEM certificate signing request"),
    ("missing CSR", {"csr": None}, {}, "csr is missing"),
    ("key_type with a CSR", {"key_type": "ec_p384"}, {}, "key_type applies only with generate_keys"),
    ("validity beyond issuer", {"validity_days": 5000}, {}, "after the issuing CA expires"),
    ("zero validity", {"validity_days": 0}, {}, "validity_days must be a positive"),
    # Call-level (no request to name)
    ("wrong passphrase", {}, {"ca_passphrase": "wrong-wrong-wrong-wrong"}, "wrong passphrase for CA key"),
    ("missing store", {}, {"ca_path": "/nonexistent/fleet-mtls-store"}, "does not exist"),
]


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """Root, issuing and a name-constrained issuing CA, each with a non-empty index to protect."""
    base = tmp_path_factory.mktemp("matrix")
    root = str(base / "root")
    ca_store.create_root(root, ROOT_PASS, common_name="Matrix Root")
    for name, constraints in (("issuing", None), ("constrained", build_name_constraints(["example.com"], "example.org"))):
        path = str(base / name)
        ca_store.create_intermediate(path, ISSUING_PASS, root, ROOT_PASS, common_name="Matrix %s" % name.title(),
                                     name_constraints=constraints)
        store = ca_store.CAStore(path)
        sign_batch(store.load(ISSUING_PASS), store, [{"identity": "seed", "common_name": "seed.example.com",
                                                      "csr": GOOD_CSR}])
    return str(base)


def run_certificate_module(args, tmp_path):
    path = tmp_path / "args.json"
    path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    env = dict(os.environ, PYTHONPATH=str(collections_root()))
    proc = subprocess.run([sys.executable, "-m", "ansible_collections.fleet.mtls.plugins.modules.certificate",
                           str(path)], capture_output=True, text=True, env=env, timeout=300, check=False)
    output = proc.stdout + proc.stderr
    try:
        result = json.loads(proc.stdout[proc.stdout.index("{"):])
    except ValueError:
        raise AssertionError("the module printed no result (rc=%d):\n%s" % (proc.returncode, output))
    return result, output


@pytest.mark.parametrize("what, change, options, fragment", MATRIX, ids=[row[0] for row in MATRIX])
def test_bad_input_fails_clearly_and_changes_nothing(template, tmp_path, what, change, options, fragment):
    base = str(tmp_path / "ca")
    shutil.copytree(template, base)
    before = tree_digest(base)
    options = dict(options)
    ca = options.pop("ca", "issuing")
    bad = {"identity": "web", "host": "web1", "common_name": "web1.example.com", "csr": make_hostile_csr(
        "app1", [("URI", "spiffe://example.org/admin"), ("DNS", "*")])}
    bad.update(change)
    bad = dict((k, v) for k, v in bad.items() if v is not None)
    good = {"identity": "ok", "host": "h1", "common_name": "ok.example.com", "csr": GOOD_CSR}
    args = {"ca_path": os.path.join(base, ca), "ca_passphrase": ISSUING_PASS, "requests": [good, bad]}
    args.update(options)
    result, output = run_certificate_module(args, tmp_path)
    assert result.get("failed") is True, result
    assert fragment in result["msg"], result["msg"]
    if not options:  # a request is at fault: the message and the result name it
        assert result["msg"].startswith("request 2 (identity %s on host %s): " % (bad["identity"], bad["host"])), \
            result["msg"]
        assert (result["request"], result["identity"], result["host"]) == (2, bad["identity"], bad["host"])
    assert "Traceback" not in output
    assert ISSUING_PASS not in output
    assert tree_digest(base) == before


def test_the_matrix_control_row_succeeds(template, tmp_path):
    """The same call with nothing bad in it signs: the rows above fail for their one change only."""
    base = str(tmp_path / "ca")
    shutil.copytree(template, base)
    good = {"identity": "ok", "host": "h1", "common_name": "ok.example.com", "csr": GOOD_CSR}
    bad_free = {"identity": "web", "host": "web1", "common_name": "web1.example.com",
                "csr": make_hostile_csr("app1", [("URI", "spiffe://example.org/admin"), ("DNS", "*")])}
    for ca in ("issuing", "constrained"):
        result, output = run_certificate_module({"ca_path": os.path.join(base, ca), "ca_passphrase": ISSUING_PASS,
                                                 "requests": [good, bad_free]}, tmp_path)
        assert result.get("changed") is True and result["issued"] == 2, result
        assert [c["sans"] for c in result["certificates"]] == [["DNS:ok.example.com"], ["DNS:web1.example.com"]]
