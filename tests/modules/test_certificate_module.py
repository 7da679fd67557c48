# -*- coding: utf-8 -*-
"""fleet.mtls.certificate through ansible-playbook."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ROOT_PASS = "Root-Secret-Passphrase-7"
ISSUING_PASS = "Issuing-Secret-Passphrase-9"


def digest(path):
    result = {}
    for directory, dummy, files in os.walk(str(path)):
        for name in files:
            full = os.path.join(directory, name)
            result[os.path.relpath(full, str(path))] = hashlib.sha256(open(full, "rb").read()).hexdigest()
    return result


def csr(common_name, sans=None):
    key = ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture
def pki(ansible_module, tmp_path):
    root = str(tmp_path / "ca" / "root")
    issuing = str(tmp_path / "ca" / "issuing")
    assert ansible_module("ca", {"path": root, "common_name": "Root", "passphrase": ROOT_PASS})["changed"]
    made = ansible_module("ca", {"path": issuing, "kind": "intermediate", "common_name": "Issuing",
                                 "passphrase": ISSUING_PASS, "parent_path": root, "parent_passphrase": ROOT_PASS})
    assert made["changed"], made.get("msg")
    return root, issuing


def index_entries(issuing):
    return json.load(open(os.path.join(issuing, "index.json")))["entries"]


def test_single_request_signs_and_records(ansible_module, pki, tmp_path):
    root, issuing = pki
    args = {"ca_path": issuing, "ca_passphrase": ISSUING_PASS, "identity": "web", "host": "web1",
            "common_name": "web1.example.com", "csr": csr("web1.example.com"),
            "sans": ["DNS:web1.example.com", "IP:192.0.2.10"]}
    result = ansible_module("certificate", args, diff=True)
    assert result["changed"] and result["issued"] == 1, result.get("msg")
    issued = result["certificates"][0]
    assert issued["identity"] == "web" and issued["host"] == "web1"
    assert issued["sans"] == ["DNS:web1.example.com", "IP:192.0.2.10"]
    assert result["diff"]["after"]["issued"] == ["web1/web"]
    leaf = tmp_path / "leaf.pem"
    leaf.write_text(issued["certificate"])
    proc = subprocess.run(["openssl", "verify", "-CAfile", os.path.join(root, "ca.crt"), "-untrusted",
                           os.path.join(issuing, "ca.crt"), str(leaf)], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [e["serial"] for e in index_entries(issuing)] == [issued["serial"]]
    assert ISSUING_PASS not in result.output
    # Signing is a change by nature: the same request again signs a new certificate.
    again = ansible_module("certificate", args)
    assert again["changed"] and again["certificates"][0]["serial"] != issued["serial"]
    assert len(index_entries(issuing)) == 2


def test_batch_check_mode_writes_nothing(ansible_module, pki):
    dummy, issuing = pki
    before = digest(issuing)
    requests = [{"identity": "web", "host": "h%d" % n, "csr": csr("h%d.example.com" % n)} for n in range(5)]
    result = ansible_module("certificate", {"ca_path": issuing, "ca_passphrase": ISSUING_PASS,
                                            "requests": requests}, check=True, diff=True)
    assert result["changed"] and result["issued"] == 5, result.get("msg")
    assert [c["host"] for c in result["certificates"]] == ["h%d" % n for n in range(5)]
    assert all(c["certificate"] is None for c in result["certificates"])
    assert digest(issuing) == before
    signed = ansible_module("certificate", {"ca_path": issuing, "ca_passphrase": ISSUING_PASS, "requests": requests})
    assert signed["issued"] == 5 and len(index_entries(issuing)) == 5


def test_empty_batch_is_no_change(ansible_module, pki):
    dummy, issuing = pki
    result = ansible_module("certificate", {"ca_path": issuing, "ca_passphrase": ISSUING_PASS, "requests": []})
    assert result["changed"] is False and result["certificates"] == []


def test_central_key_generation(ansible_module, pki, tmp_path):
    dummy, issuing = pki
    key_dir = tmp_path / "central"
    result = ansible_module("certificate", {
        "ca_path": issuing, "ca_passphrase": ISSUING_PASS, "generate_keys": True, "key_dir": str(key_dir),
        "requests": [{"identity": "sensor%d" % n, "host": "dev", "profile": "client"} for n in range(3)]})
    assert result["issued"] == 3, result.get("msg")
    for issued in result["certificates"]:
        assert issued["key_path"] == str(key_dir / "dev" / (issued["identity"] + ".key"))
        assert stat.S_IMODE(os.stat(issued["key_path"]).st_mode) == 0o600
    assert "PRIVATE KEY" not in result.output


BAD = [
    ("malformed CSR", {"csr": "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"},
     "CSR is malformed"),
    ("unknown profile", {"profile": "admin"}, "value of profile must be one of"),
    ("invalid SAN", {"sans": ["DNS:-bad-.example.com"]}, "invalid DNS name"),
    ("IP in DNS SAN", {"sans": ["DNS:10.1.1.1"]}, "is an IP address, not a DNS name"),
    ("wrong CA passphrase", {"ca_passphrase": "not-the-issuing-pass"}, "wrong passphrase for CA key"),
    ("missing CA store", {"ca_path": "/nonexistent/store"}, "does not exist"),
    ("validity past issuer", {"validity_days": 4000}, "after the issuing CA expires"),
    ("zero validity", {"validity_days": 0}, "validity_days must be a positive"),
    ("neither request nor identity", {"identity": None, "csr": None}, "give either requests"),
    ("requests and identity", {"requests": [{"identity": "x"}]}, "mutually exclusive"),
    ("duplicate identities", {"identity": None, "host": None, "csr": None, "requests": "DUP"}, "duplicates request 1"),
    ("NUL byte in URI", {"sans": ["URI:https://a\x00b.example/"]},
     "request 1 (identity web on host web1): invalid URI"),
    ("non-ASCII URI", {"sans": ["URI:https://bücher.example/"]}, "request 1 (identity web on host web1): invalid URI"),
    ("wildcard on a public suffix", {"sans": ["DNS:*.co.uk"]}, "public suffix 'co.uk'"),
    ("bare wildcard", {"sans": ["DNS:*"]}, "bare wildcard"),
    ("empty label", {"sans": ["DNS:evil..example"]}, "empty label"),
    ("space in DNS name", {"sans": ["DNS:a b.example"]}, "has whitespace"),
]


@pytest.mark.parametrize("what, change, message", BAD, ids=[b[0] for b in BAD])
def test_bad_inputs_leave_store_unchanged(ansible_module, pki, what, change, message):
    dummy, issuing = pki
    before = digest(os.path.dirname(issuing))
    args = {"ca_path": issuing, "ca_passphrase": ISSUING_PASS, "identity": "web", "host": "web1",
            "csr": csr("web1.example.com")}
    args.update(change)
    if args.get("requests") == "DUP":
        one = csr("a.example.com")
        args["requests"] = [{"identity": "a", "host": "h", "csr": one}, {"identity": "a", "host": "h", "csr": one}]
    args = dict((k, v) for k, v in args.items() if v is not None)
    result = ansible_module("certificate", args)
    assert result.get("failed"), result.result
    assert message in result["msg"]
    assert digest(os.path.dirname(issuing)) == before
    assert ISSUING_PASS not in result.output


def hostile_csr(common_name):
    """A validly signed CSR asking for names nobody declared (cryptography's input checks bypassed)."""
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.UniformResourceIdentifier._init_without_validation("spiffe://example.org/admin"),
             x509.DNSName._init_without_validation("*"), x509.RFC822Name._init_without_validation("root@localhost"),
             x509.DNSName._init_without_validation("evil..example"),
             x509.UniformResourceIdentifier._init_without_validation("https://bücher.example/")]
    builder = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
               .add_extension(x509.SubjectAlternativeName(names), critical=False))
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def test_csr_names_are_ignored(ansible_module, pki):
    """The requests as the identity role builds them: the CSR's CN and SANs never reach the certificate."""
    dummy, issuing = pki
    result = ansible_module("certificate", {"ca_path": issuing, "ca_passphrase": ISSUING_PASS, "requests": [
        {"identity": "app2", "host": "h2", "profile": "client", "common_name": "app2", "sans": [],
         "validity_days": 30, "csr": hostile_csr("app1")},
        {"identity": "app3", "host": "h3", "profile": "client", "csr": csr("app1")},
        {"identity": "web", "host": "web1", "profile": "server", "common_name": "web1.example.com",
         "sans": ["DNS:web1.example.com"], "csr": hostile_csr("app1.example.com")},
    ]})
    assert result["issued"] == 3, result.get("msg")
    subjects, sans = [], []
    for issued in result["certificates"]:
        cert = x509.load_pem_x509_certificate(issued["certificate"].encode())
        subjects.append(cert.subject.rfc4514_string())
        try:
            sans.append([str(v) for v in cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
                         .get_values_for_type(x509.DNSName)]
                        + cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
                        .get_values_for_type(x509.UniformResourceIdentifier))
        except x509.ExtensionNotFound:
            sans.append([])
    assert subjects == ["CN=app2", "CN=app3", "CN=web1.example.com"]
    assert sans == [[], [], ["web1.example.com"]]
    assert [e["sans"] for e in index_entries(issuing)] == [[], [], ["DNS:web1.example.com"]]


def test_ca_name_constraints_enforced_at_signing(ansible_module, tmp_path):
    root = str(tmp_path / "nc" / "root")
    issuing = str(tmp_path / "nc" / "issuing")
    assert ansible_module("ca", {"path": root, "common_name": "NC Root", "passphrase": ROOT_PASS})["changed"]
    made = ansible_module("ca", {"path": issuing, "kind": "intermediate", "common_name": "NC Issuing",
                                 "passphrase": ISSUING_PASS, "parent_path": root, "parent_passphrase": ROOT_PASS,
                                 "permitted_dns_suffixes": ["example.com"], "spiffe_trust_domain": "example.org"})
    assert made["changed"], made.get("msg")
    cert = x509.load_pem_x509_certificate(made["certificate"].encode())
    constraints = cert.extensions.get_extension_for_class(x509.NameConstraints)
    assert constraints.critical and constraints.value.permitted_subtrees == [
        x509.DNSName("example.com"), x509.UniformResourceIdentifier("example.org")]
    again = ansible_module("ca", {"path": issuing, "kind": "intermediate", "common_name": "NC Issuing",
                                  "passphrase": ISSUING_PASS, "parent_path": root, "parent_passphrase": ROOT_PASS,
                                  "permitted_dns_suffixes": ["example.com"], "spiffe_trust_domain": "example.org"})
    assert again["changed"] is False, again.get("msg")
    drift = ansible_module("ca", {"path": issuing, "kind": "intermediate", "common_name": "NC Issuing",
                                  "passphrase": ISSUING_PASS, "parent_path": root, "parent_passphrase": ROOT_PASS,
                                  "permitted_dns_suffixes": ["example.net"]})
    assert drift.get("failed") and "name constraints are" in drift["msg"]
    args = {"ca_path": issuing, "ca_passphrase": ISSUING_PASS}
    inside = ansible_module("certificate", dict(args, requests=[
        {"identity": "web", "host": "web1", "common_name": "web1.example.com", "csr": csr("x")},
        {"identity": "app", "host": "h2", "profile": "client", "sans": ["URI:spiffe://example.org/app"],
         "csr": csr("x")}]))
    assert inside["issued"] == 2, inside.get("msg")
    before = digest(os.path.dirname(issuing))
    outside = ansible_module("certificate", dict(args, requests=[
        {"identity": "web", "host": "web1", "common_name": "web1.example.com", "csr": csr("x")},
        {"identity": "admin", "host": "h2", "profile": "client", "sans": ["URI:spiffe://evil.org/admin"],
         "csr": csr("x")}]))
    assert outside.get("failed")
    assert outside["msg"].startswith("request 2 (identity admin on host h2): URI:spiffe://evil.org/admin is "
                                     "outside the name constraints of CA CN=NC Issuing"), outside["msg"]
    assert outside["identity"] == "admin" and outside["host"] == "h2" and outside["request"] == 2
    assert digest(os.path.dirname(issuing)) == before


def test_batch_invocation_gives_requests_as_a_count_and_no_secret(pki, tmp_path):
    """At -vvv the task's result shows requests as {"count": N} and the passphrase as ansible's
    placeholder; neither the -vvv output nor the registered result holds a CSR or the passphrase."""
    from conftest import _ansible_playbook, _collections_path

    root, issuing = pki
    requests = [{"identity": "web", "host": "web%d" % n, "common_name": "web%d.example.com" % n,
                 "csr": csr("web%d.example.com" % n)} for n in range(4)]
    vars_file = tmp_path / "requests.json"
    vars_file.write_text(json.dumps({"batch": requests}))
    registered = tmp_path / "registered.json"
    play = [{"hosts": "localhost", "gather_facts": False, "connection": "local", "vars_files": [str(vars_file)],
             "tasks": [
                 {"name": "sign the batch", "register": "signed",
                  "fleet.mtls.certificate": {"ca_path": issuing, "ca_passphrase": ISSUING_PASS,
                                             "requests": "{{ batch }}"}},
                 {"name": "keep the registered result",
                  "ansible.builtin.copy": {"content": "{{ signed | to_json }}", "dest": str(registered),
                                           "mode": "0600"}}]}]
    playbook = tmp_path / "invocation.yml"
    playbook.write_text(json.dumps(play))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=_collections_path(), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
               ANSIBLE_PYTHON_INTERPRETER=sys.executable, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default")
    proc = subprocess.run([_ansible_playbook(), "-vvv", str(playbook)], capture_output=True, text=True, env=env,
                          cwd=str(tmp_path), timeout=600, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    # The default callback prints the signing task's result as JSON after "changed: [localhost] => ".
    task_output = output[output.index("TASK [sign the batch]"):output.index("TASK [keep the registered result]")]
    shown, dummy = json.JSONDecoder().raw_decode(task_output, task_output.index("changed: [localhost] => ") + 24)
    assert shown["issued"] == 4, shown.get("msg")
    module_args = shown["invocation"]["module_args"]
    assert module_args["requests"] == {"count": 4}
    assert module_args["ca_passphrase"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    assert module_args["ca_path"] == issuing
    assert "BEGIN CERTIFICATE REQUEST" not in output
    assert ISSUING_PASS not in output
    # ansible drops invocation from what register keeps; the rest is the module's result.
    kept = json.loads(registered.read_text())
    assert kept["issued"] == 4 and "invocation" not in kept
    assert ISSUING_PASS not in registered.read_text()
    assert "BEGIN CERTIFICATE REQUEST" not in registered.read_text()


def test_batch_result_through_the_json_callback_counts_requests(ansible_module, pki):
    root, issuing = pki
    requests = [{"identity": "web", "host": "h%d" % n, "common_name": "h%d.example.com" % n,
                 "csr": csr("h%d.example.com" % n)} for n in range(3)]
    result = ansible_module("certificate", {"ca_path": issuing, "ca_passphrase": ISSUING_PASS, "requests": requests})
    assert result["issued"] == 3, result.get("msg")
    assert result["invocation"]["module_args"]["requests"] == {"count": 3}
    assert ISSUING_PASS not in result.output and "BEGIN CERTIFICATE REQUEST" not in result.output
