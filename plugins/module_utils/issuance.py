# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Leaf issuance: build and sign leaf certificates from CSRs, alone or as a batch.

API: ``sign_leaf(signer, csr, profile="server", sans=None, validity_days=90, common_name=None,
backdate_minutes=5, truncate_to_issuer=False, serial=None, allowed_key_types=None)`` ->
``x509.Certificate`` (``csr`` is PEM bytes/str or a loaded CSR; ``signer`` from
``CAStore.load()``). ``sign_batch(signer, store, requests, validity_days=90, backdate_minutes=5,
truncate_to_issuer=False, generate_keys=False, key_dir=None, key_owner=None, key_group=None,
key_mode=0o600, allowed_key_types=None, check_mode=False, workers=None)`` validates EVERY request
(one bad request fails the call naming it by position and host/identity, the first one when several
are bad, and nothing is written), signs all, records all in the store's index in one locked update
and returns ``IssuedLeaf`` results in request order (``.as_dict()`` is the module return entry).
From ``PARALLEL_MIN_REQUESTS`` requests on, the batch is split over the usable CPUs: worker
processes forked after the CA key is loaded (they inherit it; it is never sent anywhere) plan,
verify and sign a contiguous share each and hand back plans, DER certificates and, with central
generation, the new leaf keys through private pipes; the index and every file are written by the
calling process only, after every share has succeeded. ``workers`` forces a count (1 = serial). A request is a dict with ``identity``
(required), ``host``, ``csr``, ``profile``, ``sans``, ``common_name``, ``validity_days``,
``key_type`` (central generation only).
Policy: names come from the request (the inventory's declaration), never from the CSR. The CSR
contributes its public key and, by its verified self-signature, proof that the requester holds the
private key; its subject and SANs are ignored, whatever they say. The subject is the CN only
(request ``common_name``, else the identity name); the SANs are exactly the request's ``sans``
(none when missing or empty), each validated strictly by ``names.canonical_san``; a
server/server_client leaf must carry SANs and its CN among them: a CN that is a DNS name or IP
address is added as a SAN, any other CN is an error. The names must lie within the name
constraints of the signing CA and every CA above it. The key type must be allowed. A leaf never
outlives its issuer: error, or clipped to the issuer's notAfter with ``truncate_to_issuer``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import os
import pickle
import re
import traceback

from ansible_collections.fleet.mtls.plugins.module_utils.ca_store import certificate_pem
from ansible_collections.fleet.mtls.plugins.module_utils.compat import isoformat, utcnow
from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError
from ansible_collections.fleet.mtls.plugins.module_utils.fsutil import StagedFiles, ensure_dir, parse_mode, read_all
from ansible_collections.fleet.mtls.plugins.module_utils.index import new_entry
from ansible_collections.fleet.mtls.plugins.module_utils.keys import (
    KEY_TYPES, DEFAULT_KEY_TYPE, check_key_type, generate_private_key, key_type_of, private_key_mode,
    serialize_private_key)
from ansible_collections.fleet.mtls.plugins.module_utils.names import (
    build_subject, check_name_constraints, leaf_sans, san_to_general_name, subject_string)
from ansible_collections.fleet.mtls.plugins.module_utils.profiles import (
    DEFAULT_PROFILE, check_profile, extended_key_usage, leaf_key_usage)
from ansible_collections.fleet.mtls.plugins.module_utils.host_layout import check_identity_name
from ansible_collections.fleet.mtls.plugins.module_utils.serials import random_serial, serial_hex

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    HAS_CRYPTOGRAPHY = True
except ImportError:
    HAS_CRYPTOGRAPHY = False

DEFAULT_VALIDITY_DAYS = 90
DEFAULT_BACKDATE_MINUTES = 5
_HOST_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$")
# Below this many requests, forking workers costs more than the second core saves.
PARALLEL_MIN_REQUESTS = 64
# The keys of one request of fleet.mtls.certificate and fleet.mtls.vault_certificate (which has no
# key_type: it signs host-made keys only) and the type of each.
REQUEST_TYPES = {"identity": "str", "host": "str", "csr": "str", "profile": "str", "sans": "list",
                 "common_name": "str", "validity_days": "int", "key_type": "str"}


def load_csr(data, source="CSR"):
    """Parse a PEM CSR and check its self-signature."""
    if isinstance(data, x509.CertificateSigningRequest):
        csr = data
    else:
        if isinstance(data, str):
            data = data.encode("ascii", "replace")
        if not isinstance(data, bytes):
            raise MtlsError("%s must be PEM text, got %s" % (source, type(data).__name__))
        if not data or b"-----BEGIN CERTIFICATE REQUEST-----" not in data:
            raise MtlsError("%s is not a PEM certificate signing request (no BEGIN CERTIFICATE REQUEST block)"
                            % source)
        try:
            csr = x509.load_pem_x509_csr(data)
        except ValueError as exc:
            raise MtlsError("%s is malformed: %s" % (source, (str(exc).splitlines() or ["unreadable"])[0]))
    try:
        valid = csr.is_signature_valid
    except Exception as exc:  # unsupported algorithms surface here on some cryptography versions
        raise MtlsError("%s signature cannot be checked: %s" % (source, exc))
    if not valid:
        raise MtlsError("%s signature is invalid: the request was altered or not signed by its key" % source)
    return csr


def check_host_name(host):
    """A host name names the central key directory: no separators, no leading dot."""
    if not isinstance(host, str) or not _HOST_NAME.match(host):
        raise MtlsError("invalid host %r: use 1-253 letters, digits, '.', '_' or '-', starting with a "
                        "letter or digit" % (host,))
    return host


def _check_validity_days(validity_days):
    if isinstance(validity_days, bool) or not isinstance(validity_days, int) or validity_days <= 0:
        raise MtlsError("validity_days must be a positive number of days, got %r" % (validity_days,))


def given_requests(requests):
    """A module's ``requests`` option as the library takes it: unset suboptions are dropped, so the
    library applies its own defaults (fleet.mtls.certificate and vault_certificate)."""
    return [dict((k, v) for k, v in request.items() if v is not None) for request in requests]


def issued_result(certificates, diff=False, **extra):
    """Result of a signing module: ``changed``, ``certificates``, ``issued``, ``extra`` and, with
    ``diff``, the identities signed (``host/identity``)."""
    result = {"changed": True, "certificates": certificates, "issued": len(certificates)}
    result.update(extra)
    if diff:
        names = ["%s/%s" % (c["host"], c["identity"]) if c["host"] else c["identity"] for c in certificates]
        result["diff"] = {"before": {"issued": []}, "after": {"issued": names}}
    return result


def request_label(position, identity, host=None):
    """How every message names a request of a batch: ``request 2 (identity web on host h1)``."""
    return "request %d (identity %s%s)" % (position, identity, " on host %s" % host if host else "")


class LeafRequest:
    """A validated request of a signing batch, whichever backend signs it (local store or vault)."""

    def __init__(self, position, identity, host, profile, common_name, sans, validity_days, key_type=None):
        self.position = position
        self.identity = identity
        self.host = host
        self.profile = profile
        self.common_name = common_name
        self.sans = sans
        self.validity_days = validity_days
        self.key_type = key_type
        self.not_before = None
        self.not_after = None

    def label(self):
        return request_label(self.position, self.identity, self.host)

    def error(self, message, **details):
        """MtlsError naming this request (and carrying request/identity/host for the module's result)."""
        details.update(request=self.position, identity=self.identity, host=self.host)
        return MtlsError("%s: %s" % (self.label(), message), **details)

    def result(self, cert, cert_pem, chain_pem, subject, not_before, not_after, include_chain=True):
        """One entry of the ``certificates`` return of fleet.mtls.certificate and vault_certificate.

        ``cert`` None (check mode) leaves serial and certificate null. RETURN of both modules documents
        this shape; ansible-core does not extend RETURN from doc fragments, so the text is written in
        both and tests/unit/test_module_docs.py keeps the two in step.
        """
        result = {"identity": self.identity, "host": self.host, "profile": self.profile,
                  "subject": subject, "sans": self.sans,
                  "serial": serial_hex(cert.serial_number) if cert is not None else None,
                  "certificate": cert_pem, "not_before": not_before, "not_after": not_after}
        if include_chain:
            result["chain"] = (cert_pem + chain_pem) if cert_pem is not None else None
        return result


class LeafPlan(LeafRequest):
    """A validated request of the local signer: everything needed to sign, nothing signed yet."""

    def __init__(self, position, identity, host, profile, common_name, sans, validity_days, csr=None,
                 public_key=None, key_type=None):
        LeafRequest.__init__(self, position, identity, host, profile, common_name, sans, validity_days, key_type)
        self.csr = csr
        self.subject = build_subject(common_name)
        self.subject_text = subject_string(self.subject)
        self.public_key = public_key
        self.private_key = None
        self.key_path = None

    def __getstate__(self):
        # A worker process hands plans back as plain data: the subject is rebuilt from the CN and
        # the public key from its DER form if the plan is ever signed again (serial redraw).
        state = dict(self.__dict__)
        if self.public_key is not None:
            state["public_key"] = self.public_key.public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        state.update(csr=None, private_key=None, subject=None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if isinstance(self.public_key, bytes):
            self.public_key = serialization.load_der_public_key(self.public_key)
        if self.subject is None:
            self.subject = build_subject(self.common_name)


class LeafSigner:
    """Signs leaves for one issuer; the per-issuer work (AKI, chain, limits) is done once."""

    def __init__(self, signer, backdate_minutes=DEFAULT_BACKDATE_MINUTES, truncate_to_issuer=False, now=None):
        if isinstance(backdate_minutes, bool) or not isinstance(backdate_minutes, int) or backdate_minutes < 0:
            raise MtlsError("backdate_minutes must be 0 or more, got %r" % (backdate_minutes,))
        self.signer = signer
        self.now = now or utcnow()
        signer.check_validity(self.now)
        self.truncate_to_issuer = truncate_to_issuer
        self.not_before = max(self.now - datetime.timedelta(minutes=backdate_minutes), signer.not_before)
        self.aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(signer.ski)
        self.issuer_name = signer.certificate.subject
        self.chain = signer.chain
        self.basic_constraints = x509.BasicConstraints(ca=False, path_length=None)
        self.eku = dict((profile, extended_key_usage(profile)) for profile in ("server", "client", "server_client"))
        self._validity = {}
        self._base_builders = {}
        self._key_usage = {}

    def validity(self, validity_days, label="the leaf"):
        """(not_before, not_after) for ``validity_days``; a batch mostly repeats one value."""
        _check_validity_days(validity_days)
        if validity_days not in self._validity:
            self._validity[validity_days] = self._compute_validity(validity_days, label)
        return self._validity[validity_days]

    def _compute_validity(self, validity_days, label):
        not_after = self.now + datetime.timedelta(days=validity_days)
        if not_after > self.signer.not_after:
            if not self.truncate_to_issuer:
                raise MtlsError("%s: validity_days=%d would end on %s, after the issuing CA expires (%s); "
                                "lower validity_days or set truncate_to_issuer"
                                % (label, validity_days, isoformat(not_after), isoformat(self.signer.not_after)))
            not_after = self.signer.not_after
        return self.not_before, not_after

    def _base_builder(self, not_before, not_after):
        # Builders are immutable: the issuer-wide part is built once per validity window.
        base = self._base_builders.get((not_before, not_after))
        if base is None:
            base = (x509.CertificateBuilder()
                    .issuer_name(self.issuer_name)
                    .not_valid_before(not_before)
                    .not_valid_after(not_after)
                    .add_extension(self.basic_constraints, critical=True))
            self._base_builders[(not_before, not_after)] = base
        return base

    def sign(self, plan, serial):
        public_key = plan.public_key
        key_usage = self._key_usage.get(plan.key_type)
        if key_usage is None:
            key_usage = self._key_usage[plan.key_type] = leaf_key_usage(public_key)
        builder = (self._base_builder(plan.not_before, plan.not_after)
                   .subject_name(plan.subject)
                   .public_key(public_key)
                   .serial_number(serial)
                   .add_extension(key_usage, critical=True)
                   .add_extension(self.eku[plan.profile], critical=False)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
                   .add_extension(self.aki, critical=False))
        if plan.sans:
            # RFC 5280 4.2.1.6: SAN is critical only when the subject is empty; ours never is.
            builder = builder.add_extension(
                x509.SubjectAlternativeName([san_to_general_name(san) for san in plan.sans]), critical=False)
        return builder.sign(self.signer.key, self.signer.hash_algorithm)


def _check_request_types(request):
    unknown = sorted(set(request) - set(REQUEST_TYPES))
    if unknown:
        raise MtlsError("unknown request keys %s (known: %s)" % (", ".join(unknown), ", ".join(REQUEST_TYPES)))
    for key, value in request.items():
        if value is None:
            continue
        expected = REQUEST_TYPES[key]
        if key == "validity_days" and isinstance(value, str) and value.isdigit():
            request[key] = int(value)
        elif expected == "list":
            if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
                raise MtlsError("%s must be a list of strings" % key)
        elif expected == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                raise MtlsError("%s must be an integer, got %r" % (key, value))
        elif not isinstance(value, str) and not (key == "csr" and isinstance(value, (bytes, x509.CertificateSigningRequest))):
            raise MtlsError("%s must be a string, got %s" % (key, type(value).__name__))


def plan_request(leaf_signer, request, position=1, default_validity_days=DEFAULT_VALIDITY_DAYS,
                 generate_keys=False, allowed_key_types=None):
    """Validate one request dict -> LeafPlan; every problem names the request."""
    if not isinstance(request, dict):
        raise MtlsError("request %d is not a dictionary" % position)
    identity = request.get("identity")
    host = request.get("host") or None
    where = request_label(position, identity, host)
    try:
        _check_request_types(request)
        check_identity_name(identity)
        if host is not None:
            check_host_name(host)
        profile = check_profile(request.get("profile") or DEFAULT_PROFILE)
        validity_days = request.get("validity_days")
        validity_days = default_validity_days if validity_days is None else validity_days
        allowed = allowed_key_types or KEY_TYPES
        csr = public_key = None
        if generate_keys:
            if request.get("csr"):
                raise MtlsError("csr is given but generate_keys is on: a centrally generated key has no CSR")
            key_type = check_key_type(request.get("key_type") or DEFAULT_KEY_TYPE)
        else:
            if request.get("key_type"):
                raise MtlsError("key_type applies only with generate_keys: the CSR's key decides otherwise")
            if not request.get("csr"):
                raise MtlsError("csr is missing (or set generate_keys to make the key here)")
            # Only the key and the proof of possession: the CSR's subject and SANs are never read.
            csr = load_csr(request["csr"])
            public_key = csr.public_key()
            key_type = key_type_of(public_key)
        if key_type not in allowed:
            raise MtlsError("key type %s is not allowed (allowed: %s)" % (key_type, ", ".join(allowed)))
        common_name = request.get("common_name") or identity
        sans = leaf_sans(profile, common_name, request.get("sans"))
        plan = LeafPlan(position, identity, host, profile, common_name, sans, validity_days, csr, public_key,
                        key_type)
        check_name_constraints(leaf_signer.chain, plan.subject, common_name, sans)
        plan.not_before, plan.not_after = leaf_signer.validity(validity_days, "validity")
    except MtlsError as exc:
        raise MtlsError("%s: %s" % (where, exc.message), request=position, identity=identity, host=host)
    return plan


class IssuedLeaf:
    def __init__(self, plan, certificate, chain_pem, key_path=None):
        self.plan = plan
        self.certificate = certificate
        self.chain_pem = chain_pem
        self.key_path = key_path

    def as_dict(self, include_chain=True):
        cert_pem = certificate_pem(self.certificate).decode("ascii") if self.certificate is not None else None
        result = self.plan.result(self.certificate, cert_pem, self.chain_pem, self.plan.subject_text,
                                  isoformat(self.plan.not_before), isoformat(self.plan.not_after), include_chain)
        if self.key_path is not None:
            result["key_path"] = self.key_path
        return result


def sign_leaf(signer, csr, profile=DEFAULT_PROFILE, sans=None, validity_days=DEFAULT_VALIDITY_DAYS,
              common_name=None, backdate_minutes=DEFAULT_BACKDATE_MINUTES, truncate_to_issuer=False,
              serial=None, allowed_key_types=None, identity=None):
    """Sign one CSR (not recorded in any index: use sign_batch for that)."""
    leaf_signer = LeafSigner(signer, backdate_minutes, truncate_to_issuer)
    request = {"identity": identity or "leaf", "csr": csr, "profile": profile, "sans": sans,
               "common_name": common_name, "validity_days": validity_days}
    plan = plan_request(leaf_signer, request, allowed_key_types=allowed_key_types)
    return leaf_signer.sign(plan, serial if serial is not None else random_serial())


def check_batch_names(plans):
    """Each identity once per host in a batch (both signers): the later request is named."""
    seen = {}
    for plan in plans:
        key = (plan.host, plan.identity)
        if key in seen:
            raise MtlsError("%s duplicates request %d: each identity may appear once per host in a batch"
                            % (plan.label(), seen[key]), request=plan.position, identity=plan.identity,
                            host=plan.host)
        seen[key] = plan.position


def key_path_for(key_dir, plan):
    if plan.host:
        return os.path.join(key_dir, plan.host, plan.identity + ".key")
    return os.path.join(key_dir, plan.identity + ".key")


def usable_cpus():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _worker_count(count, workers):
    if workers is None:
        workers = usable_cpus() if count >= PARALLEL_MIN_REQUESTS else 1
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise MtlsError("workers must be a positive number, got %r" % (workers,))
    return min(workers, count)


class _BatchSpec:
    """What every share of a batch needs to plan and sign its requests."""

    def __init__(self, leaf_signer, requests, validity_days, generate_keys, key_root, allowed_key_types):
        self.leaf_signer = leaf_signer
        self.requests = requests
        self.validity_days = validity_days
        self.generate_keys = generate_keys
        self.key_root = key_root
        self.allowed_key_types = allowed_key_types

    def plan(self, start, stop):
        plans = [plan_request(self.leaf_signer, self.requests[index], index + 1, self.validity_days,
                              self.generate_keys, self.allowed_key_types)
                 for index in range(start, stop)]
        if self.key_root:
            for plan in plans:
                plan.key_path = key_path_for(self.key_root, plan)
        return plans

    def sign(self, plans):
        """[(plan, certificate, key PEM or None)]: central keys are made here, just before their leaf."""
        signed = []
        for plan in plans:
            key_pem = None
            if self.generate_keys:
                private_key = generate_private_key(plan.key_type)
                plan.public_key = private_key.public_key()
                key_pem = serialize_private_key(private_key)
            try:
                signed.append((plan, self.leaf_signer.sign(plan, random_serial()), key_pem))
            except (ValueError, TypeError) as exc:  # a name the validation let through: never a traceback
                raise plan.error("cannot sign: %s" % exc)
        return signed


def _shares(count, workers):
    size, extra = divmod(count, workers)
    bounds, start = [], 0
    for share in range(workers):
        stop = start + size + (1 if share < extra else 0)
        bounds.append((start, stop))
        start = stop
    return bounds


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _run_share(spec, start, stop, write_fd):
    """Body of a forked worker: plan + sign one share, send the outcome, never return."""
    status = 1
    try:
        try:
            signed = spec.sign(spec.plan(start, stop))
            outcome = ("ok", [(plan, cert.public_bytes(serialization.Encoding.DER), key_pem)
                              for plan, cert, key_pem in signed])
        except MtlsError as exc:
            outcome = ("error", exc.message, exc.details)
        except Exception:  # reported by the parent as a worker failure, with the traceback
            outcome = ("crash", traceback.format_exc())
        _write_all(write_fd, pickle.dumps(outcome, pickle.HIGHEST_PROTOCOL))
        status = 0
    finally:
        # Skip the parent's exit handlers and buffered output: the parent alone reports and cleans up.
        os._exit(status)


def _collect_share(pid, read_fd):
    try:
        data = read_all(read_fd)
    finally:
        os.close(read_fd)
    dummy, status = os.waitpid(pid, 0)
    if not data:
        raise MtlsError("a signing worker process ended without a result (wait status %d); nothing was "
                        "written" % status)
    outcome = pickle.loads(data)
    if outcome[0] == "crash":
        raise MtlsError("a signing worker process failed; nothing was written:\n%s" % outcome[1])
    if outcome[0] == "error":
        return MtlsError(outcome[1], **outcome[2])
    return [(plan, x509.load_der_x509_certificate(der), key_pem) for plan, der, key_pem in outcome[1]]


def _sign_parallel(spec, workers):
    """Plan and sign in ``workers`` shares (this process takes the first); [(plan, cert, key_pem)]."""
    shares = _shares(len(spec.requests), workers)
    children = []
    try:
        for start, stop in shares[1:]:
            read_fd, write_fd = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(read_fd)
                _run_share(spec, start, stop, write_fd)
            os.close(write_fd)
            children.append((pid, read_fd))
        try:
            outcomes = [spec.sign(spec.plan(*shares[0]))]
        except MtlsError as exc:
            outcomes = [exc]
        while children:
            outcomes.append(_collect_share(*children.pop(0)))
    finally:
        for pid, read_fd in children:  # only after an unexpected error: do not leave zombies behind
            os.close(read_fd)
            os.waitpid(pid, 0)
    signed = []
    for outcome in outcomes:
        if isinstance(outcome, MtlsError):
            raise outcome  # shares are in request order: this is the first bad request
        signed.extend(outcome)
    return signed


def sign_batch(signer, store, requests, validity_days=DEFAULT_VALIDITY_DAYS,
               backdate_minutes=DEFAULT_BACKDATE_MINUTES, truncate_to_issuer=False, generate_keys=False,
               key_dir=None, key_owner=None, key_group=None, key_mode=0o600, allowed_key_types=None,
               check_mode=False, workers=None):
    """Validate all requests, sign all, record all in one index update; results in request order.

    In ``check_mode`` the requests are validated and planned but nothing is generated, signed or
    written (results carry ``certificate: None``).
    """
    if not requests:
        raise MtlsError("no certificate requests given")
    if allowed_key_types:
        allowed_key_types = [check_key_type(kt) for kt in allowed_key_types]
    if generate_keys and not key_dir:
        raise MtlsError("generate_keys needs key_dir: where the generated private keys are written")
    key_mode = private_key_mode(key_mode, "key_mode") if generate_keys else parse_mode(key_mode, 0o600)
    _check_validity_days(validity_days)
    workers = _worker_count(len(requests), workers)
    leaf_signer = LeafSigner(signer, backdate_minutes, truncate_to_issuer)
    key_root = os.path.abspath(key_dir) if generate_keys else None
    spec = _BatchSpec(leaf_signer, list(requests), validity_days, generate_keys, key_root, allowed_key_types)
    if check_mode or workers == 1:
        plans = spec.plan(0, len(requests))
        check_batch_names(plans)
        if check_mode:
            return [IssuedLeaf(plan, None, None, plan.key_path) for plan in plans]
        signed = spec.sign(plans)
    else:
        signed = _sign_parallel(spec, workers)
        check_batch_names([plan for plan, dummy, dummy2 in signed])

    with StagedFiles(batch_sync=True) as staged_keys:
        if generate_keys:
            _stage_central_keys(signed, key_root, staged_keys, key_owner, key_group, key_mode)
        issued = dict((plan.position, cert) for plan, cert, dummy in signed)
        plans = [plan for plan, dummy, dummy2 in signed]
        entries = [_entry_for(plan, issued[plan.position], leaf_signer.now) for plan in plans]
        # By entry, not by serial: two entries of one batch may share the serial being redrawn.
        plan_of_entry = dict((id(entry), plan) for entry, plan in zip(entries, plans))

        def redraw(entry):
            # Another signer took this serial meanwhile: sign this leaf again with a fresh one.
            plan = plan_of_entry[id(entry)]
            cert = leaf_signer.sign(plan, random_serial())
            issued[plan.position] = cert
            new = _entry_for(plan, cert, leaf_signer.now)
            plan_of_entry[id(new)] = plan
            return new

        store.index().record(entries, redraw=redraw)
        staged_keys.commit()
    chain_pem = signer.intermediates_pem.decode("ascii")
    return [IssuedLeaf(plan, issued[plan.position], chain_pem, plan.key_path) for plan in plans]


def _entry_for(plan, cert, now):
    return new_entry(cert.serial_number, plan.identity, plan.host, plan.subject_text, plan.sans,
                     plan.profile, plan.not_before, plan.not_after, now)


def _stage_central_keys(signed, key_dir, staged, owner, group, mode):
    ensure_dir(key_dir, 0o700, owner, group)
    for plan, dummy, key_pem in signed:
        if plan.host:
            ensure_dir(os.path.dirname(plan.key_path), 0o700, owner, group)
        staged.stage(plan.key_path, key_pem, mode, owner, group)
