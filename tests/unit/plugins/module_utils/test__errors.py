# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""Errors with a reason (issue 26): the error classes live in _ids, each with a reason; one function
turns an escaped error into a failed result; per-job errors carry their reason; and the callers
decide by the reason, never by a message's words."""

from __future__ import annotations

import ast
import os
import typing as t
from pathlib import Path
from unittest import mock

import pytest

from ansible_collections.detached.jobs.plugins.module_utils import _control as ctl
from ansible_collections.detached.jobs.plugins.module_utils import _ids as ids
from ansible_collections.detached.jobs.plugins.module_utils import _jobstore as js
from ansible_collections.detached.jobs.plugins.module_utils import _keyword as kw
from ansible_collections.detached.jobs.plugins.module_utils import _ops as ops
from ansible_collections.detached.jobs.plugins.module_utils import _query as q
from ansible_collections.detached.jobs.plugins.module_utils import _records as rec

ROOT = Path(__file__).resolve().parents[4]
JID = "j123456789012.4242"


@pytest.fixture
def store(tmp_path: t.Any) -> js.JobStore:
    return js.JobStore(str(tmp_path / "jobs"))


# --- the classes and their reasons ---------------------------------------------------------
@pytest.mark.parametrize(
    ("cls", "reason"),
    [
        (ids.Error, ids.ERROR),
        (ids.JobError, ids.ERROR),
        (ids.InvalidJobId, ids.INVALID),
        (ids.InvalidName, ids.INVALID),
        (ids.JobNotFound, ids.NOT_FOUND),
        (ids.CorruptJob, ids.CORRUPT),
        (ids.UnsafePath, ids.UNSAFE),
        (ids.NotKillable, ids.NOT_KILLABLE),
        (ids.LaunchError, ids.LAUNCH),
        (ids.SpawnError, ids.SPAWN),
        (ids.QueryError, ids.INVALID),
        (ids.KeywordError, ids.INVALID),
    ],
)
def test_each_error_kind_has_its_reason(cls: type[ids.Error], reason: str) -> None:
    assert cls.reason == reason and reason in ids.REASONS
    ex = cls("what went wrong")
    assert ex.reason == reason and str(ex) == "what went wrong"
    assert ids.failure(ex) == {"failed": True, "msg": "what went wrong", "reason": reason}


def test_an_instance_may_say_another_reason() -> None:
    ex = ids.JobError("job x is still running", ids.STILL_RUNNING)
    assert ex.reason == ids.STILL_RUNNING and ids.JobError.reason == ids.ERROR


def test_the_errors_keep_their_families() -> None:
    # What callers catch stays true: an unsafe path is a corrupt job, a launch error a job error, a filter error a ValueError.
    assert issubclass(ids.UnsafePath, ids.CorruptJob) and issubclass(ids.LaunchError, ids.JobError)
    assert issubclass(ids.QueryError, ValueError) and not issubclass(ids.SpawnError, ids.JobError)


def test_the_reason_of_other_exceptions() -> None:
    assert ids.reason_of(OSError(28, "No space left on device")) == ids.IO
    assert ids.reason_of(ValueError("x")) == ids.ERROR
    assert ids.failure(PermissionError(13, "Permission denied"), jobs=[])["reason"] == ids.IO


def test_failure_keeps_the_extra_keys_and_the_message_as_it_is() -> None:
    res = ids.failure(ids.JobNotFound("could not find job: j1.1"), ansible_job_id="j1.1", started=True, failed=False, msg="old")
    assert res == {"ansible_job_id": "j1.1", "started": True, "failed": True, "msg": "could not find job: j1.1", "reason": ids.NOT_FOUND}


def test_every_exception_class_of_the_host_code_is_in_ids() -> None:
    """The error classes are in one file: _ids. (_supervisor._Stop is a BaseException that stops the
    supervisor's loop on a signal, no error.)"""
    found = []
    for path in sorted((ROOT / "plugins" / "module_utils").glob("_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(
                isinstance(b, (ast.Name, ast.Attribute)) and (ast.unparse(b).endswith(("Error", "Exception")) or ast.unparse(b) == "JobError")
                for b in node.bases
            ):
                found.append((path.stem, node.name))
    assert found and {module for module, name in found if (module, name) != ("_supervisor", "_Stop")} == {"_ids"}, found


# --- the one place an escaped error becomes a failed result -------------------------------
def test_an_error_escaping_an_operation_becomes_its_failed_result(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(params: dict, check_mode: bool = False) -> dict:
        raise ids.CorruptJob("job j1.1: its status file is not JSON")

    monkeypatch.setitem(ops.OPERATIONS, "status", boom)
    assert ops.run("status", {}) == {"failed": True, "msg": "job j1.1: its status file is not JSON", "reason": ids.CORRUPT}
    assert ops.run("nothing", {}) == {"failed": True, "msg": "unknown operation 'nothing'", "reason": ids.INVALID}


def test_failed_results_of_the_operations_carry_their_reason(store: js.JobStore) -> None:
    assert ops.status({"jid": JID, "_async_dir": store.path})["reason"] == ids.NOT_FOUND
    assert ops.status({"jid": "not a jid", "_async_dir": store.path})["reason"] == ids.INVALID
    with open(store.job_path(JID), "w") as f:
        f.write("{not json")
    assert ops.status({"jid": JID, "_async_dir": store.path})["reason"] == ids.CORRUPT
    assert ops.run("prune", {"older_than": "soon", "_async_dir": store.path})["reason"] == ids.INVALID


def test_per_job_errors_of_wait_have_their_reasons_beside_them(store: js.JobStore) -> None:
    with open(store.job_path(JID), "w") as f:
        f.write("{not json")
    missing = "j999999999999.1"
    res = ops.wait({"_jids": [JID, missing, "bad id"], "names": ["nobody", "bad name!"], "_async_dir": store.path, "_block": 0})
    assert set(res["errors"]) == set(res["reasons"]) == {JID, missing, "bad id", "nobody", "bad name!"}
    assert res["reasons"] == {JID: ids.CORRUPT, missing: ids.NOT_FOUND, "bad id": ids.INVALID, "nobody": ids.NOT_FOUND, "bad name!": ids.INVALID}
    assert res["missing"] == [missing]


def test_job_info_errors_have_their_reasons_beside_them(store: js.JobStore) -> None:
    other = "j999999999999.1"
    with open(store.job_path(JID), "w") as f:
        f.write("{not json")
    os.symlink("/etc/passwd", store.job_path(other))
    jobs = {job["ansible_job_id"]: job for job in q.job_info({"_async_dir": store.path})["jobs"]}
    assert jobs[JID]["state"] == "corrupt" and "not valid JSON" in jobs[JID]["error"] and jobs[JID]["reason"] == ids.CORRUPT
    assert jobs[other]["state"] == "corrupt" and "symlink" in jobs[other]["error"] and jobs[other]["reason"] == ids.UNSAFE


def test_tail_errors_of_job_info_and_wait_have_their_reasons_beside_them(store: js.JobStore, monkeypatch: pytest.MonkeyPatch) -> None:
    meta = {"name": None, "module": None, "cmd": ["sleep", "60"], "pid": 1, "pid_start": None, "boot_id": None}
    store.write(JID, rec.running_record(JID, store.job_path(JID), meta))

    def unreadable(*args: t.Any, **kwargs: t.Any) -> dict:
        raise ids.UnsafePath(f"job {JID}: its stdout is a symlink")

    # Running as read (no liveness check), its output unreadable.
    monkeypatch.setattr(ctl, "status", lambda store, jid, persist=True: rec.view(jid, store.job_path(jid), store.read(jid)))
    monkeypatch.setattr(ctl, "tail", unreadable)
    want = {"error": f"job {JID}: its stdout is a symlink", "reason": ids.UNSAFE}
    [job] = q.job_info({"_async_dir": store.path, "tail": 3})["jobs"]
    assert job["state"] == ids.RUNNING and job["tail"] == want
    answer = ops.wait({"_jids": [JID], "_async_dir": store.path, "_block": 0, "_tail": 1})
    assert answer["jobs"][JID]["finished"] is False and answer["jobs"][JID]["tail"] == want


# --- callers decide by the reason, not by the words -----------------------------------------
class _Failed(Exception):
    pass


def _status_main(monkeypatch: pytest.MonkeyPatch, answer: dict) -> dict:
    monkeypatch.setattr(ops, "status", lambda params, check_mode=False: dict(answer))
    module = mock.MagicMock(params={"jid": JID}, check_mode=False)
    module.fail_json.side_effect = _Failed
    with pytest.raises(_Failed):
        kw.status_main(lambda **kwargs: module)
    return module.fail_json.call_args.kwargs


def test_keyword_status_says_ansible_cores_words_for_a_job_not_found_however_worded(monkeypatch: pytest.MonkeyPatch) -> None:
    res = _status_main(monkeypatch, {"failed": True, "msg": "no such job here (worded otherwise)", "reason": ids.NOT_FOUND})
    assert res["msg"] == kw.NOT_FOUND and res["detail"] == "no such job here (worded otherwise)"


def test_keyword_status_keeps_the_message_of_other_failures_whatever_their_words(monkeypatch: pytest.MonkeyPatch) -> None:
    res = _status_main(monkeypatch, {"failed": True, "msg": "could not find job: its file is not JSON", "reason": ids.CORRUPT})
    assert res["msg"] == "could not find job: its file is not JSON" and "detail" not in res


def _name_waiter(msg: str, reason: str) -> t.Any:
    from ansible_collections.detached.jobs.plugins.plugin_utils import _waiter
    from ansible_collections.detached.jobs.plugins.plugin_utils._jobrefs import JobRef

    action = mock.MagicMock()
    action._task.check_mode = False
    # A reference that says where jobs were started (as a registered result does), not where this task looks.
    waiter = _waiter.Waiter(action, {"inventory_hostname": "h1"}, [JobRef(None, None, "/root/.ansible_async")], ["web"], timeout=0)
    answer = {"errors": {"web": msg}, "reasons": {"web": reason}, "missing": [], "names": {"web": None}, "jobs": {}, "async_dir": "/home/u/.ansible_async"}
    waiter._call = mock.MagicMock(return_value=answer)  # type: ignore[method-assign]
    return waiter


def test_wait_gives_a_name_not_found_the_directory_hint_however_worded() -> None:
    result = _name_waiter("the name index has no entry web", ids.NOT_FOUND).run()
    (job,) = result["jobs"]
    assert job["reason"] == ids.NOT_FOUND and job["detached"]["state"] == "missing"
    assert job["msg"].startswith("the name index has no entry web (it was started with job directory /root/.ansible_async")


def test_wait_gives_no_directory_hint_to_other_errors_whatever_their_words() -> None:
    result = _name_waiter("could not find the name index: no job named web, it is damaged", ids.CORRUPT).run()
    (job,) = result["jobs"]
    assert job["reason"] == ids.CORRUPT and job["msg"] == "could not find the name index: no job named web, it is damaged"


def test_wait_reports_a_missing_jobs_reason() -> None:
    from ansible_collections.detached.jobs.plugins.plugin_utils import _waiter
    from ansible_collections.detached.jobs.plugins.plugin_utils._jobrefs import JobRef

    action = mock.MagicMock()
    action._task.check_mode = False
    waiter = _waiter.Waiter(action, {"inventory_hostname": "h1"}, [JobRef(JID)], [], timeout=0)
    answer = {"errors": {JID: "gone"}, "reasons": {JID: ids.NOT_FOUND}, "missing": [JID], "names": {}, "jobs": {}, "async_dir": "/x"}
    waiter._call = mock.MagicMock(return_value=answer)  # type: ignore[method-assign]
    assert waiter.run()["jobs"][0]["reason"] == ids.NOT_FOUND


def test_a_job_that_could_not_start_says_why(store: js.JobStore) -> None:
    from ansible_collections.detached.jobs.plugins.module_utils import _control as ctl
    from ansible_collections.detached.jobs.plugins.module_utils import _launch
    from ansible_collections.detached.jobs.tests.unit.plugins.module_utils._jobs import kill_leftovers

    try:
        (first,) = _launch.start(store, [ctl.JobSpec({"argv": ["sleep", "30"], "name": "once"})])
        assert not first.get("failed")
        (second,) = _launch.start(store, [ctl.JobSpec({"argv": ["sleep", "30"], "name": "once", "if_running": "fail"})])
        assert second["failed"] and second["reason"] == ids.STILL_RUNNING and "already running" in second["msg"]
        res = ops.start({"jobs": [{"argv": ["true"], "timeout": -5}], "async_dir": store.path})
        assert res["failed"] and res["reason"] == ids.LAUNCH
    finally:
        kill_leftovers(store)
