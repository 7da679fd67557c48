# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A real TLS connection to a service, optionally with a client identity, that says whether the
service accepted it, where it refused, and why.

TLS 1.3 changes where a rejection shows: the client's handshake completes before the server has
looked at the client certificate, so a refusal arrives as an alert on the first read. After the
handshake the probe therefore always exchanges something: a bounded read (``tls``), an HTTP request
(``http``: NGINX answers 400/403 instead of an alert) or an MQTT CONNECT (``mqtt``: CONNACK).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import socket
import ssl
import struct
import time

from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError
from ansible_collections.fleet.mtls.plugins.module_utils.x509_info import (
    describe_certificate, load_certificates, read_required)
from ansible_collections.fleet.mtls.plugins.module_utils.keys import load_private_key, same_public_key

try:
    from cryptography import x509
    HAS_CRYPTOGRAPHY = True
except ImportError:
    HAS_CRYPTOGRAPHY = False

PROTOCOLS = ("tls", "http", "mqtt")
TLS_VERSIONS = ("TLSv1.2", "TLSv1.3")

# outcome: what the service did with the connection. "error" means the probe could not tell
# (unreachable, the server's certificate failed our verification, no answer in time).
OUTCOME_ACCEPTED = "accepted"
OUTCOME_REJECTED = "rejected"
OUTCOME_ERROR = "error"

STAGE_CONNECT = "connect"
STAGE_HANDSHAKE = "handshake"
STAGE_POST_HANDSHAKE = "post_handshake"
STAGE_APPLICATION = "application"

# What NGINX answers when client verification fails (ssl_verify_client on/optional), and the
# statuses that mean "you are not allowed" without an explicit expect_status.
_NGINX_CERT_PHRASES = ("No required SSL certificate was sent", "The SSL certificate error",
                       "SSL certificate error")
_DENIAL_STATUSES = (401, 403, 495, 496)

_MQTT_CONNACK_CODES = {
    0: "connection accepted",
    1: "unacceptable protocol version",
    2: "identifier rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorized",
}

_MAX_HTTP_RESPONSE = 65536
# Request-line and Host header text: no room for a second header or request.
_UNSAFE_HTTP_TEXT = re.compile(r"[\x00-\x20\x7f]")
_SSL_MESSAGE = re.compile(r"^\[[^\]]*\] (.*?)(?: \(_ssl\.c:\d+\))?$")


def _ssl_error_text(exc):
    """The readable part of an SSLError: 'tlsv13 alert certificate required'."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "server certificate verify failed: %s" % (exc.verify_message or exc.reason)
    match = _SSL_MESSAGE.match(str(exc))
    if match:
        return match.group(1)
    reason = getattr(exc, "reason", None)
    if reason:
        return reason.lower().replace("_", " ")
    return str(exc) or type(exc).__name__


def _is_peer_alert(exc):
    reason = getattr(exc, "reason", None) or ""
    return "ALERT" in reason


def _tls_version(name):
    return {"TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}[name]


def validate_target(host, port):
    if not host or not isinstance(host, str):
        raise MtlsError("host is required: a name or address to connect to")
    try:
        port = int(port)
    except (TypeError, ValueError):
        raise MtlsError("port %r is not a number" % (port,))
    if not 1 <= port <= 65535:
        raise MtlsError("port %d is out of range: use 1-65535" % port)
    return port


def build_context(ca_bundle=None, verify_server=True, client_cert=None, client_key=None,
                  client_key_passphrase=None, min_tls_version=None, max_tls_version=None):
    """SSLContext for the probe. Every input file is checked first so a bad one gets a message
    that names it instead of OpenSSL's 'PEM lib'."""
    if (client_cert is None) != (client_key is None):
        raise MtlsError("client_cert and client_key must be given together (got only %s)"
                        % ("client_cert" if client_key is None else "client_key"))
    for name, value in (("min_tls_version", min_tls_version), ("max_tls_version", max_tls_version)):
        if value is not None and value not in TLS_VERSIONS:
            raise MtlsError("unknown %s %r: choose one of %s" % (name, value, ", ".join(TLS_VERSIONS)))
    if min_tls_version and max_tls_version and \
            TLS_VERSIONS.index(min_tls_version) > TLS_VERSIONS.index(max_tls_version):
        raise MtlsError("min_tls_version %s is above max_tls_version %s" % (min_tls_version, max_tls_version))

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if min_tls_version:
        context.minimum_version = _tls_version(min_tls_version)
    if max_tls_version:
        context.maximum_version = _tls_version(max_tls_version)
    if verify_server:
        if ca_bundle:
            bundle = read_required(ca_bundle, "ca_bundle")
            load_certificates(bundle, "ca_bundle %s" % ca_bundle)
            context.load_verify_locations(cadata=bundle.decode("ascii", "replace"))
        else:
            context.load_default_certs()
    else:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if client_cert is not None:
        _load_client_identity(context, client_cert, client_key, client_key_passphrase)
    return context


def _load_client_identity(context, client_cert, client_key, passphrase):
    cert_data = read_required(client_cert, "client_cert")
    certificates = load_certificates(cert_data, "client_cert %s" % client_cert)
    key = load_private_key(read_required(client_key, "client_key"), passphrase,
                           source="client_key %s" % client_key)
    if not same_public_key(key, certificates[0].public_key()):
        raise MtlsError("client_key %s does not match client_cert %s" % (client_key, client_cert))
    try:
        # The key was already decrypted once above, so the passphrase is known to be right.
        context.load_cert_chain(client_cert, client_key, password=lambda: passphrase or "")
    except (ssl.SSLError, OSError) as exc:
        raise MtlsError("cannot use client identity %s / %s: %s"
                        % (client_cert, client_key, _ssl_error_text(exc)))


def _peer_summary(tls_socket):
    der = tls_socket.getpeercert(binary_form=True)
    if not der:
        return None
    info = describe_certificate(x509.load_der_x509_certificate(der))
    keys = ("subject", "common_name", "sans", "issuer", "serial", "not_before", "not_after",
            "days_left", "fingerprint_sha256")
    return dict((key, info[key]) for key in keys)


def _milliseconds(start):
    return round((time.monotonic() - start) * 1000.0, 1)


class _Rejected(Exception):
    """The server refused; ``details`` keeps what was learned anyway (HTTP status, CONNACK code)."""

    def __init__(self, stage, error, details=None):
        super(_Rejected, self).__init__(error)
        self.stage, self.error, self.details = stage, error, details or {}


class _ProbeError(Exception):
    def __init__(self, stage, error):
        super(_ProbeError, self).__init__(error)
        self.stage, self.error = stage, error


def _classify_read_failure(exc, stage, timeout):
    """An exception raised while talking after the handshake -> _Rejected/_ProbeError."""
    if isinstance(exc, socket.timeout):
        return _ProbeError(stage, "no answer within %ss" % timeout)
    if isinstance(exc, (ssl.SSLZeroReturnError, ssl.SSLEOFError)):
        return _Rejected(stage, "connection closed by the server")
    if isinstance(exc, ssl.SSLError):
        if _is_peer_alert(exc):
            return _Rejected(STAGE_POST_HANDSHAKE, _ssl_error_text(exc))
        return _ProbeError(stage, _ssl_error_text(exc))
    if isinstance(exc, (ConnectionResetError, BrokenPipeError)):
        return _Rejected(stage, "connection reset by the server")
    return _ProbeError(stage, str(exc))


def _send(tls_socket, data, timeout):
    try:
        tls_socket.sendall(data)
    except (OSError, ssl.SSLError) as exc:
        # The server may already have refused us; its alert is waiting to be read.
        try:
            tls_socket.settimeout(min(timeout, 1.0))
            tls_socket.recv(1)
        except (OSError, ssl.SSLError) as read_exc:
            raise _classify_read_failure(read_exc, STAGE_POST_HANDSHAKE, timeout)
        raise _classify_read_failure(exc, STAGE_POST_HANDSHAKE, timeout)


def _recv(tls_socket, size, deadline, timeout):
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise _ProbeError(STAGE_APPLICATION, "no answer within %ss" % timeout)
    tls_socket.settimeout(remaining)
    try:
        return tls_socket.recv(size)
    except (OSError, ssl.SSLError) as exc:
        raise _classify_read_failure(exc, STAGE_APPLICATION, timeout)


def _exchange_tls(tls_socket, read_timeout):
    """Wait briefly for the server: silence (or data) means it kept the session."""
    tls_socket.settimeout(read_timeout)
    try:
        data = tls_socket.recv(1)
    except socket.timeout:
        return
    except (OSError, ssl.SSLError) as exc:
        raise _classify_read_failure(exc, STAGE_POST_HANDSHAKE, read_timeout)
    if not data:
        raise _Rejected(STAGE_POST_HANDSHAKE, "connection closed by the server after the handshake")


def _host_header(hostname, port):
    if ":" in hostname and not hostname.startswith("["):
        hostname = "[%s]" % hostname  # IPv6 literal
    return hostname if port == 443 else "%s:%d" % (hostname, port)


def _http_request(path, host_header):
    return ("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: fleet.mtls-tls_probe\r\nAccept: */*\r\n"
            "Connection: close\r\n\r\n" % (path, host_header)).encode("latin-1")


def _read_http_response(tls_socket, timeout):
    deadline = time.monotonic() + timeout
    buffer = b""
    while len(buffer) < _MAX_HTTP_RESPONSE:
        if b"\r\n\r\n" in buffer:
            head, body = buffer.split(b"\r\n\r\n", 1)
            length = re.search(br"(?im)^content-length:\s*(\d+)\s*$", head)
            if length is None or len(body) >= int(length.group(1)):
                break
        try:
            chunk = _recv(tls_socket, 4096, deadline, timeout)
        except _ProbeError:
            if b"\r\n\r\n" in buffer:
                break  # headers arrived; a slow or endless body does not matter
            raise
        except _Rejected:
            if buffer:
                break  # the server closed after answering: that is how Connection: close ends
            raise
        if not chunk:
            if not buffer:
                raise _Rejected(STAGE_POST_HANDSHAKE, "connection closed by the server before any response")
            break
        buffer += chunk
    status_line = buffer.split(b"\r\n", 1)[0].decode("latin-1", "replace")
    match = re.match(r"^HTTP/\d(?:\.\d)? (\d{3})(?: (.*))?$", status_line)
    if not match:
        raise _ProbeError(STAGE_APPLICATION, "not an HTTP response: %r" % status_line[:80])
    body = buffer.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in buffer else b""
    title = re.search(br"(?is)<title>(.*?)</title>", body)
    reason = title.group(1).decode("utf-8", "replace").strip() if title else (match.group(2) or "").strip()
    # NGINX titles its error pages "400 No required SSL certificate was sent": keep the words.
    reason = re.sub(r"^%s\s+" % match.group(1), "", reason)
    return int(match.group(1)), reason, body


def _http_denied(status, body):
    if status in _DENIAL_STATUSES:
        return True
    text = body.decode("utf-8", "replace")
    return status == 400 and any(phrase in text for phrase in _NGINX_CERT_PHRASES)


def _exchange_http(tls_socket, timeout, path, host_header, expect_status):
    _send(tls_socket, _http_request(path, host_header), timeout)
    status, reason, body = _read_http_response(tls_socket, timeout)
    details = {"http_status": status, "http_reason": reason}
    if expect_status:
        denied = status not in expect_status
    else:
        denied = _http_denied(status, body)
    if denied:
        raise _Rejected(STAGE_APPLICATION, "HTTP %d %s" % (status, reason or "(no reason given)"), details)
    return details


def _mqtt_string(text):
    data = text.encode("utf-8")
    if len(data) > 65535:
        raise MtlsError("MQTT string field is longer than 65535 bytes")
    return struct.pack("!H", len(data)) + data


def _mqtt_remaining_length(length):
    encoded = bytearray()
    while True:
        digit, length = length % 128, length // 128
        encoded.append(digit | (0x80 if length else 0))
        if not length:
            return bytes(encoded)


def mqtt_connect_packet(client_id, username=None, password=None, keepalive=30):
    """An MQTT 3.1.1 CONNECT with a clean session."""
    flags = 0x02
    payload = _mqtt_string(client_id)
    if username is not None:
        flags |= 0x80
        payload += _mqtt_string(username)
    if password is not None:
        flags |= 0x40
        payload += _mqtt_string(password)
    body = _mqtt_string("MQTT") + struct.pack("!BBH", 4, flags, keepalive) + payload
    return b"\x10" + _mqtt_remaining_length(len(body)) + body


def _exchange_mqtt(tls_socket, timeout, client_id, username, password):
    _send(tls_socket, mqtt_connect_packet(client_id, username, password), timeout)
    deadline = time.monotonic() + timeout
    packet = b""
    while len(packet) < 4:
        chunk = _recv(tls_socket, 4 - len(packet), deadline, timeout)
        if not chunk:
            raise _Rejected(STAGE_APPLICATION if packet else STAGE_POST_HANDSHAKE,
                            "connection closed by the server before CONNACK")
        packet += chunk
    if packet[0] != 0x20 or packet[1] != 2:
        raise _ProbeError(STAGE_APPLICATION, "expected an MQTT CONNACK, got bytes %s" % packet.hex())
    code = packet[3]
    details = {"mqtt_return_code": code}
    if code != 0:
        meaning = _MQTT_CONNACK_CODES.get(code, "unknown code")
        raise _Rejected(STAGE_APPLICATION, "CONNACK return code %d: %s" % (code, meaning), details)
    try:
        tls_socket.sendall(b"\xe0\x00")  # DISCONNECT, so the broker logs a clean goodbye
    except (OSError, ssl.SSLError):
        pass
    return details


def probe(host, port, server_name=None, client_cert=None, client_key=None, client_key_passphrase=None,
          ca_bundle=None, verify_server=True, min_tls_version=None, max_tls_version=None, timeout=5.0,
          read_timeout=1.0, protocol="tls", http_path="/", http_host=None, expect_status=None,
          mqtt_client_id="fleet-mtls-probe", mqtt_username=None, mqtt_password=None):
    """Connect, handshake and exchange; returns a dict (never raises for what the server does).

    Keys: ``accepted``, ``outcome`` (accepted/rejected/error), ``stage`` (where it stopped, None
    when accepted), ``error``, ``tls_version``, ``cipher``, ``peer`` (server certificate summary),
    ``server_verified``, ``handshake_ms``, ``elapsed_ms`` and, per protocol, ``http_status`` /
    ``http_reason`` or ``mqtt_return_code``. Bad options raise MtlsError.
    """
    port = validate_target(host, port)
    if protocol not in PROTOCOLS:
        raise MtlsError("unknown protocol %r: choose one of %s" % (protocol, ", ".join(PROTOCOLS)))
    for name, value in (("timeout", timeout), ("read_timeout", read_timeout)):
        if value is None or value <= 0 or value > 300:
            raise MtlsError("%s must be between 0 and 300 seconds (got %r)" % (name, value))
    if mqtt_password is not None and mqtt_username is None:
        raise MtlsError("mqtt_password needs mqtt_username (MQTT 3.1.1 has no password-only login)")
    if http_path and not http_path.startswith("/"):
        raise MtlsError("http_path %r must start with '/'" % http_path)
    for name, value in (("http_path", http_path), ("http_host", http_host)):
        if value and _UNSAFE_HTTP_TEXT.search(value):
            raise MtlsError("%s %r must not contain spaces or control characters" % (name, value))
    context = build_context(ca_bundle, verify_server, client_cert, client_key, client_key_passphrase,
                            min_tls_version, max_tls_version)
    server_hostname = server_name or host

    result = {"accepted": False, "outcome": OUTCOME_ERROR, "stage": None, "error": None,
              "tls_version": None, "cipher": None, "peer": None, "server_verified": False,
              "handshake_ms": None, "elapsed_ms": None}
    start = time.monotonic()
    try:
        raw = socket.create_connection((host, port), timeout=timeout)
    except socket.timeout:
        return _finish(result, start, OUTCOME_ERROR, STAGE_CONNECT, "connection timed out after %ss" % timeout)
    except (OSError, ValueError) as exc:
        return _finish(result, start, OUTCOME_ERROR, STAGE_CONNECT, getattr(exc, "strerror", None) or str(exc))
    try:
        try:
            tls_socket = context.wrap_socket(raw, server_hostname=server_hostname)
        except ssl.SSLCertVerificationError as exc:
            raw.close()
            return _finish(result, start, OUTCOME_ERROR, STAGE_HANDSHAKE, _ssl_error_text(exc))
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError, ConnectionResetError, BrokenPipeError):
            raw.close()
            return _finish(result, start, OUTCOME_REJECTED, STAGE_HANDSHAKE,
                           "connection closed by the server during the handshake")
        except ssl.SSLError as exc:
            raw.close()
            outcome = OUTCOME_REJECTED if _is_peer_alert(exc) else OUTCOME_ERROR
            return _finish(result, start, outcome, STAGE_HANDSHAKE, _ssl_error_text(exc))
        except socket.timeout:
            raw.close()
            return _finish(result, start, OUTCOME_ERROR, STAGE_HANDSHAKE,
                           "handshake timed out after %ss" % timeout)
        except OSError as exc:
            raw.close()
            return _finish(result, start, OUTCOME_ERROR, STAGE_HANDSHAKE, exc.strerror or str(exc))
        with tls_socket:
            result["handshake_ms"] = _milliseconds(start)
            result["tls_version"] = tls_socket.version()
            result["cipher"] = (tls_socket.cipher() or (None,))[0]
            result["server_verified"] = bool(verify_server)
            result["peer"] = _peer_summary(tls_socket)
            try:
                if protocol == "http":
                    result.update(_exchange_http(tls_socket, timeout, http_path or "/",
                                                 http_host or _host_header(server_hostname, port),
                                                 expect_status))
                elif protocol == "mqtt":
                    result.update(_exchange_mqtt(tls_socket, timeout, mqtt_client_id, mqtt_username,
                                                 mqtt_password))
                else:
                    _exchange_tls(tls_socket, read_timeout)
            except _Rejected as rejected:
                result.update(rejected.details)
                return _finish(result, start, OUTCOME_REJECTED, rejected.stage, rejected.error)
            except _ProbeError as failed:
                return _finish(result, start, OUTCOME_ERROR, failed.stage, failed.error)
    finally:
        raw.close()
    return _finish(result, start, OUTCOME_ACCEPTED, None, None)


def _finish(result, start, outcome, stage, error):
    result["outcome"] = outcome
    result["accepted"] = outcome == OUTCOME_ACCEPTED
    result["stage"] = stage
    result["error"] = error
    result["elapsed_ms"] = _milliseconds(start)
    return result


def expectation_failure(result, expect, target):
    """None when ``result`` meets ``expect`` (accepted/rejected), else a message saying why not."""
    if expect is None or result["outcome"] == expect:
        return None
    if result["outcome"] == OUTCOME_ERROR:
        return ("expected %s to %s the connection, but the probe could not tell: %s failed: %s"
                % (target, "accept" if expect == OUTCOME_ACCEPTED else "reject",
                   result["stage"], result["error"]))
    if expect == OUTCOME_ACCEPTED:
        return ("expected %s to accept the connection, but it was rejected at the %s stage: %s"
                % (target, result["stage"], result["error"]))
    return ("expected %s to reject the connection, but it was accepted (%s, %s)"
            % (target, result["tls_version"], _accepted_detail(result)))


def _accepted_detail(result):
    if "http_status" in result:
        return "HTTP %s" % result["http_status"]
    if "mqtt_return_code" in result:
        return "CONNACK %s" % result["mqtt_return_code"]
    return "no alert within the read timeout"
