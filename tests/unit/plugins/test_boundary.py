# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""The controller/host boundary of docs/architecture.md, checked by importing.

Each controller module (every file of plugins/action and plugins/plugin_utils) is imported in a
fresh interpreter; afterwards the only modules of plugins/module_utils loaded may be those the
controller is allowed (ALLOWED: the names of things, the option table, the argument specs and
their parsing helpers). Everything else of module_utils is host code - the store, the processes,
the supervisor, launch, the operations, the module entry point, keyword mode, and any host file
added later - and is forbidden by default. A failure names the controller module and the chain of
imports that pulled the host code in.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
_COLL = os.path.join(_ROOT, ".build", "unit-collections")  # made by tests/unit/conftest.py
_PKG = "ansible_collections.detached.jobs.plugins"
_MU = f"{_PKG}.module_utils"

# The module_utils files the controller may import (each imports only these, and the standard library).
ALLOWED = ("_ids", "_options", "_specs")


def _py_files(*parts: str) -> list[str]:
    return sorted(f[:-3] for f in os.listdir(os.path.join(_ROOT, "plugins", *parts)) if f.endswith(".py") and f != "__init__.py")


CONTROLLER = [f"{_PKG}.action.{name}" for name in _py_files("action")] + [f"{_PKG}.plugin_utils.{name}" for name in _py_files("plugin_utils")]

# Runs in the fresh interpreter: records who imported which module of the collection (the
# importer's __name__, the module imported, `from package import module` included), imports the
# controller module and prints the collection's module_utils that got loaded, with those records.
_PROBE = r"""
import builtins, importlib, json, sys
sys.path.insert(0, COLL)
edges = []
real_import = builtins.__import__


def recording_import(name, globals=None, locals=None, fromlist=(), level=0):
    module = real_import(name, globals, locals, fromlist, level)
    importer = (globals or {}).get("__name__", "?")
    for imported in [name] + [name + "." + part for part in (fromlist or ())]:
        if imported.startswith(PKG) and imported in sys.modules:
            edges.append((importer, imported))
    return module


builtins.__import__ = recording_import
importlib.import_module(TARGET)
loaded = sorted(name for name in sys.modules if name.startswith(MU + "."))
print(json.dumps({"loaded": loaded, "edges": edges}))
"""


def _probe(target: str) -> dict:
    code = f"COLL = {_COLL!r}\nPKG = {_PKG!r}\nMU = {_MU!r}\nTARGET = {target!r}\n" + _PROBE
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120)
    assert run.returncode == 0, f"importing {target} failed: {run.stderr[-2000:]}"
    return dict(json.loads(run.stdout.strip().splitlines()[-1]))


def _chain(edges: list[list[str]], start: str, goal: str) -> list[str]:
    """The first import path from start to goal (breadth first over the recorded imports)."""
    paths = {start: [start]}
    queue = [start]
    while queue:
        here = queue.pop(0)
        for importer, imported in edges:
            if importer == here and imported not in paths:
                paths[imported] = paths[here] + [imported]
                if imported == goal:
                    return paths[imported]
                queue.append(imported)
    return [start, "?", goal]


def test_the_allowed_modules_exist_and_the_rest_is_host_code() -> None:
    here = set(_py_files("module_utils"))
    assert set(ALLOWED) <= here
    # The store, the processes, the supervisor, launch, the operations, the queries, the entry point
    # and keyword mode are host code (the names as they are now; a new file is host code by default).
    assert {"_jobstore", "_process", "_supervisor", "_control", "_ops", "_query", "_entry", "_keyword"} & here <= here - set(ALLOWED)


def test_the_controller_modules_are_found() -> None:
    assert f"{_PKG}.action.wait" in CONTROLLER and f"{_PKG}.plugin_utils._hostaction" in CONTROLLER


@pytest.mark.parametrize("target", CONTROLLER, ids=lambda name: name.rsplit(".", 2)[-2] + "/" + name.rsplit(".", 1)[-1])
def test_the_controller_imports_no_host_code(target: str) -> None:
    found = _probe(target)
    allowed = {f"{_MU}.{name}" for name in ALLOWED}
    host = [name for name in found["loaded"] if name not in allowed]
    chains = [" -> ".join(part.rsplit(".", 2)[-2] + "/" + part.rsplit(".", 1)[-1] for part in _chain(found["edges"], target, name)) for name in host]
    assert not host, f"{target} imports host code: " + "; ".join(chains)
