#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fleet.mtls contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: tls_probe
short_description: Connect to a TLS service with or without a client certificate and report whether it accepted
version_added: "0.1.0"
description:
  - Opens a real TCP connection and TLS handshake to O(host):O(port), optionally presenting a
    client identity (O(client_cert) and O(client_key)), and reports whether the service accepted
    the connection, where it refused it and why, the TLS version, cipher and the server's certificate.
  - With TLS 1.3 the client's handshake completes before the server has checked the client
    certificate; a refusal arrives as an alert afterwards. The probe therefore always talks after
    the handshake (see O(protocol)) and reports such a refusal with RV(stage=post_handshake).
  - O(expect) turns the probe into an assertion that fails the task, with the details, when the
    service does not behave as expected.
  - Nothing is changed on any host. Private keys and passphrases are never returned.
author:
  - fleet.mtls maintainers (!UNKNOWN)
options:
  host:
    description:
      - Name or address to connect to.
    type: str
    required: true
  port:
    description:
      - TCP port (1-65535).
    type: int
    required: true
  server_name:
    description:
      - Name sent as SNI and checked against the server certificate. Defaults to O(host).
    type: str
  client_cert:
    description:
      - PEM file with the client certificate, optionally followed by its intermediates.
      - Requires O(client_key).
    type: path
  client_key:
    description:
      - PEM private key of O(client_cert). Requires O(client_cert).
    type: path
  client_key_passphrase:
    description:
      - Passphrase of an encrypted O(client_key).
    type: str
  ca_bundle:
    description:
      - PEM bundle of CA certificates to verify the server with. Defaults to the system's trusted CAs.
    type: path
  verify_server:
    description:
      - Verify the server certificate chain and that it matches O(server_name).
      - A server that fails verification gives RV(outcome=error), never RV(outcome=rejected).
    type: bool
    default: true
  min_tls_version:
    description:
      - Lowest TLS version to offer.
    type: str
    choices: [TLSv1.2, TLSv1.3]
  max_tls_version:
    description:
      - Highest TLS version to offer. V(TLSv1.2) makes a client-certificate refusal show during the handshake.
    type: str
    choices: [TLSv1.2, TLSv1.3]
  timeout:
    description:
      - Seconds allowed for connecting, for the handshake and for an application answer (HTTP, MQTT).
    type: float
    default: 5
  read_timeout:
    description:
      - With O(protocol=tls), how long to wait for a refusal after the handshake; silence for this
        long means the server kept the connection.
    type: float
    default: 1
  protocol:
    description:
      - What to do after the handshake.
      - V(tls) reads for O(read_timeout) seconds. An alert or a closed connection is a refusal;
        silence or data is acceptance. Servers that answer a failed client verification at the
        application level (NGINX sends HTTP 400) need V(http).
      - V(http) sends C(GET O(http_path)) and reads the status. HTTP 401, 403, 495, 496 and NGINX's
        400 "No required SSL certificate was sent" / "The SSL certificate error" are refusals, any
        other status is acceptance, unless O(expect_status) is given.
      - V(mqtt) sends an MQTT 3.1.1 CONNECT with a clean session and reads the CONNACK; return code
        V(0) is acceptance, any other code (V(5) not authorized) a refusal.
    type: str
    choices: [tls, http, mqtt]
    default: tls
  http_path:
    description:
      - Path of the HTTP request with O(protocol=http).
    type: str
    default: /
  http_host:
    description:
      - Host header of the HTTP request. Defaults to O(server_name), else O(host), followed by
        C(:O(port)) unless the port is 443.
    type: str
  expect_status:
    description:
      - With O(protocol=http), the statuses that mean acceptance; every other status is a refusal.
    type: list
    elements: int
  mqtt_client_id:
    description:
      - MQTT client identifier of the CONNECT.
    type: str
    default: fleet-mtls-probe
  mqtt_username:
    description:
      - MQTT user name of the CONNECT (brokers using the certificate as identity ignore it).
    type: str
  mqtt_password:
    description:
      - MQTT password of the CONNECT. Requires O(mqtt_username).
    type: str
  expect:
    description:
      - Fail the task unless the service V(accepted) or V(rejected) the connection.
      - V(rejected) means the service refused it (an alert, a closed connection, an HTTP denial, a
        non-zero CONNACK); a connection that could not be made or a server that failed
        verification (RV(outcome=error)) never satisfies either expectation.
    type: str
    choices: [accepted, rejected]
notes:
  - Read-only; check mode runs the same probe and C(changed) is always V(false).
  - The probe itself runs on the managed host (use C(delegate_to) to probe from elsewhere).
extends_documentation_fragment:
  - fleet.mtls.attributes
attributes:
  check_mode:
    support: full
    details: The same probe runs in check mode; it never changes anything.
  diff_mode:
    support: none
requirements:
  - cryptography >= 38
seealso:
  - module: fleet.mtls.cert_info
"""

EXAMPLES = r"""
- name: The broker must refuse clients without a certificate (TLS 1.3 refuses after the handshake)
  fleet.mtls.tls_probe:
    host: mqtt1.example.net
    port: 8883
    ca_bundle: /etc/mtls/trust-bundle.pem
    protocol: mqtt
    expect: rejected

- name: A valid client identity gets through NGINX
  fleet.mtls.tls_probe:
    host: web1.example.net
    port: 443
    ca_bundle: /etc/mtls/trust-bundle.pem
    client_cert: /etc/mtls/certs/probe.chain.pem
    client_key: /etc/mtls/private/probe.key
    protocol: http
    http_path: /healthz
    expect: accepted
  register: web_probe

- name: Show what the server presented
  ansible.builtin.debug:
    msg: "{{ web_probe.tls_version }} {{ web_probe.peer.subject }} expires {{ web_probe.peer.not_after }}"
"""

RETURN = r"""
accepted:
  description: Whether the service accepted the connection (RV(outcome=accepted)).
  returned: always
  type: bool
outcome:
  description:
    - V(accepted), V(rejected) (the service refused) or V(error) (the probe could not tell, for
      example no connection, a server that failed verification or no answer in time).
  returned: always
  type: str
  sample: rejected
stage:
  description:
    - Where it stopped, V(null) when accepted. V(connect), V(handshake), V(post_handshake) (an
      alert or a close right after a completed handshake, the TLS 1.3 way of refusing a client
      certificate) or V(application) (HTTP status or CONNACK code).
  returned: always
  type: str
  sample: post_handshake
error:
  description: What went wrong, for TLS the alert text; V(null) when accepted.
  returned: always
  type: str
  sample: tlsv13 alert certificate required
tls_version:
  description: Negotiated TLS version, V(null) when the handshake failed.
  returned: always
  type: str
  sample: TLSv1.3
cipher:
  description: Negotiated cipher suite, V(null) when the handshake failed.
  returned: always
  type: str
  sample: TLS_AES_256_GCM_SHA384
server_verified:
  description: Whether the server certificate was verified (chain and name) during a completed handshake.
  returned: always
  type: bool
peer:
  description: The server certificate, V(null) when the handshake failed.
  returned: always
  type: dict
  contains:
    subject:
      description: Subject (RFC 4514).
      type: str
    common_name:
      description: Common name.
      type: str
    sans:
      description: Subject alternative names, canonical form.
      type: list
      elements: str
    issuer:
      description: Issuer (RFC 4514).
      type: str
    serial:
      description: Serial number, lower-case hex.
      type: str
    not_before:
      description: Start of validity, ISO 8601 UTC.
      type: str
    not_after:
      description: End of validity, ISO 8601 UTC.
      type: str
    days_left:
      description: Days until expiry.
      type: float
    fingerprint_sha256:
      description: SHA-256 fingerprint, colon-separated hex.
      type: str
handshake_ms:
  description: Milliseconds from connecting to the completed handshake, V(null) when it failed.
  returned: always
  type: float
elapsed_ms:
  description: Milliseconds for the whole probe (including O(read_timeout) when the server stays silent).
  returned: always
  type: float
http_status:
  description: HTTP status code of the answer.
  returned: when O(protocol=http) and a response arrived
  type: int
  sample: 400
http_reason:
  description: Reason of the answer (the title of the error page when there is one).
  returned: when O(protocol=http) and a response arrived
  type: str
  sample: No required SSL certificate was sent
mqtt_return_code:
  description: CONNACK return code (V(0) accepted, V(5) not authorized).
  returned: when O(protocol=mqtt) and a CONNACK arrived
  type: int
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fleet.mtls.plugins.module_utils.module_common import run_module
from ansible_collections.fleet.mtls.plugins.module_utils.probe import expectation_failure, probe


def run_probe(module):
    params = module.params
    result = probe(
        params["host"], params["port"], server_name=params["server_name"],
        client_cert=params["client_cert"], client_key=params["client_key"],
        client_key_passphrase=params["client_key_passphrase"], ca_bundle=params["ca_bundle"],
        verify_server=params["verify_server"], min_tls_version=params["min_tls_version"],
        max_tls_version=params["max_tls_version"], timeout=params["timeout"],
        read_timeout=params["read_timeout"], protocol=params["protocol"], http_path=params["http_path"],
        http_host=params["http_host"], expect_status=params["expect_status"],
        mqtt_client_id=params["mqtt_client_id"], mqtt_username=params["mqtt_username"],
        mqtt_password=params["mqtt_password"])
    result["changed"] = False
    failure = expectation_failure(result, params["expect"], "%s:%s" % (params["host"], params["port"]))
    if failure:
        module.fail_json(msg=failure, **result)
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            host=dict(type="str", required=True),
            port=dict(type="int", required=True),
            server_name=dict(type="str"),
            client_cert=dict(type="path"),
            client_key=dict(type="path"),
            client_key_passphrase=dict(type="str", no_log=True),
            ca_bundle=dict(type="path"),
            verify_server=dict(type="bool", default=True),
            min_tls_version=dict(type="str", choices=["TLSv1.2", "TLSv1.3"]),
            max_tls_version=dict(type="str", choices=["TLSv1.2", "TLSv1.3"]),
            timeout=dict(type="float", default=5),
            read_timeout=dict(type="float", default=1),
            protocol=dict(type="str", default="tls", choices=["tls", "http", "mqtt"]),
            http_path=dict(type="str", default="/"),
            http_host=dict(type="str"),
            expect_status=dict(type="list", elements="int"),
            mqtt_client_id=dict(type="str", default="fleet-mtls-probe"),
            mqtt_username=dict(type="str"),
            mqtt_password=dict(type="str", no_log=True),
            expect=dict(type="str", choices=["accepted", "rejected"]),
        ),
        supports_check_mode=True,
    )
    run_module(module, run_probe)


if __name__ == "__main__":
    main()
