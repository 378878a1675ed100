# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""The one list of host files (_ids.HOST_FILES) against the imports of the files themselves: each
bundle carries every file its files import, and the supervisor's zip application nothing more."""

from __future__ import annotations

import ast
import io
import os
import zipfile

from ansible_collections.detached.jobs.plugins.module_utils import _ids as ids
from ansible_collections.detached.jobs.plugins.module_utils import _pyzcache
from ansible_collections.detached.jobs.plugins.plugin_utils import _remote

_HERE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))), "plugins", "module_utils")
# Files of module_utils that no bundle carries: the modules' main(), shipped by AnsiballZ.
_ANSIBALLZ_ONLY = {"_entry"}


def _module_level_imports(name: str) -> set[str]:
    """The host files name imports when it is imported (not those a function imports when it runs)."""
    with open(os.path.join(_HERE, f"{name}.py"), encoding="utf-8") as f:
        tree = ast.parse(f.read())
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module == ids.HOST_PACKAGE:
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(ids.HOST_PACKAGE + "."):
            found.add(str(node.module).rsplit(".", 1)[1])
    return found


def _closure(roots: set[str]) -> set[str]:
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(_module_level_imports(name))
    return seen


def test_every_host_file_is_listed_once() -> None:
    names = [name for name, bundles in ids.HOST_FILES]
    assert len(names) == len(set(names))
    on_disk = {f[:-3] for f in os.listdir(_HERE) if f.endswith(".py") and f != "__init__.py"}
    assert set(names) == on_disk - _ANSIBALLZ_ONLY
    assert all(set(bundles.split()) <= {"supervisor", "runner", "keyword"} for name, bundles in ids.HOST_FILES)


def test_the_supervisor_bundle_is_exactly_what_the_supervisor_imports() -> None:
    assert set(ids.host_files("supervisor")) == _closure({"_supervisor"})


def test_each_bundle_carries_what_its_files_import() -> None:
    supervisor = set(ids.host_files("supervisor"))
    for bundle, roots in (("runner", {"_ops", "_query"}), ("keyword", {"_keyword"})):
        files = set(ids.host_files(bundle))
        # A launch builds the supervisor's zip application from the sources it carries.
        assert files == _closure(roots) | supervisor, bundle


def test_the_bundles_are_derived_from_the_one_list() -> None:
    assert _pyzcache._PYZ_MODULES == ids.host_files("supervisor")
    assert _remote._HOST_CODE == ids.host_files("runner") and _remote._PKG == ids.HOST_PACKAGE
    assert ids.HOST_PACKAGE == ids.__name__.rsplit(".", 1)[0]
    # keyword/async_wrapper.py, written by hack/keyword_wrapper.py (a test checks it is current), names what it carries.
    with open(os.path.join(os.path.dirname(os.path.dirname(_HERE)), "keyword", "async_wrapper.py"), encoding="utf-8") as f:
        wrapper = f.read()
    assert f"this wrapper runs ({', '.join(ids.host_files('keyword'))})" in wrapper.replace("\n# ", " ")


def test_the_supervisor_zip_holds_the_supervisor_bundle() -> None:
    with zipfile.ZipFile(io.BytesIO(_pyzcache.supervisor_pyz(compiled=False))) as z:
        held = {os.path.basename(n)[:-3] for n in z.namelist() if n.startswith(ids.HOST_PACKAGE.replace(".", "/") + "/_")} - {"__init__"}
    assert held == set(ids.host_files("supervisor"))
