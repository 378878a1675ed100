# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""Unit tests of _records: the running and final records, and the view of any status (ours, ansible-core's), through a real job directory."""

from __future__ import annotations

import typing as t

import pytest

from ansible_collections.detached.jobs.plugins.module_utils import _ids as ids
from ansible_collections.detached.jobs.plugins.module_utils import _jobstore as js
from ansible_collections.detached.jobs.plugins.module_utils import _records as rec

JID = "j123456789012.4242"


def _meta(**extra: t.Any) -> dict:
    return dict({"name": None, "module": None, "cmd": ["true"], "pid": 1, "pid_start": None, "boot_id": None}, **extra)


# --- records and states -----------------------------------------------------------
def test_running_and_final_records(store: js.JobStore) -> None:
    path = store.job_path(JID)
    running = rec.running_record(JID, path, _meta(name="web"))
    assert running["started"] is True and running["finished"] is False
    assert running["ansible_job_id"] == JID and running["results_file"] == path
    assert running["detached"]["state"] == ids.RUNNING and running["detached"]["version"] == rec.FORMAT_VERSION
    assert ids.state_of(running) == ids.RUNNING and not ids.is_finished(running)

    result = {"rc": 0, "stdout": "hi", "started": "bogus", "ansible_job_id": "bogus", "detached": "bogus"}
    done = rec.final_record(JID, path, result, _meta(), ids.SUCCEEDED)
    assert done["finished"] is True and done["started"] is True and done["ansible_job_id"] == JID
    assert "failed" not in done and done["stdout"] == "hi"
    assert ids.state_of(done) == ids.SUCCEEDED
    for state in (ids.FAILED, ids.TIMEOUT, ids.KILLED, ids.VANISHED):
        record = rec.final_record(JID, path, {"rc": 0}, _meta(), state)
        assert record["failed"] is True and ids.state_of(record) == state
    with pytest.raises(ValueError):
        rec.final_record(JID, path, {}, _meta(), ids.RUNNING)


@pytest.mark.parametrize(
    ("record", "finished", "state"),
    [
        # ansible-core's async_wrapper: the running record (booleans; older releases and the task result use ints)
        ({"started": True, "finished": False, "ansible_job_id": JID}, False, ids.RUNNING),
        ({"started": 1, "finished": 0, "ansible_job_id": JID}, False, ids.RUNNING),
        # its timeout record and its failure to run the module, verbatim
        ({"msg": "Timeout exceeded", "failed": True, "child_pid": 4242}, True, ids.TIMEOUT),
        ({"failed": True, "cmd": "/x/mod.py", "msg": "Traceback...", "data": "", "stderr": "", "ansible_job_id": JID}, True, ids.FAILED),
        ({"started": 1, "finished": 0, "ansible_job_id": JID, "results_file": "/x"}, False, ids.RUNNING),
        # the module's result as written when it finished (no 'started' at all)
        ({"changed": True, "rc": 0, "stdout": "x"}, True, ids.SUCCEEDED),
        ({"failed": True, "msg": "boom", "rc": 1}, True, ids.FAILED),
        # ansible-core's finished markers
        ({"started": 1, "finished": 1, "ansible_job_id": JID, "rc": 0}, True, ids.SUCCEEDED),
        ({"started": 1, "finished": 1, "failed": 1, "msg": "Timeout exceeded", "ansible_job_id": JID}, True, ids.TIMEOUT),
        ({"finished": 1, "failed": True, "msg": "Timeout exceeded (1s)"}, True, ids.TIMEOUT),
        ({"started": 1, "finished": 1, "failed": 1, "msg": "could not execute"}, True, ids.FAILED),
        # a damaged 'detached' object falls back to the builtin rules
        ({"started": True, "finished": False, "detached": {"state": "bogus"}}, False, ids.RUNNING),
        ({"started": True, "finished": True, "detached": "text"}, True, ids.SUCCEEDED),
    ],
)
def test_builtin_shaped_records(store: js.JobStore, record: dict, finished: bool, state: str) -> None:
    assert ids.is_finished(record) is finished
    assert ids.state_of(record) == state
    store.write(JID, record)
    out = rec.view(JID, store.job_path(JID), store.read(JID))
    assert out["finished"] is finished and out["started"] is True
    assert out["ansible_job_id"] == JID
    assert out["results_file"] == record.get("results_file", store.job_path(JID))
    if isinstance(record.get("detached"), dict):
        assert out["detached"] == record["detached"]
    else:
        assert out["detached"]["state"] == state
        assert out["detached"]["foreign"] is True
        assert out["detached"]["version"] is None
    for key, value in record.items():
        if key not in ("started", "finished", "detached"):
            assert out[key] == value


def test_view_of_our_records(store: js.JobStore) -> None:
    path = store.job_path(JID)
    running = rec.running_record(JID, path, _meta(name="web"))
    out = rec.view(JID, path, running)
    assert out == running
    assert out is not running
    done = rec.final_record(JID, path, {"rc": 2, "msg": "non-zero return code"}, _meta(), ids.FAILED)
    out = rec.view(JID, path, done)
    assert out["detached"]["state"] == ids.FAILED and out["finished"] is True and out["failed"] is True
    assert "foreign" not in out["detached"]
