# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The OpenBao / HashiCorp Vault PKI signing backend (``mtls_ca_backend: vault``), on hvac.

API:
``VaultPKI(urls, mount="pki", token=None, role_id=None, secret_id=None, approle_mount="approle",
namespace=None, ca_file=None, timeout=30, retries=5, backoff=0.5)`` - a connection to one engine
(``urls`` is one URL or the nodes of an HA cluster, tried in turn); ``.login()`` checks the token
(or logs in with AppRole) before anything else.
``sign_requests(pki, requests, roles=None, validity_days=90, truncate_to_issuer=False,
issuer_ref=None, allowed_key_types=None, concurrency=8, check_mode=False)`` -> list of result dicts
in request order, the same shape as the local ``certificate`` module's ``certificates`` entries
(``identity, host, profile, subject, sans, serial, certificate, not_before, not_after``), and the
issuer chain. ``prepare_mount(pki, ...)`` makes a mount ready for a fleet, idempotently.
``publication(pki, issuer_ref=None)`` -> the trust bundle (every non-retired issuer), CRL bundle (each
one's CRL) and signing CA, by the file names of the local CA's publication.
``credentials_for(purpose, variables)`` -> the ``token`` or AppRole options of ``signing`` or
``rotation`` from the inventory variables (rotation falls back to the signing credentials).

Signer policy (the same as the local backend, docs/architecture.md): the subject and SANs are the
request's declaration (``common_name``, else the identity; ``sans``), sent explicitly; the CSR gives
the key only. The PKI role of each profile must be configured so (``use_csr_sans=false``,
``use_csr_common_name=false``, EKU flags of the profile): ``sign_requests`` reads the roles first and
refuses one that is not, and checks every returned certificate against the declaration.
``sign-verbatim`` is never used. A leaf never outlives its issuer: checked before anything is sent
(error, or ``not_after`` clipped to the issuer's with ``truncate_to_issuer``).

Every request is validated before the first is sent; a refusal stops the remaining ones and fails
naming the request, host and identity. The API has no batch call, so requests run on a bounded
thread pool; connection errors, 429 and 5xx are retried with exponential backoff, moving to the
next URL on connection errors and 5xx (a standby forwards to the active node; while an election
runs, every node answers 5xx or nothing).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.fleet.mtls.plugins.module_utils.ca_store import CAStore
from ansible_collections.fleet.mtls.plugins.module_utils.compat import (
    crl_next_update, isoformat, not_valid_after, not_valid_before, parse_isoformat, pem_blocks, utcnow)
from ansible_collections.fleet.mtls.plugins.module_utils.crl import crl_number_of
from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError
from ansible_collections.fleet.mtls.plugins.module_utils.issuance import (
    DEFAULT_VALIDITY_DAYS, REQUEST_TYPES, LeafRequest, check_batch_names, check_host_name, load_csr, request_label)
from ansible_collections.fleet.mtls.plugins.module_utils.keys import KEY_TYPES, check_key_type, key_type_of
from ansible_collections.fleet.mtls.plugins.module_utils.names import common_name_of, leaf_sans, sans_of, subject_string
from ansible_collections.fleet.mtls.plugins.module_utils.profiles import (
    CLIENT_PROFILES, DEFAULT_PROFILE, SERVER_PROFILES, check_profile, profile_of)
from ansible_collections.fleet.mtls.plugins.module_utils.host_layout import check_identity_name

try:
    import hvac
    import hvac.exceptions
    import requests
    HAS_HVAC = True
except ImportError:
    HAS_HVAC = False

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    HAS_CRYPTOGRAPHY = True
except ImportError:
    HAS_CRYPTOGRAPHY = False

DEFAULT_ROLES = {"server": "fleet-server", "client": "fleet-client", "server_client": "fleet-server-client"}
DEFAULT_CONCURRENCY = 8
DEFAULT_RETRIES = 5
DEFAULT_BACKOFF = 0.5
MAX_BACKOFF = 8.0
# issuance's request keys but key_type: the vault backend signs host-made keys only.
_REQUEST_KEYS = tuple(key for key in REQUEST_TYPES if key != "key_type")
# Statuses worth another try: rate limited, and the server side of an election or a restart.
_RETRY_STATUSES = (412, 429, 500, 502, 503, 504)


def _from_environment(*names):
    for name in names:
        if os.environ.get(name):
            return os.environ[name]
    return None


def connection_spec():
    """argument_spec entries of the connection options every vault module shares."""
    return dict(
        url=dict(type="list", elements="str"),
        mount=dict(type="str", default="pki"),
        token=dict(type="str", no_log=True),
        role_id=dict(type="str"),
        secret_id=dict(type="str", no_log=True),
        approle_mount=dict(type="str", default="approle"),
        namespace=dict(type="str"),
        ca_file=dict(type="path"),
        timeout=dict(type="int", default=30),
        retries=dict(type="int", default=DEFAULT_RETRIES),
    )


# The inventory variables of each purpose's credentials, most specific first. A purpose whose own
# variables are unset uses the next one's (rotation falls back to the signing credentials).
CREDENTIAL_VARIABLES = {
    "signing": [("mtls_vault_token", "mtls_vault_role_id", "mtls_vault_secret_id")],
    "rotation": [("mtls_vault_rotation_token", "mtls_vault_rotation_role_id", "mtls_vault_rotation_secret_id"),
                 ("mtls_vault_token", "mtls_vault_role_id", "mtls_vault_secret_id")],
}


def credentials_for(purpose, variables):
    """The connection options (``token``, or ``role_id`` and ``secret_id``) of ``purpose`` from the
    inventory ``variables``: the first set whose token or AppRole pair is given, a token winning over
    an AppRole pair of the same set; ``{}`` when none is (the modules then read VAULT_TOKEN/BAO_TOKEN).
    An AppRole pair with one half missing is an error naming the variable, never a silent fallback."""
    if purpose not in CREDENTIAL_VARIABLES:
        raise MtlsError("unknown vault credential purpose %r (expected one of: %s)"
                        % (purpose, ", ".join(sorted(CREDENTIAL_VARIABLES))))
    for token_var, role_var, secret_var in CREDENTIAL_VARIABLES[purpose]:
        token, role_id, secret_id = (_given(variables, name) for name in (token_var, role_var, secret_var))
        if token:
            return {"token": token}
        if role_id and secret_id:
            return {"role_id": role_id, "secret_id": secret_id}
        if role_id or secret_id:
            raise MtlsError("%s is set but %s is not: an AppRole login needs both"
                            % ((role_var, secret_var) if role_id else (secret_var, role_var)))
    return {}


def _given(variables, name):
    value = variables.get(name) if hasattr(variables, "get") else None
    return value if value not in (None, "") else None


def roles_spec():
    """argument_spec entry of ``roles`` (the PKI role of each profile) both vault modules take."""
    return dict(type="dict", options=dict((profile, dict(type="str", default=name))
                                          for profile, name in DEFAULT_ROLES.items()))


def module_spec(options):
    """AnsibleModule keyword arguments of a vault module: its ``options`` next to the shared connection
    options (documented by the ``fleet.mtls.vault`` doc fragment) and their rules."""
    argument_spec = connection_spec()
    argument_spec.update(options)
    return dict(argument_spec=argument_spec, required_together=[("role_id", "secret_id")],
                supports_check_mode=True)


def connect(params):
    """VaultPKI from module parameters; unset ones come from VAULT_* / BAO_* like the bao/vault CLIs."""
    urls = params.get("url") or _from_environment("VAULT_ADDR", "BAO_ADDR")
    role_id = params.get("role_id")
    # An explicit AppRole login wins over a token from the environment.
    token = params.get("token") or (None if role_id else _from_environment("VAULT_TOKEN", "BAO_TOKEN"))
    return VaultPKI(urls, mount=params.get("mount") or "pki", token=token, role_id=role_id,
                    secret_id=params.get("secret_id"), approle_mount=params.get("approle_mount") or "approle",
                    namespace=params.get("namespace") or _from_environment("VAULT_NAMESPACE", "BAO_NAMESPACE"),
                    ca_file=params.get("ca_file") or _from_environment("VAULT_CACERT", "BAO_CACERT"),
                    timeout=params.get("timeout") or 30,
                    retries=DEFAULT_RETRIES if params.get("retries") is None else params["retries"])


class _Refused(Exception):
    """An answer that retrying will not change (4xx, TLS verification)."""


def _status_of(exc):
    for cls, status in ((getattr(hvac.exceptions, "InvalidRequest", None), 400),
                        (getattr(hvac.exceptions, "Unauthorized", None), 401),
                        (getattr(hvac.exceptions, "Forbidden", None), 403),
                        (getattr(hvac.exceptions, "InvalidPath", None), 404),
                        (getattr(hvac.exceptions, "UnsupportedOperation", None), 405),
                        (getattr(hvac.exceptions, "PreconditionFailed", None), 412),
                        (getattr(hvac.exceptions, "RateLimitExceeded", None), 429),
                        (getattr(hvac.exceptions, "InternalServerError", None), 500),
                        (getattr(hvac.exceptions, "VaultNotInitialized", None), 501),
                        (getattr(hvac.exceptions, "BadGateway", None), 502),
                        (getattr(hvac.exceptions, "VaultDown", None), 503)):
        if cls is not None and isinstance(exc, cls):
            return status
    return None


def _errors_text(exc):
    errors = getattr(exc, "errors", None)
    if errors:
        return "; ".join(str(error) for error in errors)
    return (str(exc).splitlines() or ["no message"])[0]


def _connection_text(exc):
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "timed out", "Connection reset",
                   "Remote end closed", "No route to host"):
        if marker in text:
            return marker.lower()
    return (text.splitlines() or ["connection failed"])[0][:300]


class VaultPKI:
    """One PKI mount on one engine (one URL, or the nodes of an HA cluster)."""

    def __init__(self, urls, mount="pki", token=None, role_id=None, secret_id=None, approle_mount="approle",
                 namespace=None, ca_file=None, timeout=30, retries=DEFAULT_RETRIES, backoff=DEFAULT_BACKOFF):
        if not HAS_HVAC:
            raise MtlsError("the vault backend needs the hvac Python library on the controller (pip install hvac)")
        if isinstance(urls, str):
            urls = [urls]
        urls = [url.rstrip("/") for url in (urls or []) if url]
        if not urls:
            raise MtlsError("no OpenBao/Vault URL given (url, or VAULT_ADDR / BAO_ADDR in the environment)")
        for url in urls:
            if not url.startswith(("https://", "http://")):
                raise MtlsError("OpenBao/Vault URL %r must start with https:// (or http://)" % url)
        if not mount or not isinstance(mount, str) or mount.strip("/") != mount or " " in mount:
            raise MtlsError("invalid PKI mount %r: a path like pki or pki/fleet, no leading or trailing '/'"
                            % (mount,))
        if not token and not (role_id and secret_id):
            raise MtlsError("no OpenBao/Vault credentials: give token (or VAULT_TOKEN / BAO_TOKEN), or "
                            "role_id and secret_id for AppRole")
        for name, value, least in (("retries", retries, 0), ("timeout", timeout, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise MtlsError("%s must be a whole number of at least %d, got %r" % (name, least, value))
        self.urls = urls
        self.mount = mount
        self.namespace = namespace or None
        self.verify = ca_file if ca_file else True
        self.ca_file = ca_file
        self.timeout = timeout
        self.retries = retries
        self.backoff = float(backoff)
        self._token = token
        self._role_id = role_id
        self._secret_id = secret_id
        self._approle_mount = approle_mount
        self._local = threading.local()
        self._url_lock = threading.Lock()
        self._current = 0
        self.retried = 0
        self.failovers = 0

    # --- transport -------------------------------------------------------------------------

    def _client(self, url):
        clients = getattr(self._local, "clients", None)
        if clients is None:
            clients = self._local.clients = {}
        client = clients.get(url)
        if client is None or client.token != self._token:
            client = hvac.Client(url=url, token=self._token, verify=self.verify, timeout=self.timeout,
                                 namespace=self.namespace)
            clients[url] = client
        return client

    def _next_url(self, failed):
        with self._url_lock:
            if self.urls[self._current] == failed and len(self.urls) > 1:
                self._current = (self._current + 1) % len(self.urls)
                self.failovers += 1
            return self.urls[self._current]

    def call(self, method, path, data=None, what=None):
        """One API call with retries; the parsed JSON answer (None for 204). Raises MtlsError."""
        what = what or "%s %s" % (method, path)
        attempt = 0
        url = self.urls[self._current]
        while True:
            try:
                return self._once(url, method, path, data)
            except _Refused as exc:
                raise MtlsError("%s: %s" % (what, exc.args[0]), url=url, path=path, status=exc.args[1])
            except Exception as exc:  # classified below: retried, or re-raised as MtlsError
                transient, text = self._transient(exc, url)
                if not transient or attempt >= self.retries:
                    if transient and attempt:
                        text += " (after %d attempts)" % (attempt + 1)
                    raise MtlsError("%s: %s" % (what, text), url=url, path=path, status=_status_of(exc))
            attempt += 1
            self.retried += 1
            url = self._next_url(url)
            time.sleep(min(self.backoff * (2 ** (attempt - 1)), MAX_BACKOFF))

    def _once(self, url, method, path, data):
        client = self._client(url)
        headers = {"Content-Type": "application/merge-patch+json"} if method == "PATCH" else None
        try:
            response = client.adapter.request(method, "/v1/" + path, json=data, headers=headers)
        except hvac.exceptions.VaultError as exc:
            status = _status_of(exc)
            if status is not None and status not in _RETRY_STATUSES:
                raise _Refused(self._refusal_text(status, exc, url), status)
            raise
        except requests.exceptions.SSLError as exc:
            raise _Refused("TLS verification of %s failed (%s): check ca_file %s"
                           % (url, _connection_text(exc), self.ca_file or "(system trust store)"), None)
        if isinstance(response, dict):
            return response
        if response is None or getattr(response, "status_code", 204) == 204:
            return None
        try:
            return response.json()
        except ValueError:
            return None

    def _refusal_text(self, status, exc, url):
        text = _errors_text(exc)
        if status == 403:
            return ("refused by %s (permission denied: %s): the token's policy does not allow this, or the "
                    "token is invalid or expired" % (url, text))
        if status == 404:
            return "not found on %s (%s): is the mount %r enabled and configured?" % (url, text, self.mount)
        if status == 401:
            return "authentication failed at %s: %s" % (url, text)
        return "refused by %s (HTTP %s): %s" % (url, status, text)

    def _transient(self, exc, url):
        if isinstance(exc, hvac.exceptions.VaultError):
            status = _status_of(exc)
            text = _errors_text(exc)
            if "sealed" in text.lower():
                return True, "%s is sealed: unseal it (bao operator unseal) and run again" % url
            return True, "%s answered HTTP %s: %s" % (url, status or "error", text)
        if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout)):
            return True, "cannot reach %s: %s" % (url, _connection_text(exc))
        if isinstance(exc, requests.exceptions.RequestException):
            return False, "request to %s failed: %s" % (url, _connection_text(exc))
        raise exc

    def read(self, path, what=None):
        return self.call("GET", path, what=what)

    def read_optional(self, path, what=None):
        """GET, None when the path does not exist (404)."""
        try:
            return self.read(path, what)
        except MtlsError as exc:
            if exc.details.get("status") == 404:
                return None
            raise

    def write(self, path, data, what=None):
        return self.call("POST", path, data or {}, what=what)

    def patch(self, path, data, what=None):
        return self.call("PATCH", path, data, what=what)

    def list(self, path, what=None):
        """LIST keys ([] when there are none)."""
        try:
            answer = self.call("LIST", path, what=what)
        except MtlsError as exc:
            if exc.details.get("status") == 404:
                return []
            raise
        return ((answer or {}).get("data") or {}).get("keys") or []

    # --- authentication --------------------------------------------------------------------

    def login(self):
        """Check the token (or log in with AppRole); returns the token's lookup data (no secrets)."""
        if not self._token:
            answer = self.write("auth/%s/login" % self._approle_mount,
                                {"role_id": self._role_id, "secret_id": self._secret_id},
                                what="AppRole login at auth/%s" % self._approle_mount)
            self._token = ((answer or {}).get("auth") or {}).get("client_token")
            if not self._token:
                raise MtlsError("AppRole login at auth/%s returned no token" % self._approle_mount)
        try:
            answer = self.read("auth/token/lookup-self", what="checking the OpenBao/Vault token")
        except MtlsError as exc:
            if exc.details.get("status") in (401, 403):
                raise MtlsError("the OpenBao/Vault token was refused by %s: it is invalid, expired or revoked "
                                "(or its policy lacks read on auth/token/lookup-self)" % exc.details.get("url"),
                                url=exc.details.get("url"))
            raise
        data = (answer or {}).get("data") or {}
        return {"policies": data.get("policies"), "ttl": data.get("ttl"), "renewable": data.get("renewable")}

    # --- PKI reads --------------------------------------------------------------------------

    def issuer(self, ref=None):
        """(certificate, [chain certificates above it]) of an issuer of the mount (default issuer)."""
        ref = ref or "default"
        answer = self.read_optional("%s/issuer/%s/json" % (self.mount, ref),
                                    what="reading issuer %s of mount %s" % (ref, self.mount))
        data = (answer or {}).get("data") or {}
        if not data.get("certificate"):
            raise MtlsError("mount %s has no issuer %r: enable and prepare it first (fleet.mtls.vault_pki_mount)"
                            % (self.mount, ref), mount=self.mount)
        cert = x509.load_pem_x509_certificate(data["certificate"].encode("ascii"))
        chain = []
        for pem in data.get("ca_chain") or []:
            for block in pem_blocks(pem, "CERTIFICATE"):
                candidate = x509.load_pem_x509_certificate(block)
                if candidate != cert:
                    chain.append(candidate)
        return cert, chain

    def role(self, name):
        answer = self.read_optional("%s/roles/%s" % (self.mount, name),
                                    what="reading PKI role %s of mount %s" % (name, self.mount))
        return (answer or {}).get("data")


# --- signing -------------------------------------------------------------------------------


class VaultPlan(LeafRequest):
    """A validated request (issuance's request type): what the engine is asked to sign."""

    def __init__(self, position, identity, host, profile, common_name, sans, validity_days, csr_pem, key_type):
        LeafRequest.__init__(self, position, identity, host, profile, common_name, sans, validity_days, key_type)
        self.csr_pem = csr_pem

    def body(self, not_after_text=None):
        dns = [san.split(":", 1)[1] for san in self.sans if san.startswith(("DNS:", "email:"))]
        body = {"csr": self.csr_pem, "common_name": self.common_name, "exclude_cn_from_sans": True,
                "alt_names": ",".join(dns),
                "ip_sans": ",".join(san[3:] for san in self.sans if san.startswith("IP:")),
                "uri_sans": ",".join(san[4:] for san in self.sans if san.startswith("URI:")),
                "format": "pem", "private_key_format": "der"}
        if not_after_text:
            body["not_after"] = not_after_text
        else:
            body["ttl"] = "%dh" % (self.validity_days * 24)
        return body


def plan_vault_request(request, position, default_validity_days, allowed_key_types):
    if not isinstance(request, dict):
        raise MtlsError("request %d is not a dictionary" % position)
    identity = request.get("identity")
    host = request.get("host") or None
    where = request_label(position, identity, host)
    try:
        unknown = sorted(set(k for k, v in request.items() if v is not None) - set(_REQUEST_KEYS))
        if unknown:
            raise MtlsError("unknown request keys %s (known: %s)" % (", ".join(unknown), ", ".join(_REQUEST_KEYS)))
        check_identity_name(identity)
        if host is not None:
            check_host_name(host)
        profile = check_profile(request.get("profile") or DEFAULT_PROFILE)
        validity_days = request.get("validity_days")
        if isinstance(validity_days, str) and validity_days.isdigit():
            validity_days = int(validity_days)
        validity_days = default_validity_days if validity_days is None else validity_days
        if isinstance(validity_days, bool) or not isinstance(validity_days, int) or validity_days <= 0:
            raise MtlsError("validity_days must be a positive number of days, got %r" % (validity_days,))
        if not request.get("csr"):
            raise MtlsError("csr is missing: the vault backend signs host-made keys only")
        csr = load_csr(request["csr"])
        key_type = key_type_of(csr.public_key())
        if key_type not in (allowed_key_types or KEY_TYPES):
            raise MtlsError("key type %s is not allowed (allowed: %s)"
                            % (key_type, ", ".join(allowed_key_types or KEY_TYPES)))
        sans = request.get("sans")
        if sans is not None and (not isinstance(sans, list) or not all(isinstance(s, str) for s in sans)):
            raise MtlsError("sans must be a list of strings")
        common_name = request.get("common_name") or identity
        if not isinstance(common_name, str):
            raise MtlsError("common_name must be a string")
        # Names come from the declaration only: the CSR's subject and SANs are never looked at.
        planned_sans = leaf_sans(profile, common_name, sans)
        csr_pem = request["csr"] if isinstance(request["csr"], str) else request["csr"].decode("ascii")
    except MtlsError as exc:
        raise MtlsError("%s: %s" % (where, exc.message), request=position, identity=identity, host=host)
    return VaultPlan(position, identity, host, profile, common_name, planned_sans, validity_days, csr_pem, key_type)


def check_role(pki, profile, name, role):
    """Refuse a PKI role that would take names from the CSR or give the wrong EKU."""
    if role is None:
        raise MtlsError("PKI role %s (profile %s) does not exist on mount %s: prepare the mount first "
                        "(fleet.mtls.vault_pki_mount)" % (name, profile, pki.mount), role=name, mount=pki.mount)
    want_server = profile in SERVER_PROFILES
    want_client = profile in CLIENT_PROFILES
    problems = []
    if role.get("use_csr_sans", True):
        problems.append("use_csr_sans must be false")
    if role.get("use_csr_common_name", True):
        problems.append("use_csr_common_name must be false")
    if bool(role.get("server_flag")) != want_server:
        problems.append("server_flag must be %s" % str(want_server).lower())
    if bool(role.get("client_flag")) != want_client:
        problems.append("client_flag must be %s" % str(want_client).lower())
    if role.get("ext_key_usage") or role.get("ext_key_usage_oids") or role.get("code_signing_flag") \
            or role.get("email_protection_flag"):
        problems.append("no extended key usage beyond the profile's may be set")
    if problems:
        raise MtlsError("PKI role %s (profile %s) on mount %s does not follow the signer policy: %s"
                        % (name, profile, pki.mount, "; ".join(problems)), role=name, mount=pki.mount)


def _not_after_limit(plans, issuer_cert, truncate_to_issuer, now):
    issuer_end = not_valid_after(issuer_cert)
    if issuer_end <= now:
        raise MtlsError("the issuing CA %s expired on %s"
                        % (subject_string(issuer_cert.subject), isoformat(issuer_end)))
    for plan in plans:
        end = now + datetime.timedelta(days=plan.validity_days)
        if end > issuer_end:
            if not truncate_to_issuer:
                raise plan.error("validity_days=%d would end on %s, after the issuing CA expires (%s); lower "
                                 "validity_days or set truncate_to_issuer"
                                 % (plan.validity_days, isoformat(end), isoformat(issuer_end)))
            plan.not_after = issuer_end
    return issuer_end


def _check_issued(plan, cert, role_name):
    got_sans = sorted(sans_of(cert))
    got_cn = common_name_of(cert.subject)
    got_profile = profile_of(cert)
    if got_sans != sorted(plan.sans) or got_cn != plan.common_name or got_profile != plan.profile:
        raise plan.error("the engine returned a certificate that differs from the declaration (CN %r, SANs %s, "
                         "profile %s; declared CN %r, SANs %s, profile %s): fix PKI role %s"
                         % (got_cn, got_sans, got_profile, plan.common_name, sorted(plan.sans), plan.profile,
                            role_name))


def _result(plan, cert, cert_pem, chain_pem, include_chain):
    return plan.result(cert, cert_pem, chain_pem,
                       subject_string(cert.subject) if cert is not None else "CN=%s" % plan.common_name,
                       isoformat(not_valid_before(cert)) if cert is not None else None,
                       isoformat(not_valid_after(cert) if cert is not None else plan.not_after), include_chain)


def _check_concurrency(concurrency):
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or not 1 <= concurrency <= 64:
        raise MtlsError("concurrency must be between 1 and 64, got %r" % (concurrency,))
    return concurrency


class SignOutcome:
    def __init__(self, certificates, ca_chain, issuer, stats):
        self.certificates = certificates
        self.ca_chain = ca_chain
        self.issuer = issuer
        self.stats = stats


def sign_requests(pki, requests, roles=None, validity_days=DEFAULT_VALIDITY_DAYS, truncate_to_issuer=False,
                  issuer_ref=None, allowed_key_types=None, concurrency=DEFAULT_CONCURRENCY, check_mode=False,
                  include_chain=False):
    """Validate every request, check the engine (token, issuer, roles), then sign; SignOutcome."""
    _check_concurrency(concurrency)
    if allowed_key_types:
        allowed_key_types = [check_key_type(kt) for kt in allowed_key_types]
    roles = dict(DEFAULT_ROLES, **(roles or {}))
    for profile in roles:
        check_profile(profile)
    plans = [plan_vault_request(request, position, validity_days, allowed_key_types)
             for position, request in enumerate(requests, 1)]
    check_batch_names(plans)
    pki.login()
    issuer_cert, issuer_chain = pki.issuer(issuer_ref)
    now = utcnow()
    _not_after_limit(plans, issuer_cert, truncate_to_issuer, now)
    for profile in sorted(set(plan.profile for plan in plans)):
        check_role(pki, profile, roles[profile], pki.role(roles[profile]))
    chain_certs = [issuer_cert] + issuer_chain
    chain_pem = "".join(c.public_bytes(_PEM).decode("ascii") for c in chain_certs if c.subject != c.issuer)
    issuer_text = subject_string(issuer_cert.subject)
    if check_mode:
        return SignOutcome([_result(plan, None, None, chain_pem, include_chain) for plan in plans], chain_pem,
                           issuer_text, {"signed": 0, "retried": 0, "failovers": 0})

    base = "%s/issuer/%s" % (pki.mount, issuer_ref) if issuer_ref else pki.mount
    stop = threading.Event()

    def sign_one(plan):
        if stop.is_set():
            return None
        role_name = roles[plan.profile]
        not_after_text = plan.not_after.strftime("%Y-%m-%dT%H:%M:%SZ") if plan.not_after else None
        try:
            answer = pki.write("%s/sign/%s" % (base, role_name), plan.body(not_after_text),
                               what="signing through PKI role %s" % role_name)
            data = (answer or {}).get("data") or {}
            cert_pem = data.get("certificate")
            if not cert_pem:
                raise MtlsError("the engine answered without a certificate")
            cert = x509.load_pem_x509_certificate(cert_pem.encode("ascii"))
            _check_issued(plan, cert, role_name)
        except MtlsError as exc:
            stop.set()
            if exc.message.startswith(plan.label()):
                raise
            details = dict((k, v) for k, v in exc.details.items() if k not in ("request", "identity", "host"))
            raise plan.error(exc.message, **details)
        if not cert_pem.endswith("\n"):
            cert_pem += "\n"
        return cert, cert_pem

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=min(concurrency, len(plans)) or 1) as pool:
        futures = [pool.submit(sign_one, plan) for plan in plans]
        outcomes = []
        for future in futures:
            try:
                outcomes.append(future.result())
            except MtlsError as exc:
                outcomes.append(exc)
    errors = [outcome for outcome in outcomes if isinstance(outcome, MtlsError)]
    signed = sum(1 for outcome in outcomes if isinstance(outcome, tuple))
    if errors:
        first = errors[0]
        raise MtlsError("%s (%d of %d requests were signed before the failure; none is returned or installed)"
                        % (first.message, signed, len(plans)), signed_before_failure=signed, **first.details)
    certificates = [_result(plan, cert, cert_pem, chain_pem, include_chain)
                    for plan, (cert, cert_pem) in zip(plans, outcomes)]
    stats = {"signed": signed, "retried": pki.retried, "failovers": pki.failovers,
             "seconds": round(time.monotonic() - started, 3)}
    return SignOutcome(certificates, chain_pem, issuer_text, stats)


try:
    from cryptography.hazmat.primitives.serialization import Encoding
    _PEM = Encoding.PEM
except ImportError:
    _PEM = None


# --- what the engine publishes to the fleet ---------------------------------------------------

# The names the local CA's publication uses (rotation.py), so the identity role reads both alike.
TRUST_BUNDLE, CRL_BUNDLE, SIGNING_CA = "trust-bundle.pem", "crl-bundle.pem", "signing-ca.pem"


def _pem_text(cert):
    return cert.public_bytes(_PEM).decode("ascii")


def _depth(cert, by_subject, limit=16):
    """How many issuers sit above ``cert`` among the mount's issuers (0: a root)."""
    depth = 0
    while cert.subject != cert.issuer and depth < limit:
        parent = by_subject.get(cert.issuer.public_bytes())
        if parent is None:
            break
        cert, depth = parent, depth + 1
    return depth


def publication(pki, issuer_ref=None, crls=None, now=None):
    """The engine's counterpart of the local CA's publication: ``{"publication": {file name: text},
    "issuers": [{id, name, subject, not_after, published, reason}]}``.

    ``trust-bundle.pem``: every non-retired issuer of the mount (neither revoked nor expired), roots
    first, then each level below them (by notBefore, then name), so the same engine state always gives
    the same text; ``crl-bundle.pem``: each of those issuers' CRL, same order (NGINX checks the CRL of
    every certificate of a chain); ``signing-ca.pem``: the issuer that signs (``issuer_ref``, default the
    mount's default issuer). Every CRL is checked: signed by its issuer, not past its nextUpdate.

    An issuer the engine holds no key for (the local root of a mount that imported the local issuing
    CA with its chain) has no CRL in the engine: its CRL comes from ``crls`` (PEM text, e.g. the local
    CA's crl-bundle.pem; each CRL is matched to its issuer by name and signature), else it fails.
    """
    now = now or utcnow()
    supplied = [x509.load_pem_x509_crl(block) for block in pem_blocks(crls or "", "X509 CRL")]
    pki.login()
    signing_cert, dummy = pki.issuer(issuer_ref)
    issuers = []
    for issuer_id in pki.list("%s/issuers" % pki.mount, what="listing the issuers of mount %s" % pki.mount):
        data = (pki.read("%s/issuer/%s" % (pki.mount, issuer_id),
                         what="reading issuer %s of mount %s" % (issuer_id, pki.mount)) or {}).get("data") or {}
        if not data.get("certificate"):
            raise MtlsError("issuer %s of mount %s has no certificate" % (issuer_id, pki.mount), mount=pki.mount)
        cert = x509.load_pem_x509_certificate(data["certificate"].encode("ascii"))
        reason = None
        if data.get("revoked"):
            reason = "revoked"
        elif not_valid_after(cert) <= now:
            reason = "expired on %s" % isoformat(not_valid_after(cert))
        issuers.append({"id": issuer_id, "name": data.get("issuer_name") or "", "cert": cert, "reason": reason,
                        "key_id": data.get("key_id") or ""})
    if not any(entry["cert"] == signing_cert for entry in issuers):
        raise MtlsError("the signing issuer %s is not among the issuers of mount %s"
                        % (subject_string(signing_cert.subject), pki.mount), mount=pki.mount)
    live = [entry for entry in issuers if entry["reason"] is None]
    by_subject = dict((entry["cert"].subject.public_bytes(), entry["cert"]) for entry in live)
    live.sort(key=lambda entry: (_depth(entry["cert"], by_subject), not_valid_before(entry["cert"]),
                                 entry["name"], entry["id"]))
    texts = []
    for entry in live:
        texts.append(_issuer_crl(pki, entry, supplied, now))
    published = {
        TRUST_BUNDLE: "".join(_pem_text(entry["cert"]) for entry in live),
        CRL_BUNDLE: "".join(texts),
        SIGNING_CA: _pem_text(signing_cert),
    }
    retired = [entry for entry in issuers if entry["reason"] is not None]
    listing = []
    for entry in live + retired:
        listing.append({"id": entry["id"], "name": entry["name"], "subject": subject_string(entry["cert"].subject),
                        "not_after": isoformat(not_valid_after(entry["cert"])),
                        "published": entry["reason"] is None, "reason": entry["reason"]})
    return {"publication": published, "issuers": listing, "signing_issuer": subject_string(signing_cert.subject)}


def _issuer_crl(pki, entry, supplied, now):
    """The PEM CRL of one issuer - the engine's, or for an issuer it holds no key for one of
    ``supplied`` - checked against the issuer."""
    cert = entry["cert"]
    label = "issuer %s (%s) of mount %s" % (entry["name"] or entry["id"], subject_string(cert.subject), pki.mount)
    if entry["key_id"]:
        answer = pki.read("%s/issuer/%s/crl" % (pki.mount, entry["id"]), what="reading the CRL of %s" % label)
        blocks = pem_blocks(((answer or {}).get("data") or {}).get("crl") or "", "X509 CRL")
        if len(blocks) != 1:
            raise MtlsError("the engine returned no CRL for %s" % label, mount=pki.mount)
        crl = x509.load_pem_x509_crl(blocks[0])
        if crl.issuer != cert.subject or not crl.is_signature_valid(cert.public_key()):
            raise MtlsError("the CRL the engine returned for %s is not signed by it" % label, mount=pki.mount)
    else:
        matching = [crl for crl in supplied if crl.issuer == cert.subject and crl.is_signature_valid(cert.public_key())]
        if not matching:
            raise MtlsError("%s has no key in the engine (an imported CA certificate), so the engine has no CRL for "
                            "it: give its CRL (crls; the identity role's mtls_vault_crls), e.g. from the local CA's "
                            "crl-bundle.pem" % label, mount=pki.mount)
        # The newest one when several are given.
        crl = max(matching, key=lambda candidate: crl_number_of(candidate) or 0)
    next_update = crl_next_update(crl)
    if next_update is not None and next_update <= now:
        fix = "rebuild it (auto_rebuild, or %s/crl/rotate)" % pki.mount if entry["key_id"] else "give a current one"
        raise MtlsError("the CRL of %s expired on %s: %s" % (label, isoformat(next_update), fix), mount=pki.mount)
    return crl.public_bytes(_PEM).decode("ascii")


# --- preparing a mount for the fleet ---------------------------------------------------------


def _hours(days):
    return "%dh" % (days * 24)


# argument_spec of vault_pki_mount's ``policy`` option; its defaults are the policy without one.
POLICY_SPEC = dict(
    allowed_domains=dict(type="list", elements="str", default=[]),
    allow_subdomains=dict(type="bool", default=True),
    allow_bare_domains=dict(type="bool", default=True),
    allow_glob_domains=dict(type="bool", default=False),
    allow_wildcard_certificates=dict(type="bool", default=False),
    allow_any_name=dict(type="bool", default=False),
    allow_localhost=dict(type="bool", default=False),
    allow_ip_sans=dict(type="bool", default=True),
    allowed_uri_sans=dict(type="list", elements="str", default=[]),
    enforce_hostnames=dict(type="bool", default=True),
    max_validity_days=dict(type="int", default=90),
    backdate_minutes=dict(type="int", default=5),
)


def role_policy(policy):
    """The PKI role fields of a SAN ``policy`` (vault_pki_mount's option; None: the defaults)."""
    policy = dict(policy or dict((name, spec["default"]) for name, spec in POLICY_SPEC.items()))
    days = policy.pop("max_validity_days")
    minutes = policy.pop("backdate_minutes")
    if days is None or days <= 0 or minutes is None or minutes < 0:
        raise MtlsError("policy.max_validity_days must be positive and policy.backdate_minutes 0 or more")
    policy["max_ttl"] = _hours(days)
    policy["not_before_duration"] = "%ds" % (minutes * 60)
    return policy


def import_material(ca_path, passphrase):
    """(unencrypted key PEM, chain PEM) of a local CA store, for ``prepare_mount(ca_source="import")``."""
    if not ca_path or passphrase is None:
        raise MtlsError("ca_source=import needs import_ca_path and import_ca_passphrase")
    signer = CAStore(ca_path).load(passphrase)
    key_pem = signer.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()).decode("ascii")
    return key_pem, signer.chain_pem.decode("ascii")


_ENGINE_KEY_TYPES = {"ec_p256": ("ec", 256), "ec_p384": ("ec", 384), "rsa2048": ("rsa", 2048),
                     "rsa3072": ("rsa", 3072), "rsa4096": ("rsa", 4096), "ed25519": ("ed25519", 0)}
# The PKI role fields of the default policy (POLICY_SPEC's defaults).
ROLE_POLICY_DEFAULTS = role_policy(None)


def role_definition(profile, policy=None):
    """The PKI role a profile signs with: EKU of the profile, names only from the request."""
    check_profile(profile)
    policy = dict(ROLE_POLICY_DEFAULTS, **dict((k, v) for k, v in (policy or {}).items() if v is not None))
    unknown = sorted(set(policy) - set(ROLE_POLICY_DEFAULTS))
    if unknown:
        raise MtlsError("unknown PKI role settings %s (known: %s)" % (", ".join(unknown),
                                                                      ", ".join(sorted(ROLE_POLICY_DEFAULTS))))
    role = dict(policy)
    role.update({
        "server_flag": profile in SERVER_PROFILES,
        "client_flag": profile in CLIENT_PROFILES,
        "code_signing_flag": False, "email_protection_flag": False, "ext_key_usage": [],
        "key_usage": ["DigitalSignature"],
        "use_csr_sans": False, "use_csr_common_name": False,
        # A client's CN is its identity name, not a host name; a server's CN is among its SANs,
        # which the domain policy checks.
        "cn_validations": ["disabled"],
        "require_cn": True, "key_type": "any", "no_store": False, "generate_lease": False,
        "basic_constraints_valid_for_non_ca": True, "issuer_ref": "default",
    })
    return role


def _same(want, have):
    if isinstance(want, list):
        return sorted(str(v) for v in want) == sorted(str(v) for v in (have or []))
    if isinstance(want, str) and want.endswith(("h", "s")) and want[:-1].isdigit():
        seconds = int(want[:-1]) * (3600 if want.endswith("h") else 1)
        return str(have) in (want, str(seconds))
    return want == have


def _differences(want, have):
    return sorted(key for key, value in want.items() if not _same(value, (have or {}).get(key)))


def _fingerprint(cert):
    from cryptography.hazmat.primitives import hashes
    return cert.fingerprint(hashes.SHA256())


class MountPreparation:
    """Idempotent steps on one mount; in check mode the writes are only recorded."""

    def __init__(self, pki, check_mode):
        self.pki = pki
        self.check_mode = check_mode
        self.changes = []

    def write(self, change, method, path, data):
        self.changes.append(change)
        if self.check_mode:
            return None
        return self.pki.call(method, path, data, what=change)

    def mount(self, max_ttl):
        pki = self.pki
        mounts = pki.read("sys/mounts", what="listing secrets engines") or {}
        table = mounts.get("data") or mounts
        entry = table.get(pki.mount + "/")
        if entry is None:
            self.write("enable PKI engine at %s" % pki.mount, "POST", "sys/mounts/%s" % pki.mount,
                       {"type": "pki", "config": {"max_lease_ttl": max_ttl}})
            return False
        if entry.get("type") != "pki":
            raise MtlsError("mount %s is a %s engine, not pki" % (pki.mount, entry.get("type")))
        have = (entry.get("config") or {}).get("max_lease_ttl")
        if not _same(max_ttl, have):
            self.write("set max_lease_ttl of %s to %s" % (pki.mount, max_ttl), "POST",
                       "sys/mounts/%s/tune" % pki.mount, {"max_lease_ttl": max_ttl})
        return True

    def issuers(self, exists):
        """{issuer_id: (name, certificate)} of the mount."""
        result = {}
        if not exists:
            return result
        for issuer_id in self.pki.list("%s/issuers" % self.pki.mount, what="listing issuers"):
            data = (self.pki.read("%s/issuer/%s" % (self.pki.mount, issuer_id)) or {}).get("data") or {}
            cert = x509.load_pem_x509_certificate(data["certificate"].encode("ascii"))
            result[issuer_id] = (data.get("issuer_name"), cert, data)
        return result

    def generate(self, key_type, root_common_name, issuing_common_name, root_days, issuing_days):
        pki = self.pki
        engine_type, bits = _ENGINE_KEY_TYPES[check_key_type(key_type)]
        key = {"key_type": engine_type, "key_bits": bits}
        self.write("generate root CA root-1", "POST", "%s/root/generate/internal" % pki.mount,
                   dict(key, common_name=root_common_name, ttl=_hours(root_days), issuer_name="root-1",
                        key_name="root-1"))
        answer = self.write("generate issuing CA issuing-1 (CSR)", "POST",
                            "%s/intermediate/generate/internal" % pki.mount,
                            dict(key, common_name=issuing_common_name, key_name="issuing-1"))
        if self.check_mode:
            self.changes.extend(["sign issuing-1 with root-1", "import issuing-1 and make it the default issuer"])
            return
        csr = answer["data"]["csr"]
        signed = pki.write("%s/issuer/root-1/sign-intermediate" % pki.mount,
                           {"csr": csr, "common_name": issuing_common_name, "ttl": _hours(issuing_days),
                            "max_path_length": 0, "format": "pem"},
                           what="signing issuing-1 with root-1")["data"]
        self.changes.append("sign issuing-1 with root-1")
        imported = pki.write("%s/intermediate/set-signed" % pki.mount,
                             {"certificate": signed["certificate"] + "\n" + signed["issuing_ca"]},
                             what="importing issuing-1")["data"]
        issuer_id = [i for i in imported.get("imported_issuers") or [] if i][0]
        pki.patch("%s/issuer/%s" % (pki.mount, issuer_id), {"issuer_name": "issuing-1"}, what="naming issuing-1")
        pki.write("%s/config/issuers" % pki.mount, {"default": "issuing-1"}, what="making issuing-1 the default")
        self.changes.append("import issuing-1 and make it the default issuer")

    def import_bundle(self, issuers, key_pem, chain_certs, name):
        """Import the local issuing CA (key + chain) unless the mount already has it."""
        pki = self.pki
        have = dict((_fingerprint(cert), issuer_id) for issuer_id, (dummy, cert, dummy2) in issuers.items())
        issuing = chain_certs[0]
        if _fingerprint(issuing) in have and all(_fingerprint(c) in have for c in chain_certs):
            issuer_id = have[_fingerprint(issuing)]
            if issuers[issuer_id][0] != name:
                self.write("name issuer %s %s" % (issuer_id, name), "PATCH",
                           "%s/issuer/%s" % (pki.mount, issuer_id), {"issuer_name": name})
            return
        bundle = key_pem + "".join(c.public_bytes(_PEM).decode("ascii") for c in chain_certs)
        answer = self.write("import the local CA %s with its chain" % subject_string(issuing.subject), "POST",
                            "%s/issuers/import/bundle" % pki.mount, {"pem_bundle": bundle})
        if self.check_mode:
            return
        for issuer_id in (answer or {}).get("data", {}).get("mapping") or {}:
            data = (pki.read("%s/issuer/%s" % (pki.mount, issuer_id)) or {}).get("data") or {}
            cert = x509.load_pem_x509_certificate(data["certificate"].encode("ascii"))
            if _fingerprint(cert) == _fingerprint(issuing):
                pki.patch("%s/issuer/%s" % (pki.mount, issuer_id), {"issuer_name": name},
                          what="naming the imported issuer %s" % name)

    def default_issuer(self, name):
        data = (self.pki.read("%s/config/issuers" % self.pki.mount) or {}).get("data") or {}
        current = data.get("default")
        if current:
            info = (self.pki.read("%s/issuer/%s" % (self.pki.mount, current)) or {}).get("data") or {}
            if info.get("issuer_name") == name:
                return
        self.write("make %s the default issuer" % name, "POST", "%s/config/issuers" % self.pki.mount,
                   {"default": name})

    def issuer_settings(self, ref, leaf_not_after_behavior):
        data = (self.pki.read_optional("%s/issuer/%s" % (self.pki.mount, ref)) or {}).get("data") or {}
        if data.get("leaf_not_after_behavior") != leaf_not_after_behavior:
            self.write("issuer %s: leaf_not_after_behavior=%s" % (ref, leaf_not_after_behavior), "PATCH",
                       "%s/issuer/%s" % (self.pki.mount, ref), {"leaf_not_after_behavior": leaf_not_after_behavior})

    def config(self, path, want, label, exists):
        have = (self.pki.read_optional("%s/%s" % (self.pki.mount, path)) or {}).get("data") if exists else None
        different = _differences(want, have)
        if different:
            change = "%s: %s" % (label, ", ".join(different)) if have else "%s: create" % label
            self.write(change, "POST", "%s/%s" % (self.pki.mount, path), want)


def prepare_mount(pki, roles=None, role_policy=None, ca_source="generate", key_type="ec_p256",
                  root_common_name="fleet.mtls root CA", issuing_common_name="fleet.mtls issuing CA",
                  root_validity_days=3650, issuing_validity_days=1095, import_key_pem=None, import_chain=None,
                  issuer_name="issuing-1", truncate_to_issuer=False, crl_expiry_days=7, crl_refresh_days=2,
                  issuing_certificates=None, crl_distribution_points=None, check_mode=False):
    """Make ``pki.mount`` ready to sign for the fleet; returns {changed, changes, default_issuer}.

    ``ca_source``: ``generate`` (root-1 and issuing-1 made inside the engine, keys never leave it) or
    ``import`` (``import_key_pem`` + ``import_chain``, the local issuing CA and its issuers, so a
    fleet migrates without re-trusting). An engine that already has issuers keeps them.
    """
    if ca_source not in ("generate", "import"):
        raise MtlsError("ca_source must be generate or import, got %r" % (ca_source,))
    for name, value in (("root_validity_days", root_validity_days), ("issuing_validity_days", issuing_validity_days),
                        ("crl_expiry_days", crl_expiry_days), ("crl_refresh_days", crl_refresh_days)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise MtlsError("%s must be a positive number of days, got %r" % (name, value))
    if crl_refresh_days >= crl_expiry_days:
        raise MtlsError("crl_refresh_days (%d) must be below crl_expiry_days (%d)" % (crl_refresh_days, crl_expiry_days))
    if ca_source == "import" and not (import_key_pem and import_chain):
        raise MtlsError("ca_source=import needs the local CA's key and chain")
    roles = dict(DEFAULT_ROLES, **(roles or {}))
    definitions = dict((profile, role_definition(profile, role_policy)) for profile in roles)
    pki.login()
    step = MountPreparation(pki, check_mode)
    exists = step.mount(_hours(max(root_validity_days, issuing_validity_days)))
    issuers = step.issuers(exists)
    if ca_source == "import":
        chain = [x509.load_pem_x509_certificate(block) for block in pem_blocks(import_chain, "CERTIFICATE")]
        if not chain:
            raise MtlsError("the local CA chain holds no certificate")
        step.import_bundle(issuers, import_key_pem, chain, issuer_name)
    elif not issuers:
        step.generate(key_type, root_common_name, issuing_common_name, root_validity_days, issuing_validity_days)
    if exists or not check_mode:
        if ca_source == "import":
            step.default_issuer(issuer_name)
        step.issuer_settings("default", "truncate" if truncate_to_issuer else "err")
    for profile in sorted(definitions):
        step.config("roles/%s" % roles[profile], definitions[profile], "PKI role %s (%s)" % (roles[profile], profile),
                    exists)
    step.config("config/crl", {"expiry": _hours(crl_expiry_days), "auto_rebuild": True,
                               "auto_rebuild_grace_period": _hours(crl_refresh_days), "disable": False},
                "CRL settings", exists)
    if issuing_certificates is not None or crl_distribution_points is not None:
        step.config("config/urls", {"issuing_certificates": issuing_certificates or [],
                                    "crl_distribution_points": crl_distribution_points or []}, "URLs", exists)
    return {"changed": bool(step.changes), "changes": step.changes, "mount": pki.mount,
            "default_issuer": issuer_name}


# --- revocation and CRL refresh (fleet.mtls.revoke, fleet.mtls.rotate) ------------------------

DEFAULT_CRL_REFRESH_DAYS = 2


def engine_serial(serial):
    """The engine's serial form (colon-separated lower-case hex pairs) of any serial the project takes."""
    from ansible_collections.fleet.mtls.plugins.module_utils.serials import serial_int
    text = "%x" % serial_int(serial)
    if len(text) % 2:
        text = "0" + text
    return ":".join(text[i:i + 2] for i in range(0, len(text), 2))


def check_vault_reason(reason):
    """The engine records no reason code (its CRL entries carry none): only ``unspecified`` is honest."""
    from ansible_collections.fleet.mtls.plugins.module_utils.index import canonical_reason
    reason = canonical_reason(reason)
    if reason != "unspecified":
        raise MtlsError("revocation reason %s cannot be recorded by the vault backend: the PKI engine's revoke "
                        "call takes no reason and its CRL lists every entry without one; revoke with reason "
                        "unspecified" % reason)
    return reason


def _stored_certificate(pki, serial_key):
    answer = pki.read("%s/cert/%s" % (pki.mount, serial_key),
                      what="reading certificate %s of mount %s" % (serial_key, pki.mount))
    return (answer or {}).get("data") or {}


def _revocation_candidates(pki, common_name, now):
    """Serial keys of the stored certificates that may be ``common_name``'s, unexpired: from one
    ``LIST <mount>/certs/detailed`` (subject CN and notAfter of every certificate, OpenBao 2.x), else
    (an engine without that listing) every stored certificate, each read and checked by the caller."""
    try:
        answer = pki.call("LIST", "%s/certs/detailed" % pki.mount,
                          what="listing the certificates of mount %s" % pki.mount)
    except MtlsError as exc:
        if exc.details.get("status") not in (404, 405):
            raise
        answer = None
    info = ((answer or {}).get("data") or {}).get("key_info")
    if not info:
        return pki.list("%s/certs" % pki.mount, what="listing the certificates of mount %s" % pki.mount)
    keys = []
    for key, entry in sorted(info.items()):
        if entry.get("common_name") != common_name:
            continue
        try:
            expired = parse_isoformat(entry.get("not_after")) <= now
        except (TypeError, ValueError):
            expired = False  # an unexpected time format: the certificate itself is read and checked
        if not expired:
            keys.append(key)
    return keys


def find_revocations(pki, serial=None, common_name=None, identity=None, host=None, now=None):
    """What a revocation request names on the engine: ``{"serials": [...], "already_revoked": [...]}``
    (engine serial form). By ``serial`` directly; by identity: every unexpired leaf the engine stored
    whose subject CN is ``common_name`` (what the inventory declares for ``identity`` on ``host``; the
    signer always puts the declared CN there, so a SAN alone never makes another certificate match).
    Nothing matching fails naming the request and the mount."""
    now = now or utcnow()
    if bool(serial) == bool(common_name):
        raise MtlsError("name what to revoke: either a serial or an identity's declared common name, not both")
    pki.login()
    if serial:
        key = engine_serial(serial)
        answer = pki.read_optional("%s/cert/%s" % (pki.mount, key))
        data = (answer or {}).get("data") or {}
        if not data.get("certificate"):
            raise MtlsError("No certificate with serial %s was issued by mount %s" % (key, pki.mount),
                            mount=pki.mount, serial=key)
        revoked = bool(data.get("revocation_time"))
        return {"serials": [] if revoked else [key], "already_revoked": [key] if revoked else []}
    serials, already = [], []
    for key in _revocation_candidates(pki, common_name, now):
        data = _stored_certificate(pki, key)
        if not data.get("certificate"):
            continue
        cert = x509.load_pem_x509_certificate(data["certificate"].encode("ascii"))
        if common_name_of(cert.subject) != common_name or not_valid_after(cert) <= now:
            continue
        try:
            constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
            if constraints.ca:
                continue
        except x509.ExtensionNotFound:
            pass
        target = already if data.get("revocation_time") else serials
        target.append(engine_serial(key.replace("-", ":")))
    if not serials and not already:
        raise MtlsError("No unexpired certificate of identity %s on host %s (common name %s) was issued by mount %s"
                        % (identity, host, common_name, pki.mount), mount=pki.mount, identity=identity, host=host)
    return {"serials": serials, "already_revoked": already}


def rotate_crls(pki, check_mode=False):
    """Rebuild the mount's CRLs (``<mount>/crl/rotate``: revoke alone does not, measured on OpenBao 2.7.2)."""
    if not check_mode:
        pki.read("%s/crl/rotate" % pki.mount, what="rebuilding the CRLs of mount %s" % pki.mount)
    return True


def revoke(pki, serials, reason="unspecified", check_mode=False):
    """Revoke ``serials`` (engine form) and rebuild the CRLs; already revoked ones change nothing."""
    check_vault_reason(reason)
    pki.login()
    revoked_now, already = [], []
    for key in serials:
        data = _stored_certificate(pki, key.replace(":", "-"))
        if data.get("revocation_time"):
            already.append(key)
            continue
        if not check_mode:
            pki.write("%s/revoke" % pki.mount, {"serial_number": key},
                      what="revoking %s on mount %s" % (key, pki.mount))
        revoked_now.append(key)
    rebuilt = bool(revoked_now) and rotate_crls(pki, check_mode)
    return {"changed": bool(revoked_now), "revoked_now": revoked_now, "already_revoked": already,
            "crl_rebuilt": bool(rebuilt)}


def crls_due(pki, refresh_days=DEFAULT_CRL_REFRESH_DAYS, now=None):
    """Names of the non-retired issuers (with a key in the engine) whose CRL's nextUpdate is within
    ``refresh_days``."""
    if isinstance(refresh_days, bool) or not isinstance(refresh_days, int) or refresh_days < 0:
        raise MtlsError("crl refresh_days must be a whole number of days, got %r" % (refresh_days,))
    now = now or utcnow()
    limit = now + datetime.timedelta(days=refresh_days)
    due = []
    for issuer_id in pki.list("%s/issuers" % pki.mount, what="listing the issuers of mount %s" % pki.mount):
        data = (pki.read("%s/issuer/%s" % (pki.mount, issuer_id)) or {}).get("data") or {}
        if data.get("revoked") or not data.get("key_id") or not data.get("certificate"):
            continue
        cert = x509.load_pem_x509_certificate(data["certificate"].encode("ascii"))
        if not_valid_after(cert) <= now:
            continue
        answer = pki.read("%s/issuer/%s/crl" % (pki.mount, issuer_id))
        blocks = pem_blocks(((answer or {}).get("data") or {}).get("crl") or "", "X509 CRL")
        next_update = crl_next_update(x509.load_pem_x509_crl(blocks[0])) if blocks else None
        if next_update is None or next_update <= limit:
            due.append(data.get("issuer_name") or issuer_id)
    return due


def refresh_crls(pki, refresh_days=DEFAULT_CRL_REFRESH_DAYS, check_mode=False, now=None):
    """Rebuild the CRLs when any is due (crls_due); {changed, crls_due}."""
    pki.login()
    due = crls_due(pki, refresh_days, now)
    if due:
        rotate_crls(pki, check_mode)
    return {"changed": bool(due), "crls_due": due}
