# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""Action for detached.jobs.async_status: builtin-compatible status and cleanup, plus kill."""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleActionFail
from ansible.utils.vars import merge_hash

from ansible_collections.detached.jobs.plugins.module_utils._specs import STATUS_SPEC
from ansible_collections.detached.jobs.plugins.plugin_utils._hostaction import HostAction
from ansible_collections.detached.jobs.plugins.plugin_utils._waiter import with_lines


class ActionModule(HostAction):
    OPERATION = "status"
    SPEC = STATUS_SPEC

    def run(self, tmp: t.Any = None, task_vars: dict | None = None) -> dict:
        for key in ("tail", "tail_bytes"):
            value = self._task.args.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value < (1 if key == "tail_bytes" else 0):
                raise AnsibleActionFail(f"{key} must be {1 if key == 'tail_bytes' else 0} or more, got {value}")
        return super().run(tmp, task_vars)

    def result(self, result: dict, args: dict, answer: dict) -> dict:
        # The same shape as ansible.builtin.async_status answers with, whatever happens.
        result.update(ansible_job_id=args["jid"], started=False, finished=False, stdout="", stderr="", stdout_lines=[], stderr_lines=[])
        job = answer.pop("job", None)
        tail = answer.pop("tail", None)
        operation_changed = bool(answer.get("changed"))
        operation_failed = bool(answer.get("failed"))
        if isinstance(job, dict):
            # The stored result of the job comes back nested, so that the module's own output
            # handling leaves it as the job wrote it; it becomes the task's result here.
            answer = with_lines(merge_hash(answer, job))
        result = merge_hash(result, answer)
        for key in ("started", "finished"):
            result[key] = bool(result.get(key))
        if tail is not None:
            result["tail"] = tail
        if args["mode"] != "status" and not operation_failed:
            # What this task changed, not what the job reported when it ran.
            result["changed"] = operation_changed
            if args["mode"] == "kill":
                # The kill worked: the task succeeds; the job's own outcome is in detached.state.
                result["job_failed"] = bool(result.get("failed"))
                result["failed"] = False
        return result
