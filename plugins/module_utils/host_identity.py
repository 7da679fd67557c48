# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host side of an identity: its key, CSR and installed files under ``<dir>``.

``request_identity(params, check_mode, diff)`` is what ``fleet.mtls.csr`` does and
``install_identity(params, check_mode, diff, warn)`` what ``fleet.mtls.install_identity`` does; the
modules only parse options. Rules both follow (docs/architecture.md, "On-host layout"):

- Every writing run of one identity holds its lock ``private/.<name>.lock`` (flock, never through
  a link, removed on release) from the first read to the last write, so the renewal decision, the
  key a CSR is handed out for and an install never interleave with another run's.
- Keys, certificates, the chain, the CSR and the staged key are read with O_NOFOLLOW: a link at any
  of them, or a ``private/`` or ``certs/`` directory that is a link, is refused with an MtlsError.
- All files of one run are written with ``StagedFiles``: complete temporaries first, then renames.
  A failure before the renames (a full disk included) leaves every file as it was; directories the
  failed run created are removed again. Mode/owner fix-ups come after the renames.
- Leftover temporaries of killed runs of this identity are removed (``fsutil.remove_stale_temporaries``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import os

from ansible_collections.fleet.mtls.plugins.module_utils.compat import isoformat, not_valid_after
from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError
from ansible_collections.fleet.mtls.plugins.module_utils.fsutil import (
    StagedFiles, ensure_dir, file_attributes_differ, parse_mode, read_file, real_directory,
    remove_created_dirs, remove_stale_temporaries, resolve_gid, resolve_uid, set_file_attributes,
    transient_lock)
# The CA's SAN rule (a server's DNS/IP common name is added as a SAN): compare with what it issues.
from ansible_collections.fleet.mtls.plugins.module_utils.keys import (
    generate_private_key, key_type_of, load_private_key, private_key_mode, same_public_key,
    serialize_private_key, signing_hash)
from ansible_collections.fleet.mtls.plugins.module_utils.names import (
    build_subject, common_name_of, leaf_sans, san_to_general_name, sans_of, subject_string)
from ansible_collections.fleet.mtls.plugins.module_utils.host_layout import HostLayout, check_identity_name
from ansible_collections.fleet.mtls.plugins.module_utils.manifest import (
    MANIFEST_MODE, check_entries, manifest_path, merged, parse_manifest, render)
from ansible_collections.fleet.mtls.plugins.module_utils.renewal import Expected, needs_issue, parse_certificate
from ansible_collections.fleet.mtls.plugins.module_utils.serials import serial_hex
from ansible_collections.fleet.mtls.plugins.module_utils.x509_info import (
    REVOCATION_REVOKED, check_revocation, find_issuer, load_certificates, load_crls, verify_chain)

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    HAS_CRYPTOGRAPHY = True
except ImportError:
    HAS_CRYPTOGRAPHY = False

CSR_MODE = 0o644
DEFAULT_CERTIFICATE_MODE = 0o644
PRIVATE_DIR_MODE = 0o711
CERTS_DIR_MODE = 0o755
# A certificate in these states is not in use, so the live key can sign the CSR.
NOTHING_DEPENDS_ON_KEY = ("missing", "unreadable", "key_missing")


def certificate_file_mode(mode, option="certificate_mode"):
    """Certificates are public, but only their owner may write them (no group or other write bit)."""
    value = parse_mode(mode, DEFAULT_CERTIFICATE_MODE)
    if value & 0o7022:
        raise MtlsError("%s %04o is refused: certificate, chain, trust bundle and CRL files must not be "
                        "writable by others than their owner nor setuid/setgid/sticky (use 0644 or 0444)"
                        % (option, value))
    return value


def _read(path, what):
    """An identity file's bytes (None: missing); a link is refused, never followed."""
    return read_file(path, what, follow_symlinks=False)


def _load_key(path, what):
    """(key, PEM bytes) of an identity's key file, (None, None) when it does not exist."""
    data = _read(path, what)
    if data is None:
        return None, None
    return load_private_key(data, source="%s %s" % (what, path)), data


def current_decision(layout, expected):
    """The renewal decision on what is installed for ``layout`` now (key, certificate, chain file;
    links refused): ``(Decision, key, certificate bytes)``. The csr module and cert_info's
    ``renewal_check`` both ask here."""
    live_key, dummy = _load_key(layout.key, "private key")
    cert_data = _read(layout.certificate, "certificate")
    chain_data = _read(layout.chain, "chain")
    return needs_issue(cert_data, live_key, expected, chain=chain_data), live_key, cert_data


def _check_owner_group(owner, group):
    resolve_uid(owner)
    resolve_gid(group)


def leftover_temporaries(layout, older_than):
    """Remove temporaries of this identity's files that killed runs left (see module docstring)."""
    names = {layout.private_dir: (layout.key, layout.staged_key),
             layout.certs_dir: (layout.certificate, layout.chain, layout.csr)}
    removed = []
    for directory in sorted(names):
        removed.extend(remove_stale_temporaries(
            directory, [os.path.basename(path) for path in names[directory]], older_than))
    return removed


def _identity_dirs(layout, created):
    ensure_dir(layout.directory, 0o755, created=created)
    ensure_dir(layout.private_dir, PRIVATE_DIR_MODE, follow_symlinks=False, created=created)
    ensure_dir(layout.certs_dir, CERTS_DIR_MODE, follow_symlinks=False, created=created)


@contextlib.contextmanager
def identity_session(layout, check_mode, create_dirs):
    """Hold the identity's lock for the block; yields the leftover temporaries removed.

    Check mode takes no lock and changes nothing (it only reports). ``create_dirs`` makes ``<dir>``,
    ``private/`` and ``certs/`` first; a failure in the block removes the directories it made.
    Without ``private/`` (and no ``create_dirs``) there is nothing to lock: the block runs unlocked
    and is expected to refuse for want of a key.
    """
    real_directory(layout.private_dir, "private key directory")
    real_directory(layout.certs_dir, "certificate directory")
    if check_mode:
        yield []
        return
    created = []
    try:
        if create_dirs:
            _identity_dirs(layout, created)
        if not real_directory(layout.private_dir, "private key directory"):
            yield []
            return
        with transient_lock(layout.lock, "identity %s" % layout.name) as since:
            yield leftover_temporaries(layout, since)
    except BaseException:
        remove_created_dirs(created)
        raise


# --- fleet.mtls.csr -------------------------------------------------------------------------

def _trusted_issuers(params):
    if params.get("trusted_issuers") is not None:
        return load_certificates(params["trusted_issuers"], "trusted_issuers")
    if params.get("trust_bundle") is not None:
        # Public input only read, never written: a link (e.g. into /etc/ssl) is fine here.
        data = read_file(params["trust_bundle"], "trust bundle")
        if data is None:
            return []
        return load_certificates(data, "trust bundle %s" % params["trust_bundle"])
    return None


def build_csr(key, expected):
    builder = x509.CertificateSigningRequestBuilder().subject_name(build_subject(expected.common_name))
    if expected.sans:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([san_to_general_name(san) for san in expected.sans]), critical=False)
    return builder.sign(key, signing_hash(key)).public_bytes(serialization.Encoding.PEM)


def saved_csr_matches(data, key, expected):
    """A saved CSR can be handed out again when it is for this key, subject and SAN set."""
    if data is None:
        return False
    try:
        csr = x509.load_pem_x509_csr(data)
    except ValueError:
        return False
    return (csr.is_signature_valid and same_public_key(csr.public_key(), key)
            and common_name_of(csr.subject) == expected.common_name
            and set(sans_of(csr)) == set(expected.sans or []))


class KeyPlan:
    """Which key signs the CSR; ``key`` is None when it has to be generated first (only when
    writing: check mode never makes a key)."""

    def __init__(self, path, key, staged):
        self.path, self.key, self.staged = path, key, staged
        self.create = key is None


def plan_signing_key(layout, live_key, staged_key, reason, key_type, new_key_on_renew):
    """The key a CSR is made for. A key a CSR was handed out for is kept (reused by the next run)
    unless its key type no longer fits; the live key is never replaced here."""
    if live_key is None:
        # First issue (or the key was lost): the new key is live at once, no certificate uses it.
        return KeyPlan(layout.key, None, staged=False)
    live_type_ok = key_type_of(live_key) == key_type
    if live_type_ok and ((reason in NOTHING_DEPENDS_ON_KEY and staged_key is None) or not new_key_on_renew):
        return KeyPlan(layout.key, live_key, staged=False)
    # A staged key equal to the live one is a leftover of an interrupted promotion, not a new key.
    if (staged_key is not None and key_type_of(staged_key) == key_type
            and not same_public_key(staged_key, live_key)):
        return KeyPlan(layout.staged_key, staged_key, staged=True)
    return KeyPlan(layout.staged_key, None, staged=True)


def request_identity(params, check_mode=False, diff=False):
    """fleet.mtls.csr: ensure the key, decide whether a certificate is needed, hand out the CSR."""
    layout = HostLayout(params["dir"], params["name"])
    key_mode = private_key_mode(params.get("mode"))
    owner, group = params.get("owner"), params.get("group")
    _check_owner_group(owner, group)
    common_name = params.get("common_name") or params["name"]
    profile = params.get("profile") or "server"
    expected = Expected(
        common_name=common_name, sans=leaf_sans(profile, common_name, params.get("sans") or []),
        profile=profile, key_type=params.get("key_type") or "ec_p256", trusted_issuers=_trusted_issuers(params),
        renew_fraction=params.get("renew_fraction"), renew_days=params.get("renew_days"),
        force=params.get("force", False))
    # Validate the subject now: a bad common name must fail before any key is written.
    build_subject(common_name)
    with identity_session(layout, check_mode, create_dirs=True) as removed:
        result = _request(layout, expected, params.get("new_key_on_renew", True), key_mode, owner, group,
                          check_mode, diff)
    result["leftovers_removed"] = removed
    result["changed"] = result["changed"] or bool(removed)
    return result


def _request(layout, expected, new_key_on_renew, key_mode, owner, group, check, diff):
    decision, live_key, cert_data = current_decision(layout, expected)
    staged_key, dummy = _load_key(layout.staged_key, "staged private key")
    current = None
    if decision.reason not in ("missing", "unreadable"):
        current = parse_certificate(cert_data, layout.certificate)

    result = {
        "changed": False, "needs_issue": decision.needs, "reason": decision.reason, "detail": decision.detail,
        "csr": None, "key_staged": False, "key_created": False, "key_path": None, "csr_path": layout.csr,
        "days_left": None if decision.days_left is None else round(decision.days_left, 1),
        "not_after": isoformat(decision.not_after),
        "serial": serial_hex(current.serial_number) if current is not None else None,
    }
    before, after = [], []

    # Existing key files keep the attributes asked for, whether or not a certificate is needed;
    # fixed only after the new files are in place, so a failed run changes nothing.
    fix_attributes = []
    for path, key in ((layout.key, live_key), (layout.staged_key, staged_key)):
        if key is not None and file_attributes_differ(path, key_mode, owner, group):
            before.append("%s: other owner/group/mode" % path)
            after.append("%s: mode %04o" % (path, key_mode))
            result["changed"] = True
            fix_attributes.append(path)

    plan = None
    if decision.needs:
        plan = plan_signing_key(layout, live_key, staged_key, decision.reason, expected.key_type,
                                new_key_on_renew)
        result.update(key_staged=plan.staged, key_created=plan.create, key_path=plan.path)
        saved = _read(layout.csr, "CSR")
        if not plan.create and saved_csr_matches(saved, plan.key, expected):
            result["csr"] = saved.decode("ascii")
            plan = None
        else:
            result["changed"] = True
            if plan.create:
                before.append("%s: absent" % plan.path)
                after.append("%s: new %s key, mode %04o" % (plan.path, expected.key_type, key_mode))
            before.append("%s: %s" % (layout.csr, "absent" if saved is None else "outdated"))
            after.append("%s: CSR for %s" % (layout.csr, plan.path))

    if not check:
        if plan is not None:
            result["csr"] = _write_request(layout, plan, expected, key_mode, owner, group)
        for path in fix_attributes:
            set_file_attributes(path, key_mode, owner, group)

    if diff:
        result["diff"] = {"before": "".join(line + "\n" for line in before),
                          "after": "".join(line + "\n" for line in after)}
    return result


def _write_request(layout, plan, expected, key_mode, owner, group):
    """The new key (if any) and the CSR, both complete before either is renamed into place."""
    if plan.create:
        plan.key = generate_private_key(expected.key_type)
    csr_pem = build_csr(plan.key, expected)
    with StagedFiles() as staged:
        if plan.create:
            staged.stage(plan.path, serialize_private_key(plan.key), key_mode, owner, group)
        staged.stage(layout.csr, csr_pem, CSR_MODE, owner, group)
        staged.commit()
    return csr_pem.decode("ascii")


# --- fleet.mtls.install_identity ------------------------------------------------------------

def _pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def _chain_pem(leaf, chain_text):
    """Leaf first, then the intermediates given (the leaf is prepended when missing)."""
    if not chain_text:
        return [leaf]
    chain = load_certificates(chain_text, "chain")
    if _pem(chain[0]) != _pem(leaf):
        if any(_pem(cert) == _pem(leaf) for cert in chain):
            raise MtlsError("chain holds the certificate but not first: it must start with the leaf")
        chain = [leaf] + chain
    return chain


class InstallPlan:
    """Verified content to write: (kind, path, bytes, mode, differs) per file, and what changed."""

    def __init__(self):
        self.files = []
        self.changes = {"certificate": False, "key": False, "trust_bundle": False, "crl": False}
        # Not among the changes: no service reads the manifest.
        self.manifest_changed = False
        self.remove_after_commit = []
        self.diff_before, self.diff_after = [], []

    def want(self, kind, path, data, mode, describe_before=None, describe_after=None):
        current = _read(path, kind.replace("_", " "))
        if current != data:
            self.changes[kind] = True
            self.diff_before.append("%s: %s" % (path, "absent" if current is None else (describe_before or "other content")))
            self.diff_after.append("%s: %s" % (path, describe_after or "new content"))
        self.files.append((kind, path, data, mode, current != data))


def _plan_trust(params, layout, plan, cert_mode):
    """Trust anchors to verify against, planning the bundle's installation when content is given."""
    bundle_path = params.get("trust_bundle") or layout.trust_bundle
    if params.get("trust_bundle_content") is not None:
        anchors = load_certificates(params["trust_bundle_content"], "trust_bundle_content")
        data = b"".join(_pem(cert) for cert in anchors)
        plan.want("trust_bundle", bundle_path, data, cert_mode,
                  describe_after="%d CA certificate(s): %s" % (
                      len(anchors), "; ".join(subject_string(cert.subject) for cert in anchors)))
        return anchors, bundle_path
    data = read_file(bundle_path, "trust bundle")
    if data is None:
        return None, bundle_path
    return load_certificates(data, "trust bundle %s" % bundle_path), bundle_path


def _plan_crls(params, layout, plan, anchors, cert_mode, warn):
    if params.get("crl_content") is None:
        return []
    crls = load_crls(params["crl_content"], "crl_content")
    if anchors is None:
        raise MtlsError("cannot check crl_content: no trust bundle (give trust_bundle_content or install %s first)"
                        % (params.get("trust_bundle") or layout.trust_bundle))
    covered = []
    for position, crl in enumerate(crls, 1):
        issuer = next((ca for ca in anchors if ca.subject == crl.issuer and crl.is_signature_valid(ca.public_key())),
                      None)
        if issuer is None:
            raise MtlsError("CRL #%d of crl_content (issuer %s) is not signed by a CA of the trust bundle"
                            % (position, crl.issuer.rfc4514_string()))
        covered.append(issuer)
    for ca in anchors:
        if not any(_pem(ca) == _pem(issuer) for issuer in covered):
            warn("no CRL in crl_content for CA %s: servers checking CRLs will reject its clients"
                 % subject_string(ca.subject))
    data = b"".join(crl.public_bytes(serialization.Encoding.PEM) for crl in crls)
    plan.want("crl", params.get("crl") or layout.crl, data, cert_mode,
              describe_after="%d CRL(s)" % len(crls))
    return crls


def records_manifest(params):
    """Whether this call records identities or consumers in the host's manifest."""
    return params.get("manifest_identities") is not None or params.get("manifest_consumers") is not None


def _plan_manifest(params, plan):
    """The manifest with the given entries recorded (manifest.merged), written last in the commit, so it
    never lists what a failed call did not install. Root's file (0644) whoever owns the identity."""
    identities = check_entries(params.get("manifest_identities") or [], "manifest_identities")
    consumers = check_entries(params.get("manifest_consumers") or [], "manifest_consumers")
    path = manifest_path(params["dir"])
    current = _read(path, "host manifest")
    data = render(merged(parse_manifest(path, current), identities, consumers)).encode("utf-8")
    if current != data:
        plan.manifest_changed = True
        plan.diff_before.append("%s: %s" % (path, "absent" if current is None else "other entries"))
        plan.diff_after.append("%s: recorded (identities %s; consumers %s)" % (
            path, ", ".join(e["name"] for e in identities) or "none", ", ".join(e["name"] for e in consumers) or "none"))
    plan.files.append(("manifest", path, data, MANIFEST_MODE, current != data))


def _plan_identity(params, layout, plan, anchors, crls, key_mode, cert_mode):
    leaf = load_certificates(params["certificate"], "certificate")[0]
    chain = _chain_pem(leaf, params.get("chain"))
    staged_key, staged_pem = _load_key(layout.staged_key, "staged private key")
    live_key, dummy = _load_key(layout.key, "private key")
    promote = staged_key is not None and same_public_key(staged_key, leaf.public_key())
    if not promote and (live_key is None or not same_public_key(live_key, leaf.public_key())):
        tried = ["the %s %s" % (what, path) for what, path, key in (
            ("staged key", layout.staged_key, staged_key), ("live key", layout.key, live_key)) if key is not None]
        raise MtlsError("certificate %s (serial %s) does not belong to %s; nothing was installed"
                        % (subject_string(leaf.subject), serial_hex(leaf.serial_number),
                           " nor ".join(tried) or "any key (%s and %s are missing)" % (layout.staged_key, layout.key)))
    if anchors is None:
        raise MtlsError("cannot verify the certificate: trust bundle %s does not exist (give trust_bundle_content)"
                        % (params.get("trust_bundle") or layout.trust_bundle))
    ok, reason, path = verify_chain(leaf, chain[1:], anchors)
    if not ok:
        at_fault = path[-1] if path else leaf
        raise MtlsError("certificate %s does not verify against the trust bundle: %s (at %s); nothing was installed"
                        % (subject_string(leaf.subject), reason, subject_string(at_fault.subject)))
    if crls:
        issuer = path[1] if len(path) > 1 else find_issuer(leaf, anchors)
        if issuer is not None and check_revocation(leaf, issuer, crls)["status"] == REVOCATION_REVOKED:
            raise MtlsError("certificate %s (serial %s) is revoked by the CRLs being installed; nothing was installed"
                            % (subject_string(leaf.subject), serial_hex(leaf.serial_number)))
    serial = serial_hex(leaf.serial_number)
    if promote:
        plan.want("key", layout.key, staged_pem, key_mode, describe_after="staged key promoted")
        # Also when the live key already equals it (a promotion interrupted before this cleanup).
        plan.remove_after_commit.append(layout.staged_key)
        plan.diff_before.append("%s: present" % layout.staged_key)
        plan.diff_after.append("%s: absent (promoted)" % layout.staged_key)
    installed = _read(layout.certificate, "certificate")
    plan.want("certificate", layout.certificate, _pem(leaf), cert_mode,
              describe_before=_serial_of(installed), describe_after="serial %s" % serial)
    plan.want("certificate", layout.chain, b"".join(_pem(cert) for cert in chain), cert_mode,
              describe_after="serial %s + %d CA certificate(s)" % (serial, len(chain) - 1))
    return leaf, promote


def _serial_of(data):
    try:
        return "serial %s" % serial_hex(load_certificates(data, "installed certificate")[0].serial_number)
    except MtlsError:
        return "unreadable certificate"


def install_identity(params, check_mode=False, diff=False, warn=None):
    """fleet.mtls.install_identity: verify everything, then write the identity's files as one set."""
    warn = warn or (lambda message: None)
    has_certificate = params.get("certificate") is not None
    if not has_certificate and params.get("trust_bundle_content") is None and params.get("crl_content") is None \
            and not records_manifest(params):
        raise MtlsError("nothing to install: give certificate, trust_bundle_content, crl_content or "
                        "manifest_identities/manifest_consumers")
    if has_certificate:
        check_identity_name(params.get("name"))
    layout = HostLayout(params["dir"], params.get("name") or "unused")
    key_mode = private_key_mode(params.get("mode"))
    cert_mode = certificate_file_mode(params.get("certificate_mode"))
    owner, group = params.get("owner"), params.get("group")
    _check_owner_group(owner, group)

    session = identity_session(layout, check_mode, create_dirs=False) if has_certificate \
        else contextlib.nullcontext([])
    with session as removed:
        result = _install(params, layout, key_mode, cert_mode, owner, group, check_mode, diff, warn)
    result["leftovers_removed"] = removed
    result["changed"] = result["changed"] or bool(removed)
    return result


def _install(params, layout, key_mode, cert_mode, owner, group, check_mode, diff, warn):
    has_certificate = params.get("certificate") is not None
    plan = InstallPlan()
    anchors, bundle_path = _plan_trust(params, layout, plan, cert_mode)
    crls = _plan_crls(params, layout, plan, anchors, cert_mode, warn)
    leaf, promote = None, False
    if has_certificate:
        leaf, promote = _plan_identity(params, layout, plan, anchors, crls, key_mode, cert_mode)
    if records_manifest(params):
        _plan_manifest(params, plan)

    attributes_changed = [path for kind, path, data, mode, differs in plan.files
                          if kind != "manifest" and not differs and file_attributes_differ(path, mode, owner, group)]
    if has_certificate and not promote and file_attributes_differ(layout.key, key_mode, owner, group):
        attributes_changed.append(layout.key)
    for path in attributes_changed:
        plan.diff_before.append("%s: other owner/group/mode" % path)
        plan.diff_after.append("%s: owner/group/mode as asked" % path)

    changed = any(plan.changes.values()) or plan.manifest_changed or bool(attributes_changed) \
        or bool(plan.remove_after_commit)
    if changed and not check_mode:
        _write_plan(plan, layout, owner, group)
        for path in plan.remove_after_commit:
            _remove(path)
        for path in attributes_changed:
            set_file_attributes(path, key_mode if path == layout.key else cert_mode, owner, group)

    result = {
        "changed": changed,
        "changes": plan.changes,
        "manifest_changed": plan.manifest_changed,
        "key_promoted": promote,
        "serial": serial_hex(leaf.serial_number) if leaf is not None else None,
        "not_after": isoformat(not_valid_after(leaf)) if leaf is not None else None,
        "paths": {"certificate": layout.certificate if leaf is not None else None,
                  "chain": layout.chain if leaf is not None else None,
                  "key": layout.key if leaf is not None else None,
                  "trust_bundle": bundle_path,
                  "crl": params.get("crl") or layout.crl},
    }
    if diff:
        result["diff"] = {"before": "".join(line + "\n" for line in plan.diff_before),
                          "after": "".join(line + "\n" for line in plan.diff_after)}
    return result


def _write_plan(plan, layout, owner, group):
    """Every changed file complete beside its target, then all renamed (trust bundle, CRLs, key,
    leaf, chain, manifest: in that order). A failure before the renames removes the directories made here."""
    created = []
    try:
        for kind, path, data, mode, differs in plan.files:
            if differs:
                directory = os.path.dirname(path)
                ours = directory in (layout.private_dir, layout.certs_dir)
                ensure_dir(directory, CERTS_DIR_MODE if directory == layout.certs_dir else 0o755,
                           follow_symlinks=not ours, created=created)
        with StagedFiles() as staged:
            for kind, path, data, mode, differs in plan.files:
                if differs:
                    if kind == "manifest":
                        staged.stage(path, data, mode, None, None)
                    else:
                        staged.stage(path, data, mode, owner, group)
            staged.commit()
    except BaseException:
        remove_created_dirs(created)
        raise


def _remove(path):
    try:
        os.unlink(path)
    except OSError as exc:
        raise MtlsError("installed, but could not remove the promoted staged key %s: %s" % (path, exc.strerror))
