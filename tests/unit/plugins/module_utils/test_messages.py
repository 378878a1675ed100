# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""The host side's messages name the real cause: a missing job (removed, never started here, or
another user's), and a kill at a wait's timeout (the record says so, not "on request")."""

from __future__ import annotations

import os
import time

import pytest

from ansible_collections.detached.jobs.plugins.module_utils import _control as ctl
from ansible_collections.detached.jobs.plugins.module_utils import _ids as ids
from ansible_collections.detached.jobs.plugins.module_utils import _jobstore as js
from ansible_collections.detached.jobs.plugins.module_utils import _launch
from ansible_collections.detached.jobs.plugins.module_utils import _ops as ops
from ansible_collections.detached.jobs.plugins.module_utils import _supervisor as sup

JID = "j123456789012.4242"


def _removed_or_never(msg: str) -> None:
    assert "async_status mode=cleanup" in msg and "prune" in msg and "never started on this host" in msg


# --- a missing job ----------------------------------------------------------------
def test_status_of_a_missing_job_names_removal_first_and_become_as_one_possibility(live_store: js.JobStore) -> None:
    res = ops.status({"jid": JID, "_async_dir": live_store.path})
    assert res["failed"] is True
    assert res["msg"] == ops.missing_msg(JID, live_store.job_path(JID))
    assert res["msg"].startswith(f"could not find job: job {JID}: no status file {live_store.job_path(JID)}: it was removed (")
    _removed_or_never(res["msg"])
    # A bare job id says nothing of where the job was started: another user stays one possibility.
    assert res["msg"].endswith(", or started as another user (then query it with the become and become_user of the task that started it)")


def test_a_cleaned_up_job_is_missing_and_said_to_be_removed(live_store: js.JobStore) -> None:
    (started,) = _launch.start(live_store, [ctl.JobSpec({"argv": ["true"]})])
    jid = started["ansible_job_id"]
    res = ops.wait({"_jids": [jid], "_async_dir": live_store.path, "_block": 10, "_until": "all"})
    assert res["jobs"][jid]["finished"]
    assert ops.wait({"_jids": [jid], "_mode": "cleanup", "_async_dir": live_store.path})["changed"] is True

    res = ops.wait({"_jids": [jid], "_async_dir": live_store.path, "_block": 0, "_until": "all"})
    assert res["missing"] == [jid]
    assert res["errors"][jid] == ops.missing_msg(jid, live_store.job_path(jid))
    _removed_or_never(res["errors"][jid])


def test_a_missing_name_says_removed_or_never_started(live_store: js.JobStore) -> None:
    res = ops.wait({"names": ["nobody"], "_async_dir": live_store.path})
    msg = res["errors"]["nobody"]
    assert msg.startswith(f"no job named 'nobody' in {live_store.path}: its job was removed (async_status mode=cleanup")
    assert "its job was never" not in msg
    assert "never started on this host" in msg and "become" in msg
    assert res["missing"] == []


def test_a_damaged_status_file_is_not_reported_missing(live_store: js.JobStore) -> None:
    with open(live_store.job_path(JID), "w") as f:
        f.write("{not json")
    res = ops.wait({"_jids": [JID], "_async_dir": live_store.path, "_block": 0})
    assert JID in res["errors"] and res["missing"] == []
    assert "could not find job" not in res["errors"][JID]


# --- why a wait killed ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"on_timeout": "kill", "timeout": 30}, "because the wait timed out after 30s (wait on_timeout: kill)"),
        (
            {"on_timeout": "kill", "timeout": 30, "fail_fast": True},
            "because another job did not succeed and the wait stopped early (wait fail_fast and on_timeout: kill)",
        ),
        # What the module's argument spec fills in when the wait gave nothing: no reason, "on request".
        ({"on_timeout": "fail", "timeout": 3600, "fail_fast": False}, None),
        ({}, None),
    ],
)
def test_kill_reason(params: dict, reason: str | None) -> None:
    assert ops.kill_reason(params) == reason


def test_a_wait_kill_at_its_timeout_is_recorded_as_such(live_store: js.JobStore) -> None:
    # grace 60: the kill gives the supervisor grace + 5 s to record the kill itself (else the kill
    # records it, "its supervisor did not handle it"); sleep ends at the SIGTERM, so it takes no longer
    # (a starved machine once took more than the 7 s of grace 2).
    (started,) = _launch.start(live_store, [ctl.JobSpec({"argv": ["sleep", "300"], "grace": 60})])
    jid = started["ansible_job_id"]
    res = ops.wait({"_jids": [jid], "_mode": "kill", "_async_dir": live_store.path, "on_timeout": "kill", "timeout": 7})
    assert res["changed"] is True and not res["errors"]
    want = "the job was killed because the wait timed out after 7s (wait on_timeout: kill)"
    assert res["jobs"][jid]["msg"] == want
    record = live_store.read(jid)
    assert record["msg"] == want and record["detached"]["state"] == ids.KILLED
    # The reason's file is gone with the kill: the job's files are its status file only.
    assert os.listdir(live_store.path) == [jid]


def test_a_kill_without_a_reason_stays_on_request(live_store: js.JobStore) -> None:
    (started,) = _launch.start(live_store, [ctl.JobSpec({"argv": ["sleep", "300"], "grace": 2})])
    jid = started["ansible_job_id"]
    job, changed = ctl.kill(live_store, jid, wait=60)
    assert changed and job["msg"] == "the job was killed on request"


def test_a_queued_job_killed_at_a_wait_timeout_says_so(live_store: js.JobStore) -> None:
    first, second = _launch.start(
        live_store,
        [ctl.JobSpec({"argv": ["sleep", "300"], "slot": "one", "grace": 2}), ctl.JobSpec({"argv": ["sleep", "300"], "slot": "one", "grace": 2})],
    )
    jid = second["ansible_job_id"]
    assert ctl.status(live_store, jid)["detached"]["state"] == ids.QUEUED
    job, changed = ctl.kill(live_store, jid, wait=60, reason="because the wait timed out after 3s (wait on_timeout: kill)")
    assert changed
    assert job["msg"] == "the job was killed because the wait timed out after 3s (wait on_timeout: kill) while queued for slot 'one'; it never ran"
    ctl.kill(live_store, first["ansible_job_id"], wait=60)


def test_the_fallback_record_carries_the_reason_too(live_store: js.JobStore) -> None:
    """A job whose supervisor is gone is killed here, and its record written here, with the reason."""
    (started,) = _launch.start(live_store, [ctl.JobSpec({"argv": ["sleep", "300"], "grace": 1})])
    jid = started["ansible_job_id"]
    meta = live_store.read(jid)["detached"]
    os.kill(meta["pid"], 9)
    deadline = time.monotonic() + 10
    while ctl.status(live_store, jid, persist=False)["detached"]["state"] != ids.VANISHED:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    job, changed = ctl.kill(live_store, jid, reason="because the wait timed out after 5s (wait on_timeout: kill)")
    assert changed
    assert job["msg"] == "the job was killed because the wait timed out after 5s (wait on_timeout: kill) (its supervisor did not handle it)"
    assert not os.path.exists(live_store.extra_path(jid, "kill"))


def test_a_reason_is_read_as_one_short_line(live_store: js.JobStore) -> None:
    path = live_store.extra_path(JID, "kill")
    live_store.create_private(path, b"because\n  of this " + b"x" * 2000)
    why = live_store.kill_reason(JID)
    assert why is not None and why.startswith("because of this x") and "\n" not in why and len(why) <= 512
    os.unlink(path)
    assert sup.killed_how(live_store, JID) == "on request"
