# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""Unit tests of _remote: the module interpreter is found once per task and host."""

from __future__ import annotations

import types
from unittest import mock

from ansible_collections.detached.jobs.plugins.plugin_utils import _remote


def test_the_interpreter_is_found_once_per_action() -> None:
    built = types.SimpleNamespace(shebang="#!/opt/py/bin/python3.12 -X utf8")
    configure = mock.MagicMock(return_value=(built, "path"))
    with mock.patch.object(_remote, "_configure_module", configure):
        action = types.SimpleNamespace(_discovered_interpreter_key=None)
        first = _remote._interpreter(action, {})
        again = _remote._interpreter(action, {})  # a wait's next round
        other = _remote._interpreter(types.SimpleNamespace(_discovered_interpreter_key=None), {})
    assert first == again == other == (["/opt/py/bin/python3.12", "-X", "utf8"], {})
    # Built for the first action and for the other one (another task or host), not for the second round.
    assert configure.call_count == 2


def test_discovery_facts_are_kept_with_the_interpreter() -> None:
    built = ("new", "#!/usr/bin/python3", b"", "path")  # ansible-core 2.16 - 2.18: a tuple
    with mock.patch.object(_remote, "_configure_module", mock.MagicMock(return_value=built)):
        action = types.SimpleNamespace(_discovered_interpreter_key="discovered_interpreter_python", _discovered_interpreter="/usr/bin/python3")
        assert _remote._interpreter(action, {}) == (["/usr/bin/python3"], {"discovered_interpreter_python": "/usr/bin/python3"})
        assert _remote._interpreter(action, {})[1] == {"discovered_interpreter_python": "/usr/bin/python3"}


def test_without_the_lean_runner_the_operations_run_as_the_internal_modules() -> None:
    """start runs as async_wrapper; the other operations as host_operation, their internal options inside params."""
    action = mock.MagicMock()
    action._execute_module.return_value = {"changed": False}
    with mock.patch.object(_remote, "_lean_path_ok", return_value=False):
        assert _remote.run_host(action, "wait", {"_jids": ["j1.2"], "_async_dir": "/x"}, {}) == {"changed": False}
        _remote.run_host(action, "start", {"jobs": [], "async_dir": "/x"}, {})
    first, second = action._execute_module.call_args_list
    assert first.kwargs["module_name"] == "detached.jobs.host_operation"
    assert first.kwargs["module_args"] == {"operation": "wait", "params": {"_jids": ["j1.2"], "_async_dir": "/x"}}
    assert second.kwargs["module_name"] == "detached.jobs.async_wrapper"
    assert second.kwargs["module_args"] == {"jobs": [], "async_dir": "/x"}
