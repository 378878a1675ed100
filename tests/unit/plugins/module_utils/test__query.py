# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""Unit tests of _query: ages, job summaries and filters, job_info and prune on a real job directory."""

from __future__ import annotations

import json
import os
import subprocess
import time
import typing as t

import pytest

from ansible_collections.detached.jobs.plugins.module_utils import _ids
from ansible_collections.detached.jobs.plugins.module_utils import _jobstore as js
from ansible_collections.detached.jobs.plugins.module_utils import _process as proc
from ansible_collections.detached.jobs.plugins.module_utils import _query as q
from ansible_collections.detached.jobs.plugins.module_utils import _records as rec

DAY = 86400.0


# --- ages ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("30s", 30),
        ("15m", 900),
        ("2h", 7200),
        ("7d", 7 * DAY),
        ("90", 90),
        (" 2h ", 7200),
        ("2H", 7200),
        ("1.5h", 5400),
        (".5m", 30),
        ("0", 0),
        ("0s", 0),
        (0, 0),
        (90, 90),
        (1.5, 1.5),
        ("10 m", 600),
    ],
)
def test_parse_age(value: object, seconds: float) -> None:
    assert q.parse_age(value, "older_than") == seconds


@pytest.mark.parametrize(
    "value",
    ["", "  ", "abc", "10x", "-5", -5, -0.5, "1h30m", "s", "5 hours", "1e3", "nan", "inf", None, True, False, [], {}, float("nan"), float("inf")],
)
def test_parse_age_rejects(value: object) -> None:
    with pytest.raises(_ids.QueryError) as err:
        q.parse_age(value, "older_than")
    msg = str(err.value)
    assert "older_than" in msg
    assert repr(value) in msg
    assert "30s, 15m, 2h, 7d" in msg


# --- a real job directory -----------------------------------------------------
@pytest.fixture
def sleeper() -> t.Iterator[subprocess.Popen]:
    p = subprocess.Popen(["sleep", "60"])
    yield p
    p.kill()
    p.wait()


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def _meta(name: str | None = None, pid: int | None = None, started_at: float | None = None, ended_at: float | None = None, **extra: t.Any) -> dict:
    now = time.time()
    meta = {
        "name": name,
        "module": None,
        "cmd": ["sleep", "1"],
        "pid": pid if pid is not None else _dead_pid(),
        "pid_start": None,
        "boot_id": proc.boot_id(),
        "child_pid": None,
        "child_start": None,
        "started_at": started_at if started_at is not None else now,
        "ended_at": ended_at,
        "timeout": 0,
        "deadline": None,
        "grace": 5,
    }
    if pid is not None:
        meta["pid_start"] = proc.start_time(pid)
    meta.update(extra)
    return meta


def finished(store: js.JobStore, jid: str, state: str = _ids.SUCCEEDED, name: str | None = None, age: float = 0.0, rc: int = 0) -> str:
    ended = time.time() - age
    meta = _meta(name, started_at=ended - 1, ended_at=ended, elapsed=1.0, rc=rc)
    store.write(jid, rec.final_record(jid, store.job_path(jid), {"rc": rc, "stdout": f"out of {jid}", "msg": f"{state} {jid}"}, meta, state))
    if name:
        store.name_set(name, jid)
    return jid


def running(store: js.JobStore, jid: str, pid: int | None, name: str | None = None, child: int | None = None, age: float = 0.0) -> str:
    meta = _meta(name, pid=pid, started_at=time.time() - age)
    if pid is None:
        meta["pid"] = _dead_pid()
    if child is not None:
        meta.update(child_pid=child, child_start=proc.start_time(child))
    store.write(jid, rec.running_record(jid, store.job_path(jid), meta))
    if name:
        store.name_set(name, jid)
    return jid


def keyword(store: js.JobStore, jid: str, record: dict, age: float = 0.0) -> str:
    path = store.job_path(jid)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(record, f)
    set_age(path, age)
    return jid


def set_age(path: str, age: float) -> None:
    then = time.time() - age
    os.utime(path, (then, then), follow_symlinks=False)


def info(store: js.JobStore, check_mode: bool = False, **params: t.Any) -> dict:
    result = q.job_info(dict(params, _async_dir=store.path), check_mode)
    assert not result.get("failed"), result
    return result


def prune(store: js.JobStore, older_than: object = 0, check_mode: bool = False, **params: t.Any) -> dict:
    params.setdefault("states", list(_ids.FINAL_STATES))
    result = q.prune(dict(params, older_than=older_than, _async_dir=store.path), check_mode)
    assert not result.get("failed"), result
    return result


def ids(result: dict) -> list[str]:
    return [j["ansible_job_id"] for j in result["jobs"]]


def on_disk(store: js.JobStore, jid: str) -> str:
    return _ids.state_of(store.read(jid))


# --- job_info -----------------------------------------------------------------
def test_job_info_lists_every_kind_sorted_by_start(store: js.JobStore, sleeper: subprocess.Popen) -> None:
    finished(store, "j100000000001.1", name="old", age=3 * DAY)
    running(store, "j100000000002.1", sleeper.pid, name="live")
    keyword(store, "j100000000003.1", {"started": 1, "finished": 0, "ansible_job_id": "j100000000003.1"}, age=DAY)
    keyword(store, "0123456789abcdef", {"rc": 0, "stdout": "mitogen", "changed": True}, age=2 * DAY)
    result = info(store)
    assert result["count"] == 4
    assert ids(result) == ["j100000000001.1", "0123456789abcdef", "j100000000003.1", "j100000000002.1"]
    by_id = {j["ansible_job_id"]: j for j in result["jobs"]}
    assert by_id["j100000000001.1"]["state"] == "succeeded" and by_id["j100000000001.1"]["name"] == "old"
    assert by_id["j100000000002.1"]["state"] == "running" and by_id["j100000000002.1"]["pid"] == sleeper.pid
    assert by_id["j100000000003.1"]["state"] == "running" and by_id["j100000000003.1"]["foreign"] is True
    assert by_id["0123456789abcdef"]["state"] == "succeeded" and by_id["0123456789abcdef"]["rc"] == 0
    assert by_id["j100000000002.1"]["size"] == os.path.getsize(store.job_path("j100000000002.1"))
    assert all("record" not in j for j in result["jobs"])
    assert result["changed"] is False


def test_job_info_details_and_sizes_of_extra_files(store: js.JobStore) -> None:
    jid = finished(store, "j100000000001.1")
    with open(store.job_path(jid) + ".stdout", "wb") as f:
        f.write(b"x" * 1000)
    [job] = info(store, details=True)["jobs"]
    assert job["record"]["stdout"] == f"out of {jid}"
    assert job["files"] == [store.job_path(jid), store.job_path(jid) + ".stdout"]
    assert job["size"] == os.path.getsize(store.job_path(jid)) + 1000


def test_job_info_filters(store: js.JobStore, sleeper: subprocess.Popen) -> None:
    finished(store, "j100000000001.1", name="a", age=3 * DAY)
    finished(store, "j100000000002.1", state=_ids.FAILED, name="b", age=60, rc=2)
    running(store, "j100000000003.1", sleeper.pid, name="c", age=10)
    keyword(store, "j100000000004.1", {"failed": True, "msg": "boom", "rc": 1}, age=2 * 3600)
    assert ids(info(store, names=["a", "c"])) == ["j100000000001.1", "j100000000003.1"]
    assert ids(info(store, states=["failed"])) == ["j100000000004.1", "j100000000002.1"]
    assert ids(info(store, states=["running"])) == ["j100000000003.1"]
    assert ids(info(store, jids=["j100000000002.1", "j100000000009.9"])) == ["j100000000002.1"]
    assert ids(info(store, older_than="1h")) == ["j100000000001.1", "j100000000004.1"]
    assert ids(info(store, newer_than="1h")) == ["j100000000002.1", "j100000000003.1"]
    assert ids(info(store, older_than="1h", newer_than="1d")) == ["j100000000004.1"]
    assert ids(info(store, names=["b"], states=["succeeded"])) == []
    failed = info(store, jids=["j100000000002.1"])["jobs"][0]
    assert failed["rc"] == 2 and failed["msg"] == "failed j100000000002.1"


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"older_than": "3 weeks"}, "'3 weeks'"),
        ({"newer_than": -1}, "newer_than -1"),
        ({"states": ["sleeping"]}, "'sleeping'"),
        ({"jids": ["../etc/passwd"]}, "'../etc/passwd'"),
    ],
)
def test_job_info_bad_filters(store: js.JobStore, params: dict, needle: str) -> None:
    result = q.job_info(dict(params, _async_dir=store.path))
    assert result["failed"] and needle in result["msg"]


def test_job_info_corrupt_files_are_listed(store: js.JobStore) -> None:
    finished(store, "j100000000001.1")
    with open(store.job_path("j100000000002.1"), "w") as f:
        f.write("{not json")
    open(store.job_path("j100000000003.1"), "w").close()
    os.symlink("/etc/passwd", store.job_path("j100000000004.1"))
    result = info(store)
    by_id = {j["ansible_job_id"]: j for j in result["jobs"]}
    assert by_id["j100000000001.1"]["state"] == "succeeded"
    for jid, why in (("j100000000002.1", "not valid JSON"), ("j100000000003.1", "empty"), ("j100000000004.1", "symlink")):
        assert by_id[jid]["state"] == "corrupt"
        assert store.job_path(jid) in by_id[jid]["error"] and why in by_id[jid]["error"]
    assert ids(info(store, states=["corrupt"])) == sorted(ids(info(store, states=["corrupt"])), key=lambda j: by_id[j]["updated_at"])


def test_job_info_vanished_is_persisted_except_in_check_mode(store: js.JobStore) -> None:
    jid = running(store, "j100000000001.1", None)
    [job] = info(store, check_mode=True)["jobs"]
    assert job["state"] == "vanished"
    assert on_disk(store, jid) == "running"
    [job] = info(store)["jobs"]
    assert job["state"] == "vanished" and "supervisor" in job["msg"]
    assert on_disk(store, jid) == "vanished"


def test_job_info_missing_directory_is_empty_and_not_created(tmp_path: t.Any) -> None:
    result = q.job_info({"_async_dir": str(tmp_path / "nothing")})
    assert result == {"changed": False, "jobs": [], "count": 0, "async_dir": str(tmp_path / "nothing")}
    assert not (tmp_path / "nothing").exists()


# --- prune --------------------------------------------------------------------
def test_prune_never_touches_running_jobs(store: js.JobStore, sleeper: subprocess.Popen) -> None:
    live = running(store, "j100000000001.1", sleeper.pid, name="live", age=30 * DAY)
    kw = keyword(store, "j100000000002.1", {"started": 1, "finished": 0, "ansible_job_id": "j100000000002.1"}, age=30 * DAY)
    done = finished(store, "j100000000003.1", name="done", age=30 * DAY)
    result = prune(store, "0s", states=list(q.PRUNE_STATES))
    assert result["removed"] == [done]
    assert result["kept_running"] == 2
    assert store.exists(live) and store.exists(kw) and not store.exists(done)
    assert store.name_get("live") == live
    assert store.name_get("done") is None


def test_prune_vanished_first_then_eligible(store: js.JobStore, sleeper: subprocess.Popen) -> None:
    gone = running(store, "j100000000001.1", None)
    # the supervisor is gone but the job's process still runs: kept, it can still be killed
    orphaned = running(store, "j100000000002.1", None, child=sleeper.pid)
    result = prune(store, 0)
    assert result["removed"] == [gone]
    assert result["kept_running"] == 1
    assert not store.exists(gone)
    assert on_disk(store, orphaned) == "vanished"


def test_prune_check_mode_then_apply_then_nothing(store: js.JobStore) -> None:
    old = finished(store, "j100000000001.1", name="old", age=2 * DAY)
    young = finished(store, "j100000000002.1", age=60)
    kw = keyword(store, "j100000000003.1", {"rc": 0, "changed": True}, age=2 * DAY)
    extra = store.job_path(old) + ".stdout"
    kw_tmp = store.job_path(kw) + ".tmp"  # ansible-core's own temporary name
    for path in (extra, kw_tmp):
        open(path, "w").close()
    name_file = os.path.join(store.path, js.NAMES_DIR, "old")
    before = sorted(os.listdir(store.path))

    check = prune(store, "1d", check_mode=True)
    assert check["changed"] is True
    assert sorted(check["removed"]) == [old, kw]
    assert sorted(check["files"]) == sorted([store.job_path(old), extra, store.job_path(kw), kw_tmp, name_file])
    assert sorted(os.listdir(store.path)) == before and os.path.exists(name_file)

    applied = prune(store, "1d")
    assert applied["changed"] is True
    assert sorted(applied["removed"]) == sorted(check["removed"])
    assert sorted(applied["files"]) == sorted(check["files"])
    for path in check["files"]:
        assert not os.path.lexists(path)
    assert store.exists(young)

    again = prune(store, "1d")
    assert again == dict(again, changed=False, removed=[], files=[])


def test_prune_states_and_names(store: js.JobStore) -> None:
    ok = finished(store, "j100000000001.1", name="x")
    bad = finished(store, "j100000000002.1", state=_ids.FAILED, name="y")
    to = finished(store, "j100000000003.1", state=_ids.TIMEOUT, name="x2")
    assert prune(store, 0, states=["failed", "timeout"], names=["x2"])["removed"] == [to]
    assert prune(store, 0, states=["failed"])["removed"] == [bad]
    assert store.exists(ok)
    assert store.name_get("x") == ok and store.name_get("y") is None


def test_prune_corrupt_only_when_asked(store: js.JobStore) -> None:
    path = store.job_path("j100000000001.1")
    with open(path, "w") as f:
        f.write("[1, 2")
    set_age(path, DAY)
    assert prune(store, 0)["removed"] == []
    assert os.path.exists(path)
    assert prune(store, "2d", states=["corrupt"])["removed"] == []
    assert prune(store, "1h", states=["corrupt"])["removed"] == ["j100000000001.1"]
    assert not os.path.exists(path)


def test_prune_leftovers_need_age_and_the_floor(store: js.JobStore) -> None:
    old_tmp = os.path.join(store.path, ".j100000000001.1.4242.123456789.tmp")
    new_tmp = os.path.join(store.path, ".j100000000002.1.4242.123456789.tmp")
    name_tmp = os.path.join(store.path, ".backup.4242.123456789.tmp")
    orphan = store.job_path("j100000000003.1") + ".payload"
    launching = store.job_path("j100000000004.1") + ".pyz"
    for path in (old_tmp, new_tmp, name_tmp, orphan, launching):
        open(path, "w").close()
    for path in (old_tmp, name_tmp, orphan):
        set_age(path, 3600)
    set_age(new_tmp, 300)  # older than the age asked for, younger than the floor
    assert prune(store, "1h", names=["backup"])["files"] == []
    result = prune(store, "5s")
    assert sorted(result["files"]) == sorted([old_tmp, name_tmp, orphan])
    assert result["removed"] == []
    assert os.path.exists(new_tmp) and os.path.exists(launching)
    unrelated = os.path.join(store.path, "notes.txt")
    open(unrelated, "w").close()
    set_age(unrelated, 30 * DAY)
    assert prune(store, 0)["files"] == []
    assert os.path.exists(unrelated)


def test_prune_stale_names(store: js.JobStore, sleeper: subprocess.Popen) -> None:
    store.name_set("ghost", "j100000000009.9")
    running(store, "j100000000001.1", sleeper.pid, name="alive")
    os.makedirs(os.path.join(store.path, js.NAMES_DIR), exist_ok=True)
    with open(os.path.join(store.path, js.NAMES_DIR, "junk"), "w") as f:
        f.write("not a job id")
    result = prune(store, "7d", check_mode=True)
    names_dir = os.path.join(store.path, js.NAMES_DIR)
    assert sorted(result["files"]) == [os.path.join(names_dir, "ghost"), os.path.join(names_dir, "junk")]
    assert os.path.exists(os.path.join(names_dir, "ghost"))
    result = prune(store, "7d")
    assert sorted(os.listdir(names_dir)) == ["alive"]
    assert result["changed"] is True and result["removed"] == []


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"older_than": None}, "older_than None"),
        ({"older_than": "yesterday"}, "'yesterday'"),
        ({"older_than": 0, "states": ["running"]}, "'running'"),
    ],
)
def test_prune_bad_params(store: js.JobStore, params: dict, needle: str) -> None:
    result = q.prune(dict(params, _async_dir=store.path))
    assert result["failed"] and needle in result["msg"]


def test_prune_missing_directory(tmp_path: t.Any) -> None:
    result = q.prune({"older_than": 0, "_async_dir": str(tmp_path / "nothing")})
    assert result["changed"] is False and result["removed"] == [] and not (tmp_path / "nothing").exists()


def test_discard_refuses_paths_outside(store: js.JobStore, tmp_path: t.Any) -> None:
    outside = tmp_path / "precious"
    outside.write_text("x")
    with pytest.raises(_ids.JobError, match="refusing"):
        store.discard(str(outside))
    with pytest.raises(_ids.JobError, match="refusing"):
        store.discard(os.path.join(store.path, js.NAMES_DIR))
    assert outside.exists()
