# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""Bounded limits (issue 25, items 4 and 7): every number option is checked before anything starts,
by the start action and again on the host (_control.JobSpec); a supervisor that cannot arm its limit
stops its job and says why; keyword mode takes async <= 0 as ansible-core does (no limit)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
import typing as t
from pathlib import Path
from unittest import mock

import pytest
from ansible.errors import AnsibleActionFail

from ansible_collections.detached.jobs.plugins.action import start as start_action
from ansible_collections.detached.jobs.plugins.module_utils import _control as ctl
from ansible_collections.detached.jobs.plugins.module_utils import _ids as ids
from ansible_collections.detached.jobs.plugins.module_utils import _jobstore as js
from ansible_collections.detached.jobs.plugins.module_utils import _keyword as kw
from ansible_collections.detached.jobs.plugins.module_utils import _launch
from ansible_collections.detached.jobs.plugins.module_utils import _options as opts
from ansible_collections.detached.jobs.plugins.module_utils import _process as proc
from ansible_collections.detached.jobs.plugins.module_utils import _supervisor as sup
from ansible_collections.detached.jobs.tests.unit.plugins.module_utils._jobs import kill_leftovers, status_jids, wait_done

JID = "j123456789012.4242"
ROOT = Path(__file__).resolve().parents[4]
TEN_YEARS = "at most 315360000 seconds (10 years)"
# What each option needs beside it to be taken at all (retry options need retries, slot options a slot).
NEEDS: dict[str, dict] = {
    "retry_delay": {"retries": 1},
    "backoff": {"retries": 1},
    "retry_max_delay": {"retries": 1},
    "total_timeout": {"retries": 1},
    "slot_limit": {"slot": "s1"},
    "queue_timeout": {"slot": "s1"},
}

# (option, value as the task gives it, the words of the refusal after "<where>: ")
BAD = [
    ("timeout", 99999999999999999999, f"invalid timeout 99999999999999999999: {TEN_YEARS}; 0 means no limit"),
    ("timeout", 1e20, f"invalid timeout 1e+20: {TEN_YEARS}; 0 means no limit"),
    ("timeout", "1.5e30", f"invalid timeout 1.5e30: {TEN_YEARS}; 0 means no limit"),
    ("timeout", True, "invalid timeout True: a number of seconds, not a boolean"),
    ("timeout", -1, "timeout must be 0 or more, got -1; 0 means no limit"),
    ("grace", 315360001, f"invalid grace 315360001: {TEN_YEARS}"),
    ("retry_delay", float("inf"), "invalid retry_delay inf: a finite number of seconds"),
    ("retry_delay", float("nan"), "invalid retry_delay nan: a finite number of seconds"),
    ("retry_delay", True, "invalid retry_delay True: a number of seconds, not a boolean"),
    ("retry_max_delay", 1e20, f"invalid retry_max_delay 1e+20: {TEN_YEARS}; 0 means no maximum"),
    ("total_timeout", 10**20, f"invalid total_timeout 100000000000000000000: {TEN_YEARS}; 0 means no limit"),
    ("queue_timeout", 10**10, f"invalid queue_timeout 10000000000: {TEN_YEARS}; 0 means no limit"),
    ("backoff", 1e6, "invalid backoff 1000000.0: at most 1000"),
    ("backoff", float("inf"), "invalid backoff inf: a finite number"),
    ("backoff", 0.5, "backoff must be 1 or more, got 0.5"),
    ("retries", 10**6, "invalid retries 1000000: at most 1000"),
    ("retries", True, "invalid retries True: a number, not a boolean"),
    ("slot_limit", 10**6, "invalid slot_limit 1000000: at most 1000"),
    ("slot_limit", 0, "slot_limit must be 1 or more, got 0"),
    ("output_limit", 0, "output_limit must be 1 or more, got 0; leave it out for the default (16 MiB)"),
    ("output_limit", 2**40, "invalid output_limit 1099511627776: at most 1073741824 bytes (1 GiB); leave it out for the default (16 MiB)"),
]


def _action(**args: t.Any) -> start_action.ActionModule:
    task = mock.MagicMock(args=args, async_val=0, check_mode=False, diff=False)
    return start_action.ActionModule(task, mock.MagicMock(), mock.MagicMock(), loader=None, templar=None, shared_loader_obj=None)


def _run(**args: t.Any) -> tuple[dict, mock.MagicMock]:
    """Run the start action with the host call replaced; the result and the replaced call."""
    answer = {"jobs": [{"ansible_job_id": "j1.1", "changed": True}]}
    with mock.patch.object(start_action, "run_host", return_value=answer) as run_host, mock.patch.object(start_action, "async_dir", return_value="/x"):
        return _action(**args).run(task_vars={}), run_host


def _refused(words: str, **args: t.Any) -> None:
    with mock.patch.object(start_action, "run_host") as run_host, mock.patch.object(start_action, "async_dir", return_value="/x"):
        with pytest.raises(AnsibleActionFail) as caught:
            _action(**args).run(task_vars={})
    assert words in str(caught.value), caught.value
    run_host.assert_not_called()


@pytest.fixture
def store(tmp_path: Path) -> t.Iterator[js.JobStore]:
    s = js.JobStore(str(tmp_path / "jobs"), create=True)
    yield s
    kill_leftovers(s)


# --- the start action -------------------------------------------------------------------
@pytest.mark.parametrize(("key", "value", "words"), BAD)
def test_start_refuses_a_bad_number_before_anything_is_sent(key: str, value: t.Any, words: str) -> None:
    _refused(f"the task: {words}", cmd="true", **dict(NEEDS.get(key, {}), **{key: value}))


@pytest.mark.parametrize(("key", "value", "words"), BAD[:4] + BAD[6:9])
def test_start_refuses_a_bad_number_of_a_batch_job(key: str, value: t.Any, words: str) -> None:
    _refused(f"jobs[1]: {words}", jobs=[{"cmd": "true"}, dict({"cmd": "true", key: value}, **NEEDS.get(key, {}))])
    # Given at the top level, it is every job's default: the first job is refused.
    _refused(f"jobs[0]: {words}", jobs=[dict({"cmd": "true"}, **NEEDS.get(key, {}))], **{key: value})


@pytest.mark.parametrize(
    ("value", "words"), [(10**10, f"invalid poll 10000000000: {TEN_YEARS}"), (True, "invalid poll True"), (-1, "poll must be 0 or more, got -1")]
)
def test_start_refuses_a_bad_poll(value: t.Any, words: str) -> None:
    _refused(f"the task: {words}", cmd="true", poll=value)


def test_start_refuses_an_empty_jobs_list() -> None:
    _refused("jobs is empty: give at least one job", jobs=[])


def test_start_takes_every_limit_at_its_bound() -> None:
    top = ids.MAX_SECONDS
    result, run_host = _run(
        cmd="true",
        timeout=top,
        grace=top,
        output_limit=ids.MAX_OUTPUT_LIMIT,
        retries=ids.MAX_COUNT,
        retry_delay=top,
        backoff=ids.MAX_COUNT,
        retry_max_delay=top,
        total_timeout=top,
        slot="s1",
        slot_limit=ids.MAX_COUNT,
        queue_timeout=top,
    )
    assert not result.get("failed"), result
    (spec,) = run_host.call_args.args[2]["jobs"]
    assert (spec["timeout"], spec["retries"], spec["backoff"], spec["output_limit"]) == (top, ids.MAX_COUNT, ids.MAX_COUNT, ids.MAX_OUTPUT_LIMIT)
    ctl.JobSpec(spec)  # and the host takes what the action sends


def test_the_longest_a_job_can_take_never_overflows() -> None:
    """poll's own deadline adds up every retry delay: at the bounds, a finite number (the delays grew past any float once)."""
    spec = {"timeout": 1, "grace": 0, "retries": ids.MAX_COUNT, "retry_delay": 5.0, "backoff": float(ids.MAX_COUNT), "retry_max_delay": 0}
    longest = start_action._longest(spec)
    assert longest <= (ids.MAX_COUNT + 1) + ids.MAX_COUNT * ids.MAX_SECONDS
    assert start_action._longest(dict(spec, retries=2, backoff=2.0)) == 3 + 5 + 10


# --- the host: _control.JobSpec --------------------------------------------------------------
@pytest.mark.parametrize(("key", "value", "words"), [b for b in BAD if not isinstance(b[1], str)])
def test_jobspec_refuses_a_bad_number(key: str, value: t.Any, words: str) -> None:
    with pytest.raises(ids.JobError) as caught:
        ctl.JobSpec({"argv": ["true"], key: value})
    msg = str(caught.value)
    assert msg.startswith(f"job true: invalid {key} {value!r}: "), msg
    if words.startswith("invalid "):
        assert msg == f"job true: {words}"  # the action's words, on the host too


def test_jobspec_takes_the_bounds_and_leaves_output_limit_to_the_default() -> None:
    top = {key: most for key, (unit, least, most, note) in opts.LIMITS.items() if key != "poll"}
    spec = ctl.JobSpec(dict(top, argv=["true"], slot="s1"))
    assert spec.timeout == ids.MAX_SECONDS and spec.slot_limit == ids.MAX_COUNT
    assert ctl.JobSpec({"argv": ["true"]}).output_limit is None
    assert ctl.JobSpec({"argv": ["true"], "timeout": None, "grace": None}).grace == 5


# --- the supervisor: a limit it cannot arm ---------------------------------------------------
def _gone(view: dict) -> None:
    meta = view["detached"]
    assert not proc.is_alive(meta["child_pid"], meta["child_start"]), "the job's process runs on unsupervised"


def test_a_limit_the_supervisor_cannot_arm_stops_the_job(store: js.JobStore) -> None:
    """setitimer raises OverflowError for 1e30 s (a value JobSpec refuses; here it is slipped past it):
    the launch still succeeds, with its name recorded, and the job is stopped at once, failed, saying why."""
    spec = ctl.JobSpec({"argv": ["sleep", "60"], "name": "unarmed", "grace": 1})
    spec.timeout = 1e30
    (started,) = _launch.start(store, [spec])
    assert not started.get("failed"), started
    assert store.name_get("unarmed") == started["ansible_job_id"]
    view = wait_done(store, started["ansible_job_id"])
    assert view["detached"]["state"] == ids.FAILED and view["failed"] is True
    assert view["msg"].startswith("the supervisor could not arm the job's time limit (timeout 1e+30s: OverflowError: "), view["msg"]
    assert "it was stopped (SIGTERM, then SIGKILL after 1s) rather than left running without a limit" in view["msg"]
    _gone(view)


def test_a_total_timeout_the_supervisor_cannot_arm_is_not_retried(store: js.JobStore) -> None:
    spec = ctl.JobSpec({"argv": ["sleep", "60"], "retries": 3, "retry_delay": 0, "timeout": 0})
    spec.total_timeout = 1e30
    (started,) = _launch.start(store, [spec])
    view = wait_done(store, started["ansible_job_id"])
    assert view["detached"]["state"] == ids.FAILED
    assert "could not arm the job's time limit (total_timeout 1e+30s: OverflowError" in view["msg"]
    assert len(view["detached"]["attempts"]) == 1
    _gone(view)


SUPERVISE_WITH_A_BROKEN_TIMER = """
    import signal, sys
    sys.path.insert(0, {coll!r})
    real = signal.setitimer

    def setitimer(which, seconds, *rest):
        if seconds:
            raise signal.ItimerError(22, "Invalid argument")
        return real(which, seconds, *rest)

    signal.setitimer = setitimer
    from ansible_collections.detached.jobs.plugins.module_utils import _supervisor
    _supervisor.main()
"""


def test_any_error_of_setitimer_stops_the_job(store: js.JobStore) -> None:
    """Not only OverflowError: whatever setitimer raises, the job does not run on without its limit."""
    coll = ROOT / ".build" / "unit-collections"
    assert coll.is_dir()  # made by conftest.py
    code = textwrap.dedent(SUPERVISE_WITH_A_BROKEN_TIMER).format(coll=str(coll))
    spec = {"async_dir": store.path, "jid": JID, "mode": "command", "argv": ["sleep", "60"], "cmd": ["sleep", "60"], "timeout": 30, "grace": 1}
    res = subprocess.run([sys.executable, "-c", code], input=json.dumps(spec).encode(), capture_output=True, timeout=60, check=False)
    assert json.loads(res.stdout.decode().splitlines()[0]) == {"ok": True, "jid": JID}, res
    view = wait_done(store, JID)
    assert view["detached"]["state"] == ids.FAILED
    assert "could not arm the job's time limit (timeout 30s: itimer_error: [Errno 22] Invalid argument)" in view["msg"], view["msg"]
    _gone(view)


def test_a_retry_delay_past_any_bound_is_recorded_finite(store: js.JobStore) -> None:
    """delay * backoff ** n overflows a float (inf, which JSON writes as Infinity): the wait is at most MAX_SECONDS."""
    s = sup.Supervisor({"async_dir": store.path, "jid": JID, "mode": "command", "argv": ["x"], "retries": 1000, "retry_delay": 5, "backoff": 1000})
    s.attempts = [{}] * 200
    wait = s._retry_wait(ids.FAILED)
    assert wait == ids.MAX_SECONDS
    json.dumps({"retry_at": time.time() + wait}, allow_nan=False)


# --- keyword mode: the async value ---------------------------------------------------------
MODULE = "#!{python}\nimport json, time\ntime.sleep(1.5)\nprint(json.dumps({{'changed': True, 'slept': 1.5}}))\n"


@pytest.fixture
def task_tmp(tmp_path: Path) -> Path:
    d = tmp_path / "ansible-tmp-1"
    d.mkdir()
    (d / "AnsiballZ_nap.py").write_text(MODULE.format(python=sys.executable))
    return d


@pytest.mark.parametrize("limit", [-1, -100, 0])
def test_keyword_async_zero_or_less_means_no_limit(limit: int, task_tmp: Path) -> None:
    assert kw.builtin_deadline(limit) == 0
    spec = kw.Invocation([f"j{-limit}", str(limit), str(task_tmp / "AnsiballZ_nap.py"), "_"]).job_spec()
    assert spec.timeout == 0


def test_keyword_async_minus_one_runs_the_job_to_its_end(task_tmp: Path, store: js.JobStore) -> None:
    """ansible-core 2.18 on: async -1 is wrapped but never polled, and its watcher dies; the module runs to its end."""
    answer = kw.launch(["j9", "-1", str(task_tmp / "AnsiballZ_nap.py"), "_"], {"ANSIBLE_ASYNC_DIR": store.path})
    view = wait_done(store, answer["ansible_job_id"])
    assert view["detached"]["state"] == ids.SUCCEEDED and view["slept"] == 1.5, view
    assert view["detached"]["timeout"] == 0 and view["detached"]["deadline"] is None


@pytest.mark.parametrize("limit", [str(ids.MAX_SECONDS + 1), "99999999999999999999"])
def test_keyword_async_above_the_bound_is_refused_before_anything_starts(limit: str, task_tmp: Path, store: js.JobStore) -> None:
    with pytest.raises(ids.KeywordError, match=f"invalid async {limit}: at most 315360000 seconds \\(10 years\\)"):
        kw.launch(["j10", limit, str(task_tmp / "AnsiballZ_nap.py"), "_"], {"ANSIBLE_ASYNC_DIR": store.path})
    assert status_jids(store) == []
    assert not task_tmp.exists(), "no job will remove the task's tmp dir: the wrapper does"


def test_keyword_async_at_the_bound_is_taken(task_tmp: Path) -> None:
    spec = kw.Invocation(["j11", str(ids.MAX_SECONDS), str(task_tmp / "AnsiballZ_nap.py"), "_"]).job_spec()
    assert spec.timeout == ids.MAX_SECONDS


def test_the_bounds_arm_setitimer() -> None:
    """The bound itself is one setitimer takes (and what it was chosen for)."""
    old = signal.setitimer(signal.ITIMER_REAL, ids.MAX_SECONDS)
    try:
        assert signal.getitimer(signal.ITIMER_REAL)[0] > ids.MAX_SECONDS - 60
    finally:
        signal.setitimer(signal.ITIMER_REAL, *old)
