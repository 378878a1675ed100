# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""Unit tests of the wait action's argument checks (they fail before any remote call)."""

from __future__ import annotations

from unittest import mock

import pytest
from ansible.errors import AnsibleActionFail

from ansible_collections.detached.jobs.plugins.action.wait import ActionModule

J1 = "j111111111111.100"


def _action(**args: object) -> ActionModule:
    task = mock.MagicMock(args=dict({"jobs": [J1]}, **args), async_val=0, check_mode=False, diff=False)
    return ActionModule(task, mock.MagicMock(), mock.MagicMock(), loader=None, templar=None, shared_loader_obj=None)


@pytest.mark.parametrize("poll", [0, -1])
def test_poll_below_one_second_is_rejected(poll: int) -> None:
    with mock.patch("ansible_collections.detached.jobs.plugins.action.wait.Waiter") as waiter:
        with pytest.raises(AnsibleActionFail, match=f"poll must be at least 1 second, got {poll}"):
            _action(poll=poll).run(task_vars={})
    waiter.assert_not_called()


def test_poll_of_one_second_is_accepted() -> None:
    with mock.patch("ansible_collections.detached.jobs.plugins.action.wait.Waiter") as waiter:
        waiter.return_value.run.return_value = {"jobs": []}
        _action(poll=1).run(task_vars={})
    assert waiter.call_args.kwargs["poll"] == 1


def test_negative_timeout_is_rejected() -> None:
    with pytest.raises(AnsibleActionFail, match="timeout must be 0 or more, got -1"):
        _action(timeout=-1).run(task_vars={})
