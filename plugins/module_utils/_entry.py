# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""The one entry point of the collection's modules, and their argument specs. Private to detached.jobs.

Every module's main() is `_entry.main(AnsibleModule, "<operation>")`: parse the arguments with
the operation's spec, run the operation (_ops.run, the same functions the lean runner calls)
and exit with its result. The wait action shares WAIT_SPEC for its public options.
Standard library only (AnsibleModule is handed in by the module), Python 3.8+.
"""

from __future__ import annotations

import typing as t

from ansible_collections.detached.jobs.plugins.module_utils import _ids as ids
from ansible_collections.detached.jobs.plugins.module_utils import _ops, _options, _query

_ASYNC_DIR = {"_async_dir": {"type": "path", "default": ids.DEFAULT_ASYNC_DIR}}

# A job as the start action hands it to the host (validated there; defaults as in _control.JobSpec):
# from the one table of a job's options.
JOB_SPEC: dict[str, dict[str, t.Any]] = _options.host_spec()

# The public options of detached.jobs.wait (the action validates them; the module documents them).
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

SPECS: dict[str, dict[str, dict[str, t.Any]]] = {
    "start": {
        "jobs": {"type": "list", "elements": "dict", "required": True, "options": JOB_SPEC},
        "async_dir": {"type": "path", "required": True},
    },
    "status": dict(
        _ASYNC_DIR,
        jid={"type": "str", "required": True},
        mode={"type": "str", "default": "status", "choices": ["status", "cleanup", "kill"]},
        tail={"type": "int", "default": 0},
        tail_bytes={"type": "int", "default": 4096},
    ),
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
    "job_info": dict(_query.JOB_INFO_SPEC, **_ASYNC_DIR),
    "prune": dict(_query.PRUNE_SPEC, **_ASYNC_DIR),
}


def main(module_class: t.Any, op: str) -> None:
    """Run one operation as a module: module_class is ansible.module_utils.basic.AnsibleModule."""
    module = module_class(argument_spec=SPECS[op], supports_check_mode=True)
    result = _ops.run(op, module.params, module.check_mode)
    if result.get("failed"):
        module.fail_json(**result)
    module.exit_json(**result)
