"""TLS probe against real servers on 127.0.0.1: openssl s_server and mosquitto."""

from __future__ import annotations

import datetime
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tls_servers  # noqa: E402
from pki_factory import Pki, crl_pem, make_crl, now  # noqa: E402

from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError  # noqa: E402
from ansible_collections.fleet.mtls.plugins.module_utils.x509_info import load_certificates  # noqa: E402
from ansible_collections.fleet.mtls.plugins.module_utils.probe import (  # noqa: E402
    expectation_failure, mqtt_connect_packet, probe)

DAY = datetime.timedelta(days=1)
NGINX_400 = (b"HTTP/1.1 400 Bad Request\r\nServer: nginx\r\nContent-Type: text/html\r\nContent-Length: %d\r\n"
             b"Connection: close\r\n\r\n")
NGINX_400_BODY = (b"<html>\r\n<head><title>400 No required SSL certificate was sent</title></head>\r\n<body>\r\n"
                  b"<center><h1>400 Bad Request</h1></center>\r\n<center>No required SSL certificate was sent"
                  b"</center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")
FORBIDDEN = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory):
    """Written identities: server, client, rogue (foreign CA), expired, revoked, encrypted key."""
    directory = str(tmp_path_factory.mktemp("pki"))
    pki = Pki()
    files = {"dir": directory, "pki": pki}
    files["server"] = pki.server("server.test").write(directory, "server")
    files["client"] = pki.client("client.test").write(directory, "client")
    files["rogue"] = pki.foreign_issuing.issue("rogue.test", eku=["clientAuth"]).write(directory, "rogue")
    files["expired"] = pki.client("expired.test", not_before=now() - 40 * DAY,
                                  not_after=now() - DAY).write(directory, "expired")
    revoked = pki.client("revoked.test")
    files["revoked"] = revoked.write(directory, "revoked")
    files["encrypted"] = pki.client("locked.test").write(directory, "locked", passphrase="s3cret-pass")
    files["bundle"] = os.path.join(directory, "trust-bundle.pem")
    with open(files["bundle"], "wb") as handle:
        handle.write(pki.trust_bundle_pem)
    files["foreign_bundle"] = os.path.join(directory, "foreign-bundle.pem")
    with open(files["foreign_bundle"], "wb") as handle:
        handle.write(pki.foreign_root.cert_pem)
    files["issuing_crl"] = os.path.join(directory, "issuing-crl.pem")
    with open(files["issuing_crl"], "wb") as handle:
        handle.write(crl_pem(make_crl(pki.issuing, revoked=[revoked.cert])))
    files["crl"] = os.path.join(directory, "crl.pem")
    with open(files["crl"], "wb") as handle:
        handle.write(crl_pem(make_crl(pki.root), make_crl(pki.issuing, revoked=[revoked.cert])))
    return files


def _server(request, pki_dir, *args):
    server = tls_servers.start_s_server(pki_dir["dir"], pki_dir["server"], pki_dir["bundle"], args)
    request.addfinalizer(server.stop)
    return server


@pytest.fixture(scope="module")
def mtls_server(request, pki_dir):
    """Requires a client certificate, checks the CRL of the issuing CA, TLS 1.2 and 1.3."""
    return _server(request, pki_dir, "-Verify", "1", "-verify_return_error",
                   "-CRL", pki_dir["issuing_crl"], "-crl_check")


@pytest.fixture(scope="module")
def www_server(request, pki_dir):
    return _server(request, pki_dir, "-www")


@pytest.fixture(scope="module")
def mtls_www_server(request, pki_dir):
    return _server(request, pki_dir, "-www", "-Verify", "1", "-verify_return_error")


@pytest.fixture(scope="module")
def canned_http_server(request, pki_dir):
    """Serves files that hold complete HTTP responses (s_server -HTTP): NGINX-like denials."""
    directory = pki_dir["dir"]
    with open(os.path.join(directory, "nginx-400"), "wb") as handle:
        handle.write((NGINX_400 % len(NGINX_400_BODY)) + NGINX_400_BODY)
    with open(os.path.join(directory, "forbidden"), "wb") as handle:
        handle.write(FORBIDDEN)
    return _server(request, pki_dir, "-HTTP")


def _probe(server, pki_dir, identity=None, **options):
    options.setdefault("ca_bundle", pki_dir["bundle"])
    if identity:
        options.setdefault("client_cert", pki_dir[identity]["chain"])
        options.setdefault("client_key", pki_dir[identity]["key"])
    return probe("127.0.0.1", server.port, **options)


# --- the key behaviour: where a rejection shows up ----------------------------------------------

def test_tls13_rejection_without_client_cert_arrives_after_the_handshake(mtls_server, pki_dir):
    result = _probe(mtls_server, pki_dir)
    assert result["tls_version"] == "TLSv1.3"
    assert result["outcome"] == "rejected" and result["accepted"] is False
    assert result["stage"] == "post_handshake"
    assert result["error"] == "tlsv13 alert certificate required"
    # the handshake itself completed: the server's certificate is known
    assert result["peer"]["common_name"] == "server.test"


def test_tls12_rejection_without_client_cert_is_a_handshake_failure(mtls_server, pki_dir):
    result = _probe(mtls_server, pki_dir, max_tls_version="TLSv1.2")
    assert result["outcome"] == "rejected"
    assert result["stage"] == "handshake"
    assert "alert handshake failure" in result["error"]
    assert result["tls_version"] is None and result["peer"] is None


def test_client_cert_from_another_ca_is_rejected(mtls_server, pki_dir):
    result = _probe(mtls_server, pki_dir, identity="rogue")
    assert (result["outcome"], result["stage"]) == ("rejected", "post_handshake")
    assert result["error"] == "tlsv1 alert unknown ca"


def test_expired_client_cert_is_rejected(mtls_server, pki_dir):
    result = _probe(mtls_server, pki_dir, identity="expired")
    assert result["outcome"] == "rejected"
    assert result["error"] == "sslv3 alert certificate expired"


def test_revoked_client_cert_is_rejected(mtls_server, pki_dir):
    result = _probe(mtls_server, pki_dir, identity="revoked")
    assert result["outcome"] == "rejected"
    assert result["error"] == "sslv3 alert certificate revoked"


def test_valid_client_cert_is_accepted_with_details(mtls_server, pki_dir):
    result = _probe(mtls_server, pki_dir, identity="client")
    assert result["accepted"] is True and result["outcome"] == "accepted"
    assert result["stage"] is None and result["error"] is None
    assert result["tls_version"] == "TLSv1.3"
    assert result["cipher"].startswith("TLS_")
    assert result["server_verified"] is True
    peer = result["peer"]
    assert peer["subject"] == "CN=server.test,O=fleet-mtls tests"
    assert peer["issuer"] == "CN=Test Issuing CA,O=fleet-mtls tests"
    assert peer["sans"] == ["DNS:localhost", "IP:127.0.0.1"]
    with open(pki_dir["server"]["cert"], "rb") as handle:
        server_cert = load_certificates(handle.read(), "server.crt")[0]
    assert peer["serial"] == format(server_cert.serial_number, "x")
    assert peer["not_after"].endswith("Z")
    assert 0 < result["handshake_ms"] <= result["elapsed_ms"]


def test_valid_client_cert_over_tls12(mtls_server, pki_dir):
    result = _probe(mtls_server, pki_dir, identity="client", min_tls_version="TLSv1.2",
                    max_tls_version="TLSv1.2", read_timeout=0.3)
    assert result["accepted"] and result["tls_version"] == "TLSv1.2"


def test_encrypted_client_key_with_passphrase(mtls_server, pki_dir):
    result = _probe(mtls_server, pki_dir, identity="encrypted", client_key_passphrase="s3cret-pass",
                    read_timeout=0.3)
    assert result["accepted"], result


def test_wrong_or_missing_passphrase_is_a_clear_error(mtls_server, pki_dir):
    with pytest.raises(MtlsError, match="wrong passphrase for client_key .*locked.key"):
        _probe(mtls_server, pki_dir, identity="encrypted", client_key_passphrase="nope")
    with pytest.raises(MtlsError, match="locked.key is encrypted: a passphrase is required"):
        _probe(mtls_server, pki_dir, identity="encrypted")


# --- verifying the server ------------------------------------------------------------------------

def test_untrusted_server_is_an_error_not_a_rejection(mtls_server, pki_dir):
    result = _probe(mtls_server, pki_dir, identity="client", ca_bundle=pki_dir["foreign_bundle"])
    assert (result["outcome"], result["stage"]) == ("error", "handshake")
    assert result["error"].startswith("server certificate verify failed: ")
    assert expectation_failure(result, "rejected", "127.0.0.1:1").startswith(
        "expected 127.0.0.1:1 to reject the connection, but the probe could not tell: handshake failed")


def test_server_name_is_checked_and_verification_can_be_skipped(mtls_server, pki_dir):
    mismatch = _probe(mtls_server, pki_dir, identity="client", server_name="other.test")
    assert mismatch["outcome"] == "error" and "Hostname mismatch" in mismatch["error"]
    assert _probe(mtls_server, pki_dir, identity="client", server_name="localhost", read_timeout=0.3)["accepted"]
    unverified = _probe(mtls_server, pki_dir, identity="client", ca_bundle=pki_dir["foreign_bundle"],
                        verify_server=False, read_timeout=0.3)
    assert unverified["accepted"] and unverified["server_verified"] is False


def test_connection_refused_is_a_connect_error(pki_dir):
    port = tls_servers.free_port()
    result = probe("127.0.0.1", port, ca_bundle=pki_dir["bundle"], timeout=2)
    assert (result["outcome"], result["stage"]) == ("error", "connect")
    assert "refused" in result["error"].lower()


# --- HTTP ----------------------------------------------------------------------------------------

def test_http_status_200(www_server, pki_dir):
    result = _probe(www_server, pki_dir, protocol="http")
    assert result["accepted"] and result["http_status"] == 200


def test_http_expect_status_turns_other_codes_into_rejection(www_server, pki_dir):
    result = _probe(www_server, pki_dir, protocol="http", expect_status=[204])
    assert (result["outcome"], result["stage"], result["http_status"]) == ("rejected", "application", 200)


def test_http_without_client_cert_on_tls13_is_rejected_after_handshake(mtls_www_server, pki_dir):
    result = _probe(mtls_www_server, pki_dir, protocol="http")
    assert (result["outcome"], result["stage"]) == ("rejected", "post_handshake")
    assert "certificate required" in result["error"]
    assert _probe(mtls_www_server, pki_dir, identity="client", protocol="http")["http_status"] == 200


def test_http_nginx_certificate_denial_is_a_rejection(canned_http_server, pki_dir):
    result = _probe(canned_http_server, pki_dir, protocol="http", http_path="/nginx-400")
    assert (result["outcome"], result["stage"]) == ("rejected", "application")
    assert result["http_status"] == 400
    assert result["http_reason"] == "No required SSL certificate was sent"
    assert result["error"] == "HTTP 400 No required SSL certificate was sent"


def test_http_403_is_a_rejection_unless_expected(canned_http_server, pki_dir):
    denied = _probe(canned_http_server, pki_dir, protocol="http", http_path="/forbidden")
    assert denied["outcome"] == "rejected" and denied["http_status"] == 403
    expected = _probe(canned_http_server, pki_dir, protocol="http", http_path="/forbidden",
                      expect_status=[403])
    assert expected["accepted"]


# --- MQTT against mosquitto ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def mosquitto(request, pki_dir):
    if not tls_servers.mosquitto_available():
        pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
    broker = tls_servers.start_mosquitto(pki_dir["dir"], pki_dir["server"], pki_dir["bundle"], pki_dir["crl"])
    request.addfinalizer(broker.stop)
    return broker


def _mqtt(port, pki_dir, identity=None, **options):
    options.setdefault("ca_bundle", pki_dir["bundle"])
    if identity:
        options["client_cert"] = pki_dir[identity]["chain"]
        options["client_key"] = pki_dir[identity]["key"]
    return probe("127.0.0.1", port, protocol="mqtt", **options)


def test_mqtt_connack_accepted_with_client_cert(mosquitto, pki_dir):
    result = _mqtt(mosquitto.ports["identity"], pki_dir, "client")
    assert result["accepted"] and result["mqtt_return_code"] == 0
    assert result["tls_version"] == "TLSv1.3"
    assert "client.test" in mosquitto.log()


def test_mqtt_rejected_without_client_cert(mosquitto, pki_dir):
    result = _mqtt(mosquitto.ports["identity"], pki_dir)
    assert (result["outcome"], result["stage"]) == ("rejected", "post_handshake")
    assert "mqtt_return_code" not in result


def test_mqtt_revoked_cert_rejected_through_crlfile(mosquitto, pki_dir):
    result = _mqtt(mosquitto.ports["identity"], pki_dir, "revoked")
    assert result["outcome"] == "rejected"
    assert result["error"] == "sslv3 alert certificate revoked"


def test_mqtt_not_authorized_connack(mosquitto, pki_dir):
    result = _mqtt(mosquitto.ports["password"], pki_dir, "client", mqtt_username="client.test",
                   mqtt_password="wrong")
    assert (result["outcome"], result["stage"]) == ("rejected", "application")
    assert result["mqtt_return_code"] in (4, 5)
    result = _mqtt(mosquitto.ports["password"], pki_dir, "client")
    assert result["mqtt_return_code"] == 5 and result["error"] == "CONNACK return code 5: not authorized"


def test_mqtt_connect_packet_layout():
    packet = mqtt_connect_packet("probe-1", username="u")
    assert packet[0] == 0x10 and packet[1] == len(packet) - 2
    assert packet[2:10] == b"\x00\x04MQTT\x04" + bytes([0x82])
    assert packet.endswith(b"\x00\x07probe-1\x00\x01u")
    long_id = mqtt_connect_packet("x" * 200)
    assert long_id[1] & 0x80 and long_id[2] == 1  # two-byte remaining length


# --- bad inputs ----------------------------------------------------------------------------------

@pytest.mark.parametrize("options, message", [
    ({"client_cert": "/etc/hostname"}, "client_cert and client_key must be given together (got only client_cert)"),
    ({"client_key": "/etc/hostname"}, "client_cert and client_key must be given together (got only client_key)"),
    ({"port": 0}, "port 0 is out of range: use 1-65535"),
    ({"port": 70000}, "port 70000 is out of range: use 1-65535"),
    ({"port": "https"}, "port 'https' is not a number"),
    ({"protocol": "smtp"}, "unknown protocol 'smtp': choose one of tls, http, mqtt"),
    ({"ca_bundle": "/nonexistent/bundle.pem"}, "ca_bundle /nonexistent/bundle.pem does not exist"),
    ({"ca_bundle": "/etc/hostname"}, "ca_bundle /etc/hostname is not a PEM certificate or bundle"),
    ({"min_tls_version": "TLSv1.3", "max_tls_version": "TLSv1.2"}, "min_tls_version TLSv1.3 is above max_tls_version"),
    ({"max_tls_version": "TLSv1.0"}, "unknown max_tls_version 'TLSv1.0'"),
    ({"mqtt_password": "x"}, "mqtt_password needs mqtt_username"),
    ({"timeout": 0}, "timeout must be between 0 and 300 seconds"),
    ({"http_path": "index.html"}, "http_path 'index.html' must start with '/'"),
    ({"http_path": "/a\r\nX-Injected: 1"}, "must not contain spaces or control characters"),
])
def test_bad_options_are_named(options, message):
    arguments = {"host": "127.0.0.1", "port": 9}
    arguments.update(options)
    with pytest.raises(MtlsError) as raised:
        probe(**arguments)
    assert message in str(raised.value)


def test_garbage_and_mismatched_client_identity(pki_dir, tmp_path):
    garbage = tmp_path / "garbage.crt"
    garbage.write_bytes(b"-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
    with pytest.raises(MtlsError, match="client_cert .*garbage.crt: certificate #1 is damaged"):
        probe("127.0.0.1", 9, client_cert=str(garbage), client_key=pki_dir["client"]["key"])
    with pytest.raises(MtlsError, match="client_key .*rogue.key does not match client_cert .*client.crt"):
        probe("127.0.0.1", 9, client_cert=pki_dir["client"]["cert"], client_key=pki_dir["rogue"]["key"])
    with pytest.raises(MtlsError, match="client_key /nonexistent.key does not exist"):
        probe("127.0.0.1", 9, client_cert=pki_dir["client"]["cert"], client_key="/nonexistent.key")
