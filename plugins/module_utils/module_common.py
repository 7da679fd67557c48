# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible glue shared by every module: dependency check and turning library errors into results."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import traceback

from ansible.module_utils.basic import missing_required_lib
from ansible_collections.fleet.mtls.plugins.module_utils.errors import MtlsError

try:
    import cryptography
    CRYPTOGRAPHY_VERSION = cryptography.__version__
    CRYPTOGRAPHY_IMPORT_ERROR = None
except ImportError:
    CRYPTOGRAPHY_VERSION = None
    CRYPTOGRAPHY_IMPORT_ERROR = traceback.format_exc()

MIN_CRYPTOGRAPHY = (38, 0)


def require_cryptography(module):
    """Fail the module clearly when cryptography is missing or older than the supported floor."""
    if CRYPTOGRAPHY_VERSION is None:
        module.fail_json(msg=missing_required_lib("cryptography >= 38"), exception=CRYPTOGRAPHY_IMPORT_ERROR)
    version = tuple(int(part) for part in CRYPTOGRAPHY_VERSION.split(".")[:2] if part.isdigit())
    if version < MIN_CRYPTOGRAPHY:
        module.fail_json(msg="cryptography %s is too old on this host: fleet.mtls needs >= 38"
                         % CRYPTOGRAPHY_VERSION)


NO_LOG_PLACEHOLDER = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"


def short_invocation(module, bulky=()):
    """``invocation`` for the result with each option of ``bulky`` given as its item count.

    AnsibleModule echoes all parameters back when the result has no ``invocation``; for a batch of
    1,000 CSRs that echo is about a third of the result (every CSR again), which the module, the
    no_log scrub and the controller encode, walk and decode for nothing. no_log options are given as
    ansible's placeholder, never their value (exit_json still scrubs the whole result as before).
    """
    args = {}
    for name, value in module.params.items():
        spec = module.argument_spec.get(name, {})
        if spec.get("no_log") and value is not None:
            args[name] = NO_LOG_PLACEHOLDER
        elif name in bulky and value is not None:
            args[name] = {"count": len(value)}
        else:
            args[name] = value
    return {"module_args": args}


def run_module(module, action, needs_cryptography=True, bulky=()):
    """Call ``action(module)`` -> result dict and exit; an MtlsError fails with its message.

    ``action`` must not write anything in check mode; it reports ``changed`` itself. Options named
    in ``bulky`` are echoed in ``invocation`` as their item count (see short_invocation).
    """
    if needs_cryptography:
        require_cryptography(module)
    try:
        result = action(module)
    except MtlsError as exc:
        module.fail_json(msg=exc.message, **exc.details)
    if bulky:
        result.setdefault("invocation", short_invocation(module, bulky))
    module.exit_json(**result)
