# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""The argument specs of the host operations, and the parsing of their values. Private to detached.jobs.

Each spec is declared here once: the actions validate a task's arguments with the public ones
(STATUS_SPEC, WAIT_SPEC, JOB_INFO_SPEC, PRUNE_SPEC), the host takes SPECS (the same, plus the
internal options the actions add: _async_dir, _jids, _block...), with which _entry parses a
module's arguments. The option table of a job is _options'.

Shared by the controller and the host code: it imports only _ids and _options (the controller
may import nothing else of module_utils, tests/unit/plugins/test_boundary.py). Standard library
only, Python 3.8+.
"""

from __future__ import annotations

import math
import re

from ansible_collections.detached.jobs.plugins.module_utils import _ids as ids
from ansible_collections.detached.jobs.plugins.module_utils import _options

TYPE_CHECKING = False  # typing is not imported at run time: the host code stays lean
if TYPE_CHECKING:
    import typing as t

# The state job_info reports for a job whose status file cannot be read.
CORRUPT = "corrupt"
# Every state job_info can report; prune may remove all but running ones.
INFO_STATES = ids.STATES + (CORRUPT,)
PRUNE_STATES = ids.FINAL_STATES + (CORRUPT,)

_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_AGE_RE = re.compile(r"\A\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([smhd]?)\s*\Z", re.IGNORECASE)
_AGE_HELP = "use seconds (90) or a number with a unit s, m, h or d (30s, 15m, 2h, 7d)"


def parse_age(value: object, option: str = "age") -> float:
    """Seconds from an age: a number of seconds (int, float or numeric string) or a number with a unit s, m, h, d."""
    if isinstance(value, bool) or value is None:
        raise ids.QueryError(f"invalid {option} {value!r}: {_AGE_HELP}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        m = _AGE_RE.match(value)
        if not m:
            raise ids.QueryError(f"invalid {option} {value!r}: {_AGE_HELP}")
        seconds = float(m.group(1)) * _UNITS[m.group(2).lower()]
    else:
        raise ids.QueryError(f"invalid {option} {value!r} (a {type(value).__name__}): {_AGE_HELP}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ids.QueryError(f"invalid {option} {value!r}: an age is 0 or more; {_AGE_HELP}")
    return seconds


# The public options of each operation's action (the modules of the same names document them).
STATUS_SPEC: dict[str, dict[str, t.Any]] = {
    "jid": {"type": "str", "required": True},
    "mode": {"type": "str", "choices": ["status", "cleanup", "kill"], "default": "status"},
    "tail": {"type": "int", "default": 0},
    "tail_bytes": {"type": "int", "default": ids.TAIL_BYTES},
}
WAIT_SPEC: dict[str, dict[str, t.Any]] = {
    "jobs": {"type": "raw", "default": []},
    "names": {"type": "list", "elements": "str", "default": []},
    "timeout": {"type": "int", "default": 3600},
    "poll": {"type": "int", "default": 15},
    "fail_fast": {"type": "bool", "default": False},
    "on_timeout": {"type": "str", "choices": ["fail", "kill"], "default": "fail"},
    "cleanup": {"type": "bool", "default": False},
    "return_when": {"type": "str", "choices": ["all", "any"], "default": "all"},
    "progress_interval": {"type": "int", "default": 10},
}
JOB_INFO_SPEC: dict[str, dict[str, t.Any]] = {
    "names": {"type": "list", "elements": "str", "default": []},
    "states": {"type": "list", "elements": "str", "default": [], "choices": list(INFO_STATES)},
    "jids": {"type": "list", "elements": "str", "default": []},
    "older_than": {"type": "raw"},
    "newer_than": {"type": "raw"},
    "details": {"type": "bool", "default": False},
    "tail": {"type": "int", "default": 0},
    "tail_bytes": {"type": "int", "default": ids.TAIL_BYTES},
}
PRUNE_SPEC: dict[str, dict[str, t.Any]] = {
    "older_than": {"type": "raw", "required": True},
    "states": {"type": "list", "elements": "str", "default": list(ids.FINAL_STATES), "choices": list(PRUNE_STATES)},
    "names": {"type": "list", "elements": "str", "default": []},
}

# The job directory, which the actions resolve from the connection (the async keyword's async_dir).
_ASYNC_DIR = {"_async_dir": {"type": "path", "default": ids.DEFAULT_ASYNC_DIR}}

# A job as the start action hands it to the host (validated there; defaults as in _control.JobSpec):
# from the one table of a job's options.
JOB_SPEC: dict[str, dict[str, t.Any]] = _options.host_spec()

# What the host takes for each operation: the public options and the internal ones the actions add.
SPECS: dict[str, dict[str, dict[str, t.Any]]] = {
    "start": {
        "jobs": {"type": "list", "elements": "dict", "required": True, "options": JOB_SPEC},
        "async_dir": {"type": "path", "required": True},
    },
    "status": dict(STATUS_SPEC, **_ASYNC_DIR),
    # The host side of wait gets the job ids the action resolved (_jids), what to do (_mode)
    # and how long to block (_block).
    "wait": dict(
        WAIT_SPEC,
        jobs={"type": "list", "elements": "raw", "default": []},
        _jids={"type": "list", "elements": "str", "default": []},
        _mode={"type": "str", "default": "wait", "choices": ["wait", "kill", "cleanup"]},
        _block={"type": "float", "default": 0},
        _tail={"type": "int", "default": 0},
        _until={"type": "str", "default": "any", "choices": ["any", "bad", "all"]},
        **_ASYNC_DIR,
    ),
    "job_info": dict(JOB_INFO_SPEC, **_ASYNC_DIR),
    "prune": dict(PRUNE_SPEC, **_ASYNC_DIR),
}

# The internal module detached.jobs.host_operation, where an action's lean runner cannot be used:
# the operation, and its parameters (checked on the host against SPECS[operation]). The internal
# options travel inside params, so that no module documents them as options of a task.
HOST_OPERATIONS = ("status", "wait", "job_info", "prune")
HOST_OPERATION_SPEC: dict[str, dict[str, t.Any]] = {
    "operation": {"type": "str", "required": True, "choices": list(HOST_OPERATIONS)},
    "params": {"type": "dict", "default": {}},
}
