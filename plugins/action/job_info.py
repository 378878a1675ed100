# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""Action for detached.jobs.job_info: resolves the job directory, then lists the host's jobs."""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.utils.vars import merge_hash

from ansible_collections.detached.jobs.plugins.module_utils._query import JOB_INFO_SPEC, QueryError, parse_age
from ansible_collections.detached.jobs.plugins.plugin_utils._remote import async_dir, run_host


class ActionModule(ActionBase):
    _requires_connection = True

    def run(self, tmp: t.Any = None, task_vars: dict | None = None) -> dict:
        result = super().run(tmp, task_vars)
        del tmp
        dummy, args = self.validate_argument_spec(argument_spec=JOB_INFO_SPEC)
        try:
            for key in ("older_than", "newer_than"):
                if args.get(key) is not None:
                    parse_age(args[key], key)
        except QueryError as ex:
            raise AnsibleActionFail(str(ex)) from ex
        try:
            answer = run_host(self, "job_info", "detached.jobs.job_info", dict(args, _async_dir=async_dir(self)), task_vars or {})
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return merge_hash(result, answer)
