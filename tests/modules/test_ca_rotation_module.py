# -*- coding: utf-8 -*-
"""fleet.mtls.ca_rotation through ansible: a full root rotation on real CA stores, check mode,
diff, idempotent re-runs, and refusals (retire while a leaf found by cert_info still chains to the
old generation) that leave the CA directory byte-identical."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from host_pki import REPO, snapshot

PASSPHRASE = "rotation module passphrase"

# CA stores and leaves are made with the collection's own library in a child interpreter that
# sees the working tree as fleet.mtls: "generation N" makes root/issuing stores, "leaf N" signs a
# client leaf with issuing-N and writes it to the given file.
MAKE = r"""
import sys
from ansible_collections.fleet.mtls.plugins.module_utils.ca_store import CAStore, create_intermediate, create_root
from ansible_collections.fleet.mtls.plugins.module_utils.issuance import sign_batch
what, ca_dir, number, passphrase = sys.argv[1:5]
if what == "generation":
    create_root("%s/root-%s" % (ca_dir, number), passphrase, common_name="Rotation Root %s" % number)
    create_intermediate("%s/issuing-%s" % (ca_dir, number), passphrase, "%s/root-%s" % (ca_dir, number),
                        passphrase, common_name="Rotation Issuing %s" % number)
else:
    store = CAStore("%s/issuing-%s" % (ca_dir, number))
    leaf = sign_batch(store.load(passphrase), store, [{"identity": "probe", "host": "h", "common_name": "probe",
                      "profile": "client"}], generate_keys=True, key_dir=sys.argv[6])[0]
    open(sys.argv[5], "w").write(leaf.as_dict()["certificate"])
"""


@pytest.fixture
def make(tmp_path):
    tree = tmp_path / "collections" / "ansible_collections" / "fleet"
    tree.mkdir(parents=True)
    (tree / "mtls").symlink_to(REPO)
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "collections"))

    def run(*args):
        subprocess.run([sys.executable, "-c", MAKE] + [str(a) for a in args], env=env, check=True,
                       capture_output=True, text=True)
    return run


@pytest.fixture
def ca_dir(tmp_path, make):
    path = tmp_path / "ca"
    path.mkdir(mode=0o700)
    make("generation", path, 1, PASSPHRASE)
    return str(path)


def state_on_disk(ca_dir):
    with open(os.path.join(ca_dir, "rotation.json")) as handle:
        return json.load(handle)


def leaf_facts(ansible_module, make, ca_dir, tmp_path, generation, host):
    """What a playbook passes in: cert_info's result for a leaf, plus its host and identity."""
    path = tmp_path / ("leaf-%s-%s.crt" % (generation, host))
    make("leaf", ca_dir, generation, PASSPHRASE, path, tmp_path / "keys")
    info = ansible_module("cert_info", {"path": str(path)})
    assert not info.get("failed"), info.result
    facts = dict((key, info[key]) for key in ("aki", "issuer", "serial"))
    facts.update(host=host, identity="probe", path=str(path))
    return facts


def test_status_of_a_fresh_directory_writes_nothing(ansible_module, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = ansible_module("ca_rotation", {"ca_dir": str(empty)})
    assert not result.get("failed") and not result["changed"]
    assert result["active"] == 1 and result["rotation"] is None and result["next_phase"] is None
    assert result["missing_stores"] == ["root-1", "issuing-1"] and result["trust_bundle"] is None
    assert result["active_issuing"] == str(empty / "issuing-1")
    assert os.listdir(str(empty)) == []


def test_root_rotation_through_every_phase(ansible_module, make, ca_dir, tmp_path):
    old_leaf = leaf_facts(ansible_module, make, ca_dir, tmp_path, 1, "web2.example.net")

    before = snapshot(ca_dir)
    planned = ansible_module("ca_rotation", {"ca_dir": ca_dir, "state": "begin", "scope": "root"}, check=True, diff=True)
    assert planned["changed"] and planned["phase"] == "trust"
    assert '"state": "incoming"' in planned["diff"]["after"]
    assert snapshot(ca_dir) == before, "check mode writes nothing"

    begun = ansible_module("ca_rotation", {"ca_dir": ca_dir, "state": "begin", "scope": "root"})
    assert begun["changed"] and begun["phase"] == "trust" and not begun["phase_completed"]
    assert begun["missing_stores"] == ["root-2", "issuing-2"] and begun["trust_bundle"] is None
    assert state_on_disk(ca_dir)["rotation"]["phase"] == "trust"
    again = ansible_module("ca_rotation", {"ca_dir": ca_dir, "state": "begin", "scope": "root"})
    assert not again["changed"], "begin with the same scope resumes"

    early = ansible_module("ca_rotation", {"ca_dir": ca_dir, "state": "advance", "phase": "reissue"})
    assert early["failed"] and "phase trust of the root rotation has not completed" in early["msg"]

    assert ansible_module("ca_rotation", {"ca_dir": ca_dir, "state": "complete", "phase": "trust"})["changed"]
    before = snapshot(ca_dir)
    no_stores = ansible_module("ca_rotation", {"ca_dir": ca_dir, "state": "advance", "phase": "reissue"})
    assert no_stores["failed"]
    assert "stores of generation 2 (root-2, issuing-2) do not exist" in no_stores["msg"]
    assert snapshot(ca_dir) == before

    make("generation", ca_dir, 2, PASSPHRASE)
    reissue = ansible_module("ca_rotation", {"ca_dir": ca_dir, "state": "advance", "phase": "reissue"})
    assert reissue["changed"] and reissue["active"] == 2
    assert reissue["active_issuing"] == os.path.join(ca_dir, "issuing-2")
    assert [g["state"] for g in reissue["generations"]] == ["retiring", "active"]
    assert reissue["trust_bundle"].count("BEGIN CERTIFICATE") == 4
    assert not ansible_module("ca_rotation", {"ca_dir": ca_dir, "state": "advance", "phase": "reissue"})["changed"]

    assert ansible_module("ca_rotation", {"ca_dir": ca_dir, "state": "complete", "phase": "reissue"})["changed"]
    new_leaf = leaf_facts(ansible_module, make, ca_dir, tmp_path, 2, "web1.example.net")
    status = ansible_module("ca_rotation", {"ca_dir": ca_dir, "leaves": [old_leaf, new_leaf]})
    assert [leaf["host"] for leaf in status["old_generation_leaves"]] == ["web2.example.net"]

    before = snapshot(ca_dir)
    refused = ansible_module("ca_rotation", {"ca_dir": ca_dir, "state": "advance", "phase": "retire",
                                             "leaves": [old_leaf, new_leaf]})
    assert refused["failed"]
    assert ("refusing to retire CA generation 1: 1 live certificate(s) still chain to it, on web2.example.net"
            in refused["msg"])
    assert refused["blocking_hosts"] == ["web2.example.net"]
    assert snapshot(ca_dir) == before, "a refused retire leaves the CA directory byte-identical"

    no_leaves = ansible_module("ca_rotation", {"ca_dir": ca_dir, "state": "advance", "phase": "retire"})
    assert no_leaves["failed"] and "entering phase retire needs leaves" in no_leaves["msg"]

    retire = ansible_module("ca_rotation", {"ca_dir": ca_dir, "state": "advance", "phase": "retire",
                                            "leaves": [new_leaf]})
    assert retire["changed"] and retire["phase"] == "retire"
    with open(os.path.join(ca_dir, "root-2", "ca.crt")) as root, open(os.path.join(ca_dir, "issuing-2", "ca.crt")) as issuing:
        assert retire["trust_bundle"] == root.read() + issuing.read()
    assert retire["trust_stores"] == [os.path.join(ca_dir, "root-2"), os.path.join(ca_dir, "issuing-2")]

    done = ansible_module("ca_rotation", {"ca_dir": ca_dir, "state": "complete", "phase": "retire"})
    assert done["changed"] and done["rotation"] is None
    assert [(h["scope"], h["from"], h["to"]) for h in done["history"]] == [("root", 1, 2)]
    assert state_on_disk(ca_dir)["generations"][0]["state"] == "retired"


@pytest.mark.parametrize("args, message", [
    ({"state": "begin"}, "state=begin needs scope"),
    ({"state": "complete"}, "state=complete needs phase"),
    ({"state": "complete", "phase": "trust"}, "cannot complete phase trust: no CA rotation is under way"),
    ({"state": "advance"}, "cannot advance: no CA rotation is under way"),
    ({"state": "begin", "scope": "intermediate"}, "value of scope must be one of: issuing, root"),
])
def test_bad_requests_are_refused_and_write_nothing(ansible_module, ca_dir, args, message):
    before = snapshot(ca_dir)
    result = ansible_module("ca_rotation", dict(args, ca_dir=ca_dir))
    assert result["failed"] and message in result["msg"]
    assert snapshot(ca_dir) == before


def test_corrupt_state_is_reported(ansible_module, ca_dir):
    with open(os.path.join(ca_dir, "rotation.json"), "w") as handle:
        json.dump({"format": 1, "active": 3, "generations": [
            {"id": 1, "root": "root-1", "issuing": "issuing-1", "state": "active"}], "rotation": None}, handle)
    result = ansible_module("ca_rotation", {"ca_dir": ca_dir})
    assert result["failed"]
    assert "rotation.json is not a valid CA generation state: 'active' is 3 but generation 1 is the active one" in result["msg"]


def test_initialize_names_the_stores_and_publish_writes_the_bundles(ansible_module, make, ca_dir):
    planned = ansible_module("ca_rotation", {"ca_dir": ca_dir, "state": "initialize"}, check=True, diff=True)
    assert planned["changed"] and planned["diff"]["before"] == "" and '"active": 1' in planned["diff"]["after"]
    assert not os.path.exists(os.path.join(ca_dir, "rotation.json")), "check mode writes nothing"
    done = ansible_module("ca_rotation", {"ca_dir": ca_dir, "state": "initialize",
                                          "root_common_name": "Fleet Root", "issuing_common_name": "Fleet Issuing"})
    assert done["changed"] and state_on_disk(ca_dir)["active"] == 1
    assert ansible_module("ca_rotation", {"ca_dir": ca_dir, "state": "initialize"})["changed"] is False
    ansible_module("ca_rotation", {"ca_dir": ca_dir, "state": "begin", "scope": "root"})
    begun = ansible_module("ca_rotation", {"ca_dir": ca_dir, "root_common_name": "Fleet Root",
                                           "issuing_common_name": "Fleet Issuing"})
    assert [(s["name"], s["kind"], s["common_name"], s["path_length"]) for s in begun["ca_stores"]] == [
        ("root-1", "root", "Fleet Root", None), ("issuing-1", "intermediate", "Fleet Issuing", 0),
        ("root-2", "root", "Fleet Root G2", None), ("issuing-2", "intermediate", "Fleet Issuing G2", 0)]
    assert [s["name"] for s in begun["root_stores"]] == ["root-1", "root-2"]
    assert begun["issuing_stores"][1]["parent_path"] == os.path.join(ca_dir, "root-2")
    make("generation", ca_dir, 2, PASSPHRASE)
    published = ansible_module("ca_rotation", {"ca_dir": ca_dir, "state": "publish",
                                               "crls": ["C1", "C2", "C3", "C4"]}, diff=True)
    assert published["changed"] and published["published_changes"] == [
        "trust-bundle.pem", "crl-bundle.pem", "signing-ca.pem"]
    assert published["crl_bundle"] == "C1\nC2\nC3\nC4\n"
    assert published["signing_ca"] == open(os.path.join(ca_dir, "issuing-1", "ca.crt")).read()
    assert published["trust_bundle"].count("BEGIN CERTIFICATE") == 4
    assert ansible_module("ca_rotation", {"ca_dir": ca_dir, "state": "publish",
                                          "crls": ["C1", "C2", "C3", "C4"]})["changed"] is False
    read = ansible_module("ca_rotation", {"ca_dir": ca_dir, "read_publication": True})
    assert read["publication_missing"] == [] and read["publication"]["crl-bundle.pem"] == "C1\nC2\nC3\nC4\n"
