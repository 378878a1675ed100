# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""Action for detached.jobs.wait: wait for many jobs of a host in one task."""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.detached.jobs.plugins.module_utils._specs import WAIT_SPEC
from ansible_collections.detached.jobs.plugins.plugin_utils._jobrefs import collect
from ansible_collections.detached.jobs.plugins.plugin_utils._waiter import Waiter

ARGUMENT_SPEC = WAIT_SPEC


class ActionModule(ActionBase):
    _requires_connection = True

    def run(self, tmp: t.Any = None, task_vars: dict | None = None) -> dict:
        result = super().run(tmp, task_vars)
        del tmp
        dummy, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        if args["poll"] < 1:
            raise AnsibleActionFail(f"poll must be at least 1 second, got {args['poll']}")
        for key in ("timeout", "poll", "progress_interval"):
            if args[key] < 0:
                raise AnsibleActionFail(f"{key} must be 0 or more, got {args[key]}")
        refs = collect(args["jobs"])
        if not refs and not args["names"]:
            if self._task.check_mode and args["jobs"]:
                # Only check-mode starts, which started nothing.
                msg = "check mode: nothing to wait for, the jobs were not started"
                result.update(changed=False, jobs=[], counts={}, unfinished=[], timed_out=False, msg=msg)
                return result
            raise AnsibleActionFail("nothing to wait for: give jobs (ids or registered results) or names")
        waiter = Waiter(
            self,
            task_vars or {},
            refs,
            args["names"],
            timeout=args["timeout"],
            poll=args["poll"] or 15,
            fail_fast=args["fail_fast"],
            on_timeout=args["on_timeout"],
            cleanup=args["cleanup"],
            return_when=args["return_when"],
            progress_interval=args["progress_interval"],
        )
        try:
            result.update(waiter.run())
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result
