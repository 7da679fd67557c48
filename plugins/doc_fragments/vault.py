# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options of the modules that talk to an OpenBao / HashiCorp Vault PKI engine: the connection
(``fleet.mtls.vault``) and the PKI role of each profile (``fleet.mtls.vault.roles``)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):

    DOCUMENTATION = r"""
options:
  url:
    description:
      - URL of the engine, or the URLs of every node of an HA cluster (tried in turn when one cannot be
        reached or answers 5xx; a standby forwards requests to the active node).
      - Default - E(VAULT_ADDR), else E(BAO_ADDR).
    type: list
    elements: str
  mount:
    description:
      - Path of the PKI secrets engine.
    type: str
    default: pki
  token:
    description:
      - Token to authenticate with. Default - E(VAULT_TOKEN), else E(BAO_TOKEN).
      - Give O(token) or O(role_id) with O(secret_id).
    type: str
  role_id:
    description:
      - AppRole role ID (AppRole login instead of a token).
    type: str
  secret_id:
    description:
      - AppRole secret ID.
    type: str
  approle_mount:
    description:
      - Mount path of the AppRole auth method.
    type: str
    default: approle
  namespace:
    description:
      - Namespace (Vault Enterprise or OpenBao namespaces). Default - E(VAULT_NAMESPACE), else E(BAO_NAMESPACE).
    type: str
  ca_file:
    description:
      - CA certificate(s) (PEM) to verify the engine's TLS certificate. Default - E(VAULT_CACERT), else
        E(BAO_CACERT), else the system trust store. TLS verification cannot be turned off.
    type: path
  timeout:
    description:
      - Seconds to wait for one answer.
    type: int
    default: 30
  retries:
    description:
      - How many times a request is retried after a connection error, HTTP 429 or 5xx (a sealed node, an
        election), with exponential backoff (0.5 s, 1 s, 2 s ... at most 8 s between tries).
    type: int
    default: 5
requirements:
  - hvac >= 2.0 (on the host the module runs on, usually the controller)
"""

    # The ``roles`` option (vault_pki.roles_spec()): vault_pki_mount writes these roles,
    # vault_certificate signs through them.
    ROLES = r"""
options:
  roles:
    description:
      - PKI role of each profile (M(fleet.mtls.vault_pki_mount) writes them, M(fleet.mtls.vault_certificate)
        signs through them).
    type: dict
    suboptions:
      server:
        description: Role of V(server) certificates.
        type: str
        default: fleet-server
      client:
        description: Role of V(client) certificates.
        type: str
        default: fleet-client
      server_client:
        description: Role of V(server_client) certificates.
        type: str
        default: fleet-server-client
"""
