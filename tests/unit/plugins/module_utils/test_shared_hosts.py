# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""Unit tests of the guarantees on a host shared with other users (docs/reliability.md, "Shared hosts").

Each kind of object planted in a job directory (a symlink, a fifo, a directory, a file of another
user, one that others can write) is refused by name and never followed, read, run or waited on;
a kill never signals a process whose start time was not recorded and matched; a cleanup of a
running job is refused. Real files and real processes throughout.
"""

from __future__ import annotations

import fcntl
import json
import os
import stat
import subprocess
import sys
import time
import typing as t

import pytest

from ansible_collections.detached.jobs.plugins.module_utils import _control as ctl
from ansible_collections.detached.jobs.plugins.module_utils import _ids as ids
from ansible_collections.detached.jobs.plugins.module_utils import _jobstore as js
from ansible_collections.detached.jobs.plugins.module_utils import _launch, _ops, _query
from ansible_collections.detached.jobs.plugins.module_utils import _process as proc
from ansible_collections.detached.jobs.plugins.module_utils import _safepath as sp
from ansible_collections.detached.jobs.plugins.module_utils import _slots as slots
from ansible_collections.detached.jobs.tests.unit.plugins.module_utils._jobs import status_jids

JID = "j123456789012.4242"
needs_linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="start times from /proc: Linux only")
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a file to another user")


@pytest.fixture
def victim() -> t.Iterator[subprocess.Popen]:
    """A process standing for another user's: it must outlive every test."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    yield child
    child.kill()
    child.wait()


def _alive(child: subprocess.Popen) -> bool:
    return child.poll() is None


# --- planted objects ----------------------------------------------------------
def _plant(path: str, kind: str, tmp_path: t.Any) -> None:
    """Put an object of that kind at path: a symlink to a secret, a fifo, a directory, or a file
    that others can write."""
    if kind == "symlink":
        secret = tmp_path / "secret"
        secret.write_text("root-only secret\n")
        os.symlink(secret, path)
    elif kind == "fifo":
        os.mkfifo(path, 0o600)
    elif kind == "directory":
        os.mkdir(path, 0o700)
    else:
        with open(path, "w") as f:
            f.write(JID)
        os.chmod(path, 0o666)


@pytest.mark.parametrize(
    "kind,why", [("symlink", "symlink"), ("fifo", "is not a regular file but a fifo"), ("directory", "is not a regular file but a directory")]
)
def test_name_entries_that_are_not_plain_files_are_reported_by_name(store: js.JobStore, tmp_path: t.Any, kind: str, why: str) -> None:
    store.name_set("good", JID)
    store.write(JID, {"started": True, "finished": True, "rc": 0})
    path = os.path.join(store.path, ".names", "x")
    _plant(path, kind, tmp_path)
    t0 = time.monotonic()
    with pytest.raises(ids.UnsafePath, match=f"job name 'x': {path} is not safe to use: .*{why}"):
        store.name_get("x")
    # A named start, a wait and a prune report it by name and go on; nothing hangs, nothing is followed.
    started = _ops.start({"async_dir": store.path, "jobs": [{"argv": ["true"], "name": "x"}]})
    assert started["failed"] and "job name 'x'" in started["msg"] and why in started["msg"]
    waited = _ops.wait({"_async_dir": store.path, "names": ["x", "good"], "_block": 0})
    assert why in waited["errors"]["x"] and waited["names"]["good"] == JID
    pruned = _query.prune({"_async_dir": store.path, "older_than": "0s"})
    assert pruned["failed"] and "'x'" in pruned["msg"] and why in pruned["msg"]
    assert time.monotonic() - t0 < 10
    assert os.path.lexists(path)  # reported, left alone
    if kind == "symlink":
        assert (tmp_path / "secret").read_text() == "root-only secret\n"


def test_a_name_entry_others_can_write_is_refused(store: js.JobStore) -> None:
    store.name_set("x", JID)
    os.chmod(os.path.join(store.path, ".names", "x"), 0o620)  # (the collection writes every file 0600)
    with pytest.raises(ids.UnsafePath, match="it is writable by others \\(mode 0620\\)"):
        store.name_get("x")


@pytest.mark.parametrize("sub", [".names", ".slots"])
def test_a_symlinked_names_or_slots_directory_is_refused(store: js.JobStore, tmp_path: t.Any, sub: str) -> None:
    target = tmp_path / "rootonly"
    target.mkdir(mode=0o700)
    (target / "keep").write_text("keep\n")
    os.utime(target / "keep", (0, 0))
    os.symlink(target, os.path.join(store.path, sub))
    with pytest.raises(ids.UnsafePath, match=f"{store.path}/{sub} is not safe to use: it is not a directory but a symlink"):
        if sub == ".names":
            store.name_set("web", JID)
        else:
            slots.SlotQueue(store, "db").join(JID, {})
    assert _query.prune({"_async_dir": store.path, "older_than": "0s"})["failed"]
    assert sorted(os.listdir(target)) == ["keep"]  # nothing created or deleted through the link


def test_a_lock_that_is_a_symlink_is_refused(store: js.JobStore, tmp_path: t.Any) -> None:
    target = tmp_path / "elsewhere"
    os.symlink(target, os.path.join(store.path, ".lock"))
    with pytest.raises(ids.UnsafePath, match="symlink"):
        with store.lock():
            pass
    assert not target.exists()


def test_a_held_lock_is_waited_for_a_bounded_time(store: js.JobStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sp, "LOCK_WAIT", 0.5)
    fd = os.open(os.path.join(store.path, ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        t0 = time.monotonic()
        result = _ops.start({"async_dir": store.path, "jobs": [{"argv": ["true"], "name": "web"}]})
        assert result["failed"] and f"cannot lock {store.path}/.lock: another process has held it for 0.5 s" in result["msg"]
        assert time.monotonic() - t0 < 5
        assert status_jids(store) == []  # the job was not started later behind the caller's back
    finally:
        os.close(fd)


@pytest.mark.parametrize("kind", ["symlink", "fifo", "directory", "writable"])
def test_planted_job_files_are_refused(store: js.JobStore, tmp_path: t.Any, kind: str) -> None:
    store.write(JID, {"started": True, "finished": True, "rc": 0, "detached": {"version": 1, "state": "succeeded", "files": {"stdout": "x"}}})
    path = store.extra_path(JID, "stdout")
    _plant(path, kind, tmp_path)
    with pytest.raises(ids.UnsafePath, match=f"job {JID}: {path} is not safe to use"):
        store.output_tail(JID, "stdout", 10)
    result = _ops.status({"jid": JID, "_async_dir": store.path, "tail": 5})
    assert result["failed"] and "is not safe to use" in result["msg"] and "secret" not in json.dumps(result)


@needs_root
def test_files_of_another_user_are_refused(store: js.JobStore, tmp_path: t.Any) -> None:
    store.write(JID, {"started": True, "finished": True, "rc": 0})
    os.chown(store.job_path(JID), 65534, 65534)
    with pytest.raises(ids.UnsafePath, match="is owned by uid 65534"):
        store.read(JID)
    # a slot ticket of another user's, held for ever, is refused by name instead of blocking the slot
    os.makedirs(os.path.join(store.path, ".slots", "db"), mode=0o700)
    ticket = os.path.join(store.path, ".slots", "db", f"000000000001.{JID}")
    with open(ticket, "w") as f:
        f.write("{}")
    os.chown(ticket, 65534, 65534)
    with pytest.raises(ids.UnsafePath, match=f"{ticket} is not safe to use: it is owned by uid 65534"):
        slots.SlotQueue(store, "db").sweep()


def test_status_files_of_the_umask_are_read_where_the_group_cannot_enter(tmp_path: t.Any) -> None:
    """ansible-core's own status files follow the umask (0664 under umask 002): read in a 0700
    directory, refused where the group can enter; one that anybody can write, always refused."""
    store = js.JobStore(str(tmp_path / "jobs"))
    store.write(JID, {"started": True, "finished": True, "rc": 0})
    os.chmod(store.job_path(JID), 0o664)
    assert store.read(JID)["rc"] == 0
    os.chmod(store.path, 0o750)
    with pytest.raises(ids.UnsafePath, match="it is writable by others \\(mode 0664\\)"):
        js.JobStore(store.path).read(JID)
    os.chmod(store.path, 0o700)
    os.chmod(store.job_path(JID), 0o666)
    with pytest.raises(ids.UnsafePath, match="it is writable by others \\(mode 0666\\)"):
        js.JobStore(store.path).read(JID)


# --- kills need a recorded start time ----------------------------------------------
def _record(pid: int, state: str, **meta: t.Any) -> dict:
    finished = state != ids.RUNNING
    return {"started": True, "finished": finished, "ansible_job_id": JID, "detached": dict(meta, version=1, state=state, pid=pid, grace=0.2)}


@needs_linux
def test_kill_never_signals_a_supervisor_without_a_recorded_start_time(store: js.JobStore, victim: subprocess.Popen) -> None:
    store.write(JID, _record(victim.pid, ids.RUNNING))
    for call in (
        lambda: _ops.status({"jid": JID, "_async_dir": store.path, "mode": "kill"}),
        lambda: _ops.wait({"_async_dir": store.path, "_jids": [JID], "_mode": "kill"}),
    ):
        result = call()
        msg = result.get("msg") or result["errors"][JID]
        assert f"pid {victim.pid}" in msg and "has no start time for it; no signal was sent" in msg
    time.sleep(0.3)
    assert _alive(victim) and not store.read(JID)["finished"]


@needs_linux
def test_a_supervisor_of_another_start_time_is_gone_not_signalled(store: js.JobStore, victim: subprocess.Popen) -> None:
    """A recorded start time that does not match: the pid was reused, the job's supervisor is gone."""
    store.write(JID, _record(victim.pid, ids.RUNNING, pid_start="1"))
    job, dummy = ctl.kill(store, JID)
    assert job["finished"]
    time.sleep(0.3)
    assert _alive(victim)


@needs_linux
def test_a_vanished_record_without_a_child_start_time_kills_nothing(store: js.JobStore, victim: subprocess.Popen) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    store.write(JID, _record(dead.pid, ids.VANISHED, pid_start="1", child_pid=victim.pid))
    for mode in ("kill", "cleanup"):
        result = _ops.status({"jid": JID, "_async_dir": store.path, "mode": mode})
        assert result["failed"] and "no signal was sent" in result["msg"], result
    result = _ops.wait({"_async_dir": store.path, "_jids": [JID], "_mode": "cleanup"})
    assert "no signal was sent" in result["errors"][JID]
    time.sleep(0.3)
    assert _alive(victim) and os.path.exists(store.job_path(JID))  # nothing killed, nothing lost


@needs_linux
def test_a_recorded_and_matched_start_time_is_killed(store: js.JobStore, victim: subprocess.Popen) -> None:
    """The control: the same vanished record with the child's real start time does kill it."""
    dead = subprocess.Popen(["true"])
    dead.wait()
    store.write(JID, _record(dead.pid, ids.VANISHED, pid_start="1", child_pid=victim.pid, child_start=proc.start_time(victim.pid)))
    job, changed = ctl.kill(store, JID)
    assert changed and job["detached"]["state"] == ids.KILLED
    victim.wait(timeout=10)


# --- cleanup of a running job -----------------------------------------------------
def test_cleanup_of_a_running_job_is_refused(store: js.JobStore) -> None:
    (started,) = _launch.start(store, [ctl.JobSpec({"argv": ["sleep", "30"], "name": "web"})])
    jid = started["ansible_job_id"]
    try:
        files = store.files_of(jid)
        result = _ops.status({"jid": jid, "_async_dir": store.path, "mode": "cleanup"})
        assert result["failed"] and f"job {jid} is still running" in result["msg"] and "kill it first" in result["msg"]
        assert store.files_of(jid) == files and store.name_get("web") == jid
        assert not ctl.status(store, jid)["finished"]
        killed = _ops.status({"jid": jid, "_async_dir": store.path, "mode": "kill"})
        assert killed["job"]["detached"]["state"] == ids.KILLED
        cleaned = _ops.status({"jid": jid, "_async_dir": store.path, "mode": "cleanup"})
        assert cleaned["changed"] and not store.files_of(jid)
    finally:
        if store.exists(jid):
            ctl.kill(store, jid, wait=10)


def test_every_operation_refuses_a_job_directory_others_can_write(tmp_path: t.Any) -> None:
    path = tmp_path / "shared"
    path.mkdir()
    os.chmod(path, 0o1777)
    calls = {
        "start": lambda: _ops.start({"async_dir": str(path), "jobs": [{"argv": ["true"]}]}),
        "status": lambda: _ops.status({"jid": JID, "_async_dir": str(path)}),
        "kill": lambda: _ops.status({"jid": JID, "_async_dir": str(path), "mode": "kill"}),
        "wait": lambda: _ops.wait({"_async_dir": str(path), "_jids": [JID], "names": ["web"]}),
        "job_info": lambda: _query.job_info({"_async_dir": str(path)}),
        "prune": lambda: _query.prune({"_async_dir": str(path), "older_than": "0s"}),
    }
    for what, call in calls.items():
        result = call()
        assert result["failed"], what
        assert f"job directory {path} is not safe to use: it is writable by others (mode 1777)" in result["msg"], what
    assert os.listdir(path) == [] and stat.S_IMODE(os.stat(path).st_mode) == 0o1777
