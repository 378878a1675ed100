# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""Controller-side helpers shared by the collection's action plugins. Private to detached.jobs.

- where jobs live on the host (the job directory, as the async keyword resolves it);
- building a module's payload with ansible-core's own machinery, on ansible-core 2.16 to 2.19;
- running the collection's host-side modules, riding out dropped connections.
"""

from __future__ import annotations

import base64
import json
import shlex
import time
import typing as t

from ansible.errors import AnsibleConnectionFailure
from ansible.utils.display import Display

if t.TYPE_CHECKING:
    from ansible.plugins.action import ActionBase

display = Display()

DEFAULT_ASYNC_DIR = "~/.ansible_async"
_SHELL_MODULES = ("shell", "ansible.builtin.shell", "ansible.legacy.shell")
# Action plugins whose module runs fine on its own (they only prepare arguments).
_PLAIN_ACTIONS = ("command", "normal", "shell")


def async_dir(action: ActionBase) -> str:
    """The job directory as the async keyword uses it: the shell's async_dir option, expanded on the host.

    The host-side modules expand '~' for the user they run as (so with become, the become user),
    exactly as ansible-core's async_wrapper does; no extra round trip is needed here.
    """
    return str(action.get_shell_option("async_dir", default=DEFAULT_ASYNC_DIR))


def build_module_job(action: ActionBase, module_name: str, module_args: dict, task_vars: dict) -> dict:
    """A job spec for the async_wrapper module: the module's payload built by ansible-core."""
    module_args = dict(module_args)
    if module_name in _SHELL_MODULES:
        module_name = "ansible.legacy.command"
        module_args["_uses_shell"] = True
    _warn_about_action(action, module_name)
    action._update_module_args(module_name, module_args, task_vars)
    module_args["_ansible_check_mode"] = False
    # The job makes (and removes) its own temporary directory: the launch's is gone by the time it runs.
    module_args["_ansible_tmpdir"] = None
    built = action._configure_module(module_name=module_name, module_args=module_args, task_vars=task_vars)
    if len(built) == 2:  # ansible-core >= 2.19: (_BuiltModule, path)
        bits = built[0]
        style, shebang, data = bits.module_style, bits.shebang, bits.b_module_data
    else:  # ansible-core 2.16 - 2.18: (style, shebang, data, path)
        style, shebang, data = built[0], built[1], built[2]
    job: dict[str, t.Any] = {"module": module_name, "style": style, "payload": base64.b64encode(data).decode("ascii")}
    if style != "binary":
        if not shebang:
            raise ValueError(f"module {module_name} has no interpreter line")
        job["interpreter"] = shlex.split(shebang[2:].strip())
    if style == "old":
        job["args_data"] = " ".join(f"{k}={shlex.quote(str(v))}" for k, v in module_args.items())
    elif style in ("non_native_want_json", "binary"):
        job["args_data"] = json.dumps(module_args)
    return job


def _warn_about_action(action: ActionBase, module_name: str) -> None:
    loader = action._shared_loader_obj.action_loader
    found = loader.find_plugin_with_context(module_name, collection_list=action._task.collections)
    if found.resolved and found.plugin_resolved_name.rsplit(".", 1)[-1] not in _PLAIN_ACTIONS:
        display.warning(
            f"{module_name} has an action plugin ({found.plugin_resolved_name}) that does part of its work on the controller;"
            " a detached job runs only its module on the host"
        )


def run_host_module(
    action: ActionBase, name: str, args: dict, task_vars: dict, deadline: float | None = None, what: str = "the host"
) -> dict:
    """Run one of the collection's host-side modules; retry dropped connections until deadline (monotonic)."""
    attempt = 0
    while True:
        try:
            result = action._execute_module(module_name=name, module_args=dict(args), task_vars=task_vars)
        except AnsibleConnectionFailure as ex:
            result = {"unreachable": True, "msg": str(ex)}
        if not result.get("unreachable"):
            return result
        attempt += 1
        if deadline is None or time.monotonic() >= deadline:
            return result
        display.warning(f"{what}: connection lost ({str(result.get('msg', '')).strip()[:200]}); retrying (attempt {attempt}), the jobs keep running")
        try:
            action._connection.reset()
        except Exception:  # noqa: BLE001 - a reset is best effort; the next attempt reports real errors
            pass
        time.sleep(min(2.0, max(0.0, deadline - time.monotonic())))
