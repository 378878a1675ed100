# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""Unit tests of the wait action's argument checks (they fail before any remote call)."""

from __future__ import annotations

import typing as t
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

    waiter._progress_next = clock[0] + 5
    assert not waiter._progress_due(block=1)  # it would come back 4 s before the lines are due
    assert waiter._block(clock[0], None) == 5  # poll (15) cut short: the round returns when they are due
    assert waiter._progress_due(block=5)
    waiter._take(state, answer("step 1"))
    assert shown == [f"h1: job {J1} (build) running: step 1"]
    clock[0] += 3
    waiter._take(state, answer("step 2"))  # an early answer: too soon
    assert len(shown) == 1
    clock[0] += 2
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


# --- progress at the interval the user set, from the recorded times --------------------------
class _FakeHost:
    """A host whose one job runs `runs` seconds and prints a new line every second, on a fake clock:
    each remote call takes `latency` seconds and blocks as the host would (until the job ends or
    the block passes)."""

    def __init__(self, clock: list[float], runs: float, latency: float = 0.1) -> None:
        self.clock = clock
        self.start = clock[0]
        self.runs = runs
        self.latency = latency
        self.blocks: list[float] = []

    def call(self, mode: str, jids: list[str], block: float, names: list | None = None, deadline: float | None = None, tail: int = 0, **extra: object) -> dict:
        self.blocks.append(block)
        end = self.start + self.runs
        self.clock[0] = min(self.clock[0] + self.latency / 2 + block, max(end, self.clock[0] + self.latency / 2)) + self.latency / 2
        if self.clock[0] >= end:
            view = {"ansible_job_id": J1, "started": True, "finished": True, "rc": 0, "detached": {"state": "succeeded", "elapsed": self.runs}}
        else:
            view = {"ansible_job_id": J1, "started": True, "finished": False, "detached": {"state": "running"}}
            if tail:
                view["tail"] = {"last_line": f"tick {int(self.clock[0] - self.start)}"}
        return {"changed": False, "errors": {}, "names": {}, "async_dir": "/h/.ansible_async", "jobs": {J1: view}}


def _waiter_on(monkeypatch: pytest.MonkeyPatch, runs: float, **kwargs: t.Any) -> tuple[t.Any, _FakeHost]:
    from ansible_collections.detached.jobs.plugins.plugin_utils import _waiter
    from ansible_collections.detached.jobs.plugins.plugin_utils._jobrefs import JobRef

    clock = [5000.0]
    monkeypatch.setattr(_waiter.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(_waiter.time, "time", lambda: 1.7e9 + clock[0])
    monkeypatch.setattr(_waiter.display, "display", lambda *a, **k: None)
    action = mock.MagicMock()
    action._task.check_mode = False
    waiter = _waiter.Waiter(action, {"inventory_hostname": "h1"}, [JobRef(J1, None, "/h/.ansible_async")], [], **kwargs)
    host = _FakeHost(clock, runs)
    monkeypatch.setattr(waiter, "_call", host.call)
    return waiter, host


def _gaps(times: list[float]) -> list[float]:
    return [round(b - a, 3) for a, b in zip(times, times[1:])]


def test_progress_comes_every_progress_interval_whatever_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    """progress_interval 5 over a 40 s job, poll 15 (the default): a line every 5 s (plus a round
    trip), not every 15 s; measured from the times the wait recorded."""
    waiter, host = _waiter_on(monkeypatch, runs=40, timeout=0, poll=15, progress_interval=5)
    result = waiter.run()
    assert not result["failed"], result["msg"]
    times = [p["at"] - 1.7e9 - host.start for p in result["progress"]]
    assert len(times) == 7, times  # at about 5, 10, ... 35 s
    assert 5 <= times[0] <= 5.2
    assert all(5 <= gap <= 5.2 for gap in _gaps(times)), _gaps(times)
    assert max(host.blocks) <= 5


def test_progress_on_a_job_shorter_than_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    """progress_interval 3 over a 12 s job with poll 15: lines at about 3, 6 and 9 s (none before)."""
    waiter, host = _waiter_on(monkeypatch, runs=12, timeout=0, poll=15, progress_interval=3)
    result = waiter.run()
    times = [p["at"] - 1.7e9 - host.start for p in result["progress"]]
    assert len(times) == 3, times
    assert all(3 <= gap <= 3.2 for gap in _gaps(times)), _gaps(times)
    assert [p["line"] for p in result["progress"]] == [f"tick {int(x)}" for x in times]


def test_progress_interval_longer_than_poll_leaves_poll_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    waiter, host = _waiter_on(monkeypatch, runs=20, timeout=0, poll=2, progress_interval=10)
    result = waiter.run()
    times = [p["at"] - 1.7e9 - host.start for p in result["progress"]]
    assert max(host.blocks) <= 2
    assert len(times) == 1 and 10 <= times[0] <= 12, times


def test_no_progress_keeps_rounds_of_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    waiter, host = _waiter_on(monkeypatch, runs=40, timeout=0, poll=15, progress_interval=0)
    result = waiter.run()
    assert result["progress"] == [] and host.blocks[:2] == [15, 15]
    assert len(host.blocks) == 3


# --- messages that name the real cause -------------------------------------------------
def _missing_waiter(started_in: str | None) -> t.Any:
    from ansible_collections.detached.jobs.plugins.module_utils import _ops
    from ansible_collections.detached.jobs.plugins.plugin_utils import _waiter
    from ansible_collections.detached.jobs.plugins.plugin_utils._jobrefs import JobRef

    action = mock.MagicMock()
    action._task.check_mode = False
    waiter = _waiter.Waiter(action, {"inventory_hostname": "h1"}, [JobRef(J1, None, started_in)], [], timeout=0)
    host_msg = _ops.missing_msg(J1, f"/home/u/.ansible_async/{J1}")
    answer = {"errors": {J1: host_msg}, "missing": [J1], "names": {}, "jobs": {}, "async_dir": "/home/u/.ansible_async"}
    waiter._call = mock.MagicMock(return_value=answer)  # type: ignore[method-assign]
    return waiter


@pytest.mark.parametrize(
    ("started_in", "reason", "unsaid"),
    [
        # Started in the directory the task looks in: removed (or never started), not become.
        ("/home/u/.ansible_async", "it was removed (async_status mode=cleanup, cleanup of wait or start, prune) or never started on this host", "become"),
        # Started in another directory: the become hint only.
        (
            "/root/.ansible_async",
            "it was started in job directory /root/.ansible_async but this task looks in /home/u/.ansible_async: "
            "use the same become and become_user as the task that started it",
            "removed",
        ),
    ],
    ids=["same-directory", "another-directory"],
)
def test_a_missing_job_is_explained_by_the_directory_it_was_started_in(started_in: str, reason: str, unsaid: str) -> None:
    result = _missing_waiter(started_in).run()
    msg = result["jobs"][0]["msg"]
    assert msg == f"could not find job: job {J1}: no status file /home/u/.ansible_async/{J1}: {reason}"
    assert unsaid not in msg and unsaid not in result["msg"]
    assert result["jobs"][0]["detached"]["state"] == "missing" and result["counts"] == {"missing": 1}


def test_a_missing_bare_job_id_keeps_the_hosts_message() -> None:
    from ansible_collections.detached.jobs.plugins.module_utils import _ops

    result = _missing_waiter(None).run()
    assert result["jobs"][0]["msg"] == _ops.missing_msg(J1, f"/home/u/.ansible_async/{J1}")
    assert "removed" in result["msg"] and "become" in result["msg"]


@pytest.mark.parametrize(("fail_fast", "why"), [(False, {"timeout": 7}), (True, {"fail_fast": True})])
def test_a_kill_by_the_wait_tells_the_host_why(monkeypatch: pytest.MonkeyPatch, fail_fast: bool, why: dict) -> None:
    """on_timeout=kill: the kill call carries the wait's on_timeout and why it came (its timeout
    passed, or it stopped early with fail_fast), for the jobs' records (see _ops.kill_reason)."""
    from ansible_collections.detached.jobs.plugins.plugin_utils import _waiter
    from ansible_collections.detached.jobs.plugins.plugin_utils._jobrefs import JobRef

    clock = [100.0]
    monkeypatch.setattr(_waiter.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(_waiter.display, "display", lambda *a, **k: None)
    action = mock.MagicMock()
    action._task.check_mode = False
    j2 = "j222222222222.100"
    waiter = _waiter.Waiter(action, {}, [JobRef(J1, None, None), JobRef(j2, None, None)], [], timeout=7, poll=1, fail_fast=fail_fast, on_timeout="kill")
    calls: list[dict] = []

    def call(mode: str, jids: list[str], block: float, names: list | None = None, deadline: float | None = None, tail: int = 0, **extra: object) -> dict:
        calls.append(dict(extra, mode=mode, jids=list(jids)))
        if mode == "kill":
            return {"jobs": {jid: {"ansible_job_id": jid, "finished": True, "failed": True, "detached": {"state": "killed"}} for jid in jids}}
        clock[0] += block
        views = {jid: {"ansible_job_id": jid, "finished": False, "detached": {"state": "running"}} for jid in jids}
        if fail_fast:
            views[j2] = {"ansible_job_id": j2, "finished": True, "failed": True, "detached": {"state": "failed"}}
        return {"jobs": views, "errors": {}, "names": {}}

    monkeypatch.setattr(waiter, "_call", call)
    result = waiter.run()
    kill = [c for c in calls if c["mode"] == "kill"]
    assert kill == [dict(why, on_timeout="kill", mode="kill", jids=[J1] if fail_fast else [J1, j2])]
    assert result["timed_out"] is not fail_fast
