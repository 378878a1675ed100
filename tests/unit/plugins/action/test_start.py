# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""The start action refuses, before anything starts, module arguments the module does not document."""

from __future__ import annotations

import os
import time
import types
from unittest import mock

import pytest
from ansible.errors import AnsibleActionFail

from ansible_collections.detached.jobs.plugins.action import start


@pytest.fixture(autouse=True)
def _fresh_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty cache, and ansible-core's own modules found as the plugin loader of a run finds them
    (a unit test has no collection loader: ansible.builtin is not importable as a collection here)."""
    import ansible.modules
    from ansible.plugins.loader import module_loader

    def find(name: str, collection_list: object = None) -> object:
        path = os.path.join(os.path.dirname(ansible.modules.__file__), name.rsplit(".", 1)[-1] + ".py")
        found = name.startswith("ansible.builtin.") or "." not in name
        return types.SimpleNamespace(resolved=found and os.path.exists(path), plugin_resolved_path=path if found else None)

    monkeypatch.setattr(module_loader, "find_plugin_with_context", find)
    start._DOCUMENTED.clear()


def test_a_misspelt_option_is_refused_naming_it_and_the_closest() -> None:
    with pytest.raises(AnsibleActionFail) as err:
        start._check_module_args("jobs[1]", "ansible.builtin.command", {"cmdd": "echo hi"}, None)
    msg = str(err.value)
    assert msg.startswith("jobs[1]: unsupported parameter for module ansible.builtin.command: cmdd (did you mean cmd?); nothing was started. ")
    assert "Supported parameters, as the module documents them: argv, chdir, cmd, creates" in msg


def test_several_unknown_options_are_all_named() -> None:
    with pytest.raises(
        AnsibleActionFail, match=r"^the task: unsupported parameters for module ansible.builtin.file: bogus, pathh \(did you mean path\?\); nothing was started"
    ):
        start._check_module_args("the task", "ansible.builtin.file", {"pathh": "/x", "bogus": 1, "state": "touch"}, None)


@pytest.mark.parametrize(
    ("module", "args"),
    [
        ("ansible.builtin.command", {"cmd": "echo hi", "chdir": "/tmp"}),
        ("command", {"_raw_params": "echo hi", "_uses_shell": True}),  # internal keys pass
        ("ansible.builtin.shell", {"cmd": "echo hi", "executable": "/bin/bash"}),
        ("ansible.builtin.file", {"dest": "/tmp/x", "state": "touch", "mode": "0600"}),  # an alias, options of a doc fragment
        ("ansible.builtin.get_url", {"url": "http://x", "dest": "/tmp/x", "timeout": 3}),
        ("ansible.builtin.command", {}),
    ],
)
def test_documented_options_and_aliases_pass(module: str, args: dict) -> None:
    start._check_module_args("the task", module, args, None)


def test_a_module_whose_options_cannot_be_known_is_not_checked() -> None:
    # Not found here: the build of its payload says so; its arguments are not judged.
    start._check_module_args("the task", "no.such.module_at_all", {"anything": 1}, None)
    with mock.patch.object(start, "_read_doc", return_value=None), mock.patch("ansible.utils.plugin_docs.get_docstring", side_effect=ValueError("bad")):
        start._check_module_args("the task", "ansible.builtin.file", {"pathh": 1}, None)
    start._DOCUMENTED.clear()
    with mock.patch.object(start, "_read_doc", return_value={"short_description": "no options section"}):
        start._check_module_args("the task", "ansible.builtin.file", {"pathh": 1}, None)


def test_the_quick_read_falls_back_to_ansible_cores() -> None:
    with mock.patch.object(start, "_read_doc", side_effect=ValueError("odd YAML")):
        with pytest.raises(AnsibleActionFail, match="pathh"):
            start._check_module_args("the task", "ansible.builtin.file", {"pathh": 1}, None)


def test_the_quick_read_finds_what_ansible_core_finds() -> None:
    import ansible.modules
    from ansible.plugins.loader import fragment_loader
    from ansible.utils.plugin_docs import get_docstring

    base = os.path.dirname(ansible.modules.__file__)
    for name in ("command", "shell", "file", "copy", "get_url", "uri", "pip", "apt", "service", "lineinfile"):
        path = os.path.join(base, name + ".py")
        quick = start._read_doc(path, fragment_loader)
        assert quick is not None
        assert quick["options"] == get_docstring(path, fragment_loader, is_module=True)[0]["options"], name


def test_the_documentation_is_read_once_per_module() -> None:
    with mock.patch.object(start, "_read_doc", wraps=start._read_doc) as read:
        for _attempt in range(5):
            start._check_module_args("the task", "ansible.builtin.file", {"path": "/x"}, None)
    assert read.call_count == 1


def test_cost_of_the_check(capsys: pytest.CaptureFixture) -> None:
    """Not an assertion on speed: prints what the first check of a module costs (its documentation read), for the record."""
    for module, args in (("ansible.builtin.command", {"cmd": "true"}), ("ansible.builtin.file", {"path": "/x"})):
        began = time.perf_counter()
        start._check_module_args("the task", module, args, None)
        first = time.perf_counter() - began
        began = time.perf_counter()
        start._check_module_args("the task", module, args, None)
        again = time.perf_counter() - began
        with capsys.disabled():
            print(f"\n{module}: first check {first * 1000:.1f} ms, cached {again * 1000:.3f} ms")
