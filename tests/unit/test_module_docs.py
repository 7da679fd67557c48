# -*- coding: utf-8 -*-
"""RETURN documentation that two modules share, kept in step with the one library function.

ansible-core extends only DOCUMENTATION from doc fragments (never RETURN, 2.16 up to 2.19), so
fleet.mtls.certificate and fleet.mtls.vault_certificate each write the ``certificates`` entries out.
Both entries come from issuance.LeafRequest.result(): this test fails when a module's RETURN and
that shape drift apart.
"""
from __future__ import annotations

import ast
import os

import yaml

from ansible_collections.fleet.mtls.plugins.module_utils.issuance import LeafRequest

MODULES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "plugins", "modules")


def _return_doc(module):
    with open(os.path.join(MODULES, module + ".py")) as handle:
        tree = ast.parse(handle.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and [t.id for t in node.targets if isinstance(t, ast.Name)] == ["RETURN"]:
            return yaml.safe_load(node.value.value)
    raise AssertionError("%s has no RETURN" % module)


def _entry_shape():
    request = LeafRequest(1, "web", None, "server", "web.test", ["DNS:web.test"], 30)
    return request.result(None, None, "", "CN=web.test", None, None, include_chain=True)


def test_certificates_entries_are_documented_alike_and_match_the_library():
    local = _return_doc("certificate")["certificates"]["contains"]
    vault = _return_doc("vault_certificate")["certificates"]["contains"]
    shape = set(_entry_shape())
    assert set(vault) == shape
    assert set(local) == shape | {"key_path"}  # central keys exist only with the local signer
    for key in shape:
        assert local[key]["type"] == vault[key]["type"], key
        assert local[key].get("returned") == vault[key].get("returned"), key
        assert local[key].get("elements") == vault[key].get("elements"), key


def test_both_modules_document_the_same_top_level_counts():
    local, vault = _return_doc("certificate"), _return_doc("vault_certificate")
    for key in ("certificates", "issued", "ca_chain"):
        assert local[key]["type"] == vault[key]["type"] and local[key]["returned"] == vault[key]["returned"], key
