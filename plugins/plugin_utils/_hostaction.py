# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""The run skeleton of the actions that make one host call (async_status, job_info, prune)."""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.utils.vars import merge_hash

from ansible_collections.detached.jobs.plugins.module_utils._ids import QueryError
from ansible_collections.detached.jobs.plugins.module_utils._specs import parse_age
from ansible_collections.detached.jobs.plugins.plugin_utils._remote import async_dir, run_host


class HostAction(ActionBase):
    """Validate the task's arguments, run one host operation in the job directory, shape the result.

    A subclass sets OPERATION (the _ops operation), SPEC (its argument spec, from _specs) and
    AGES (options that hold an age such as "2d", checked on the controller), and may override
    result().
    """

    _requires_connection = True
    OPERATION = ""
    SPEC: dict[str, dict[str, t.Any]] = {}
    AGES: tuple[str, ...] = ()

    def run(self, tmp: t.Any = None, task_vars: dict | None = None) -> dict:
        result = super().run(tmp, task_vars)
        del tmp
        dummy, args = self.validate_argument_spec(argument_spec=self.SPEC)
        try:
            for key in self.AGES:
                if args.get(key) is not None:
                    parse_age(args[key], key)
        except QueryError as ex:
            raise AnsibleActionFail(str(ex)) from ex
        try:
            answer = run_host(self, self.OPERATION, dict(args, _async_dir=async_dir(self)), task_vars or {})
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return self.result(result, args, answer)

    def result(self, result: dict, args: dict, answer: dict) -> dict:
        del args
        return merge_hash(result, answer)
