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


def test_progress_lines_come_at_most_once_per_interval_and_only_when_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The wait's progress display, on a fake clock: a running job's last line is shown when it
    changed and progress_interval has passed since lines were last shown, never more often."""
    from ansible_collections.detached.jobs.plugins.plugin_utils import _waiter
    from ansible_collections.detached.jobs.plugins.plugin_utils._jobrefs import JobRef

    clock = [1000.0]
    monkeypatch.setattr(_waiter.time, "monotonic", lambda: clock[0])
    shown: list[str] = []
    monkeypatch.setattr(_waiter.display, "display", shown.append)
    waiter = _waiter.Waiter(mock.MagicMock(), {"inventory_hostname": "h1"}, [JobRef(J1, "build", None)], [], timeout=0, progress_interval=5)
    state = _waiter._State(waiter.refs, [])

    def answer(line: str, job_state: str = "running") -> dict:
        detached = {"state": job_state, "slot": "db"}
        return {"jobs": {J1: {"ansible_job_id": J1, "finished": False, "detached": detached, "tail": {"last_line": line}}}}

    assert waiter._progress_due(block=1)
    waiter._take(state, answer("step 1"))
    assert shown == [f"h1: job {J1} (build) running: step 1"]
    clock[0] += 3
    assert not waiter._progress_due(block=1)  # it would come back 4 s after the last lines
    waiter._take(state, answer("step 2"))  # an early answer: too soon
    assert len(shown) == 1
    clock[0] += 2
    assert waiter._progress_due(block=1)
    waiter._take(state, answer("step 2"))
    clock[0] += 5
    waiter._take(state, answer("step 2"))  # unchanged: not shown again
    clock[0] += 5
    waiter._take(state, answer("", "queued"))
    assert shown[1:] == [f"h1: job {J1} (build) running: step 2", f"h1: job {J1} (build) queued: queued for slot 'db'"]
    assert [p["line"] for p in waiter.progress] == ["step 1", "step 2", "queued for slot 'db'"]
    assert "tail" not in waiter.views[J1]


def test_no_progress_lines_with_an_interval_of_zero() -> None:
    from ansible_collections.detached.jobs.plugins.plugin_utils import _waiter

    waiter = _waiter.Waiter(mock.MagicMock(), {}, [], [], timeout=0, progress_interval=0)
    assert not waiter._progress_due(block=1)
