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
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.detached.jobs.plugins.module_utils import _ids as ids

display = Display()

_SHELL_MODULES = ("shell", "ansible.builtin.shell", "ansible.legacy.shell")
_COMMAND_MODULES = ("command", "ansible.builtin.command", "ansible.legacy.command")
# Action plugins whose module runs fine on its own (they only prepare arguments).
_PLAIN_ACTIONS = ("command", "normal", "shell")


def async_dir(action: ActionBase) -> str:
    """The job directory as the async keyword uses it: the shell's async_dir option, expanded on the host.

    The host-side modules expand '~' for the user they run as (so with become, the become user),
    exactly as ansible-core's async_wrapper does; no extra round trip is needed here.
    """
    return str(action.get_shell_option("async_dir", default=ids.DEFAULT_ASYNC_DIR))


def build_module_job(action: ActionBase, module_name: str, module_args: dict, task_vars: dict) -> dict:
    """A job spec for the async_wrapper module: the module's payload built by ansible-core."""
    module_args = dict(module_args)
    if module_name in _SHELL_MODULES:
        module_name = "ansible.legacy.command"
        module_args["_uses_shell"] = True
    if module_name in _COMMAND_MODULES and "cmd" in module_args and not module_args.get("_raw_params"):
        # What ansible-core's Task does for `cmd:` of command/shell; before 2.19 the module rejects `cmd`.
        module_args["_raw_params"] = module_args.pop("cmd")
    _warn_about_action(action, module_name)
    action._update_module_args(module_name, module_args, task_vars)
    module_args["_ansible_check_mode"] = False
    # The job makes (and removes) its own temporary directory: the launch's is gone by the time it runs.
    module_args["_ansible_tmpdir"] = None
    built = _configure_module(action, module_name, module_args, task_vars)
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


def _configure_module(action: ActionBase, module_name: str, module_args: dict, task_vars: dict) -> tuple:
    """ansible-core's payload builder for a module (its AnsiballZ, interpreter line, style).

    ActionBase's own method is called, not the action's: Mitogen's action mixin replaces it with
    one that raises ("_configure_module() should never be called."), as Mitogen builds the
    payloads of the modules it runs itself. A job's payload is built here and run by the job's
    supervisor on the host, with ansible-core's machinery as under any other strategy.
    """
    return ActionBase._configure_module(action, module_name=module_name, module_args=module_args, task_vars=task_vars)


def _warn_about_action(action: ActionBase, module_name: str) -> None:
    loader = action._shared_loader_obj.action_loader
    found = loader.find_plugin_with_context(module_name, collection_list=action._task.collections)
    if found.resolved and found.plugin_resolved_name.rsplit(".", 1)[-1] not in _PLAIN_ACTIONS:
        display.warning(
            f"{module_name} has an action plugin ({found.plugin_resolved_name}) that does part of its work on the controller;"
            " a detached job runs only its module on the host"
        )


# The internal modules that run the host operations where the lean runner cannot.
_START_MODULE = "detached.jobs.async_wrapper"
_OPERATION_MODULE = "detached.jobs.host_operation"

_PKG = ids.HOST_PACKAGE
# The host code the lean runner sends (see _ids.HOST_FILES).
_HOST_CODE = ids.host_files("runner")
_SOURCES: dict[str, str] = {}
_SOURCES_JSON: list[str] = []

# The importer both ways of running the collection's host code without AnsiballZ install on the
# host: it serves the modules of S ({full module name: source}) and their packages. Python text,
# standard library only, for the lean runner below and for keyword/async_wrapper.py (which
# hack/keyword_wrapper.py writes with it).
HOST_IMPORTER = r"""
from importlib.util import spec_from_loader

P = "@PKG@".split(".")
K = {".".join(P[:i + 1]) for i in range(len(P))}


class L:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name in K or name in S:
            return spec_from_loader(name, L, is_package=name in K)
        return None

    @staticmethod
    def create_module(spec):
        return None

    @staticmethod
    def exec_module(module):
        if module.__name__ in S:
            exec(compile(S[module.__name__], module.__name__.replace(".", "/") + ".py", "exec"), module.__dict__)

    @staticmethod
    def get_source(name):
        return S.get(name)


sys.meta_path.insert(0, L)
""".replace("@PKG@", _PKG)

# Runs on the host with the module interpreter as `python -I -S -c ...`: installs the importer
# for the collection's host code sent on stdin (with the operation and its parameters), runs
# the operation and prints its result as JSON. Standard library only.
_BOOTSTRAP = (
    r"""
import json, sys
D = json.loads(sys.stdin.buffer.read())
S = D["s"]
"""
    + HOST_IMPORTER
    + r"""
from ansible_collections.detached.jobs.plugins.module_utils import _ops
sys.stdout.write("\n" + json.dumps(_ops.run(D["o"], D["a"], D["c"])) + "\n")
"""
)


def _host_sources() -> dict[str, str]:
    """The host code, read from the collection's module_utils beside this file (not imported: a
    worker that only ships it need not load it)."""
    if not _SOURCES:
        import os

        here = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "module_utils")
        for name in _HOST_CODE:
            with open(os.path.join(here, f"{name}.py"), encoding="utf-8") as f:
                _SOURCES[f"{_PKG}.{name}"] = f.read()
    return _SOURCES


def _host_sources_json() -> str:
    """_host_sources() as JSON, encoded once per process (see the end of this module)."""
    if not _SOURCES_JSON:
        _SOURCES_JSON.append(json.dumps(_host_sources()))
    return _SOURCES_JSON[0]


def _lean_path_ok(action: ActionBase) -> bool:
    """Whether the host code can be piped to a lean interpreter (one round trip, no AnsiballZ start-up).

    It needs a connection that can pipe data (ssh, local, paramiko, ...) and a POSIX shell. With
    become, it is used only where the user enabled pipelining (sudo's requiretty would break it).
    """
    conn = action._connection
    if not getattr(conn, "has_pipelining", False) or getattr(conn._shell, "SHELL_FAMILY", "sh") == "powershell":
        return False
    if getattr(conn, "become", None) is not None and action._play_context.become:
        return bool(action._is_pipelining_enabled("new"))
    return True


def _interpreter(action: ActionBase, task_vars: dict) -> tuple[list[str], dict]:
    """The module interpreter (discovered by ansible-core as for any module) and discovery facts.

    Found once per task and host: a wait makes one call per round, and building the module to
    read its interpreter line costs the controller a few milliseconds each time.
    """
    known = getattr(action, "_detached_jobs_interpreter", None)
    if known is not None:
        return known
    built = _configure_module(action, _START_MODULE, {}, task_vars)
    shebang = built[0].shebang if len(built) == 2 else built[1]
    facts = {}
    if getattr(action, "_discovered_interpreter_key", None):
        facts[action._discovered_interpreter_key] = action._discovered_interpreter
    found = (shlex.split(str(shebang)[2:].strip()), facts)
    action._detached_jobs_interpreter = found
    return found


def _run_lean(action: ActionBase, op: str, args: dict, task_vars: dict) -> dict:
    interpreter, facts = _interpreter(action, task_vars)
    boot = base64.b64encode(_BOOTSTRAP.encode("utf-8")).decode("ascii")
    argv = interpreter + ["-I", "-S", "-c", f"import base64;exec(base64.b64decode('{boot}'))"]
    env = action._compute_environment_string()
    cmd = (env + " " if env else "") + " ".join(shlex.quote(a) for a in argv)
    # The 130 KB of host code are encoded once, not at every call.
    data = json.dumps({"o": op, "a": args, "c": bool(action._task.check_mode)})[:-1] + ', "s": ' + _host_sources_json() + "}"
    res = action._low_level_execute_command(cmd, sudoable=True, in_data=data.encode("utf-8"))
    stdout = res.get("stdout", "") or ""
    try:
        result = json.loads(_json_part(stdout))
        if not isinstance(result, dict):
            raise ValueError("not an object")
    except ValueError:
        return {
            "failed": True,
            "rc": res.get("rc"),
            "msg": f"the detached.jobs host code did not answer with JSON under {' '.join(interpreter)} (rc={res.get('rc')}): "
            f"{(res.get('stderr') or stdout or '').strip()[-2000:]}",
        }
    if facts:
        result.setdefault("ansible_facts", {}).update(facts)
    return result


def _json_part(text: str) -> str:
    """The JSON object in the output, without shell noise (motd, become banners) around it."""
    lines = text.splitlines()
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].lstrip().startswith("{"):
            return lines[i]
    raise ValueError("no JSON object in the output")


def _run_module(action: ActionBase, op: str, args: dict, task_vars: dict) -> dict:
    """The operation as a module (AnsiballZ): start as async_wrapper, the others as host_operation,
    whose argument spec takes every operation's parameters (internal options included) under params."""
    if op == "start":
        return action._execute_module(module_name=_START_MODULE, module_args=dict(args), task_vars=task_vars)
    return action._execute_module(module_name=_OPERATION_MODULE, module_args={"operation": op, "params": dict(args)}, task_vars=task_vars)


def run_host(action: ActionBase, op: str, args: dict, task_vars: dict, deadline: float | None = None, what: str = "the host") -> dict:
    """Run a host-side operation of the collection; retry dropped connections until deadline (monotonic).

    The lean path pipes the host code to the module interpreter in one round trip; where that
    is not possible the same operation runs as the collection's internal module (AnsiballZ).
    """
    attempt = 0
    while True:
        try:
            if _lean_path_ok(action):
                result = _run_lean(action, op, args, task_vars)
            else:
                result = _run_module(action, op, args, task_vars)
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


try:
    # Read and encoded at import: the strategy's process imports the actions (linear and free ask
    # them whether they bypass the host loop), and its workers, forked from it, inherit this.
    _host_sources_json()
except OSError:  # read at the first call instead, which then says what is missing
    _SOURCES.clear()
    _SOURCES_JSON.clear()
