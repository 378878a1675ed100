# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""Action for detached.jobs.prune: resolves the job directory, then removes the host's old finished jobs."""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.utils.vars import merge_hash

from ansible_collections.detached.jobs.plugins.module_utils._query import PRUNE_SPEC, QueryError, parse_age
from ansible_collections.detached.jobs.plugins.plugin_utils._remote import async_dir, run_host


class ActionModule(ActionBase):
    _requires_connection = True

    def run(self, tmp: t.Any = None, task_vars: dict | None = None) -> dict:
        result = super().run(tmp, task_vars)
        del tmp
        dummy, args = self.validate_argument_spec(argument_spec=PRUNE_SPEC)
        try:
            parse_age(args["older_than"], "older_than")
        except QueryError as ex:
            raise AnsibleActionFail(str(ex)) from ex
        try:
            answer = run_host(self, "prune", "detached.jobs.prune", dict(args, _async_dir=async_dir(self)), task_vars or {})
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return merge_hash(result, answer)
