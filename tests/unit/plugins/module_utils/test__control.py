# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""Unit tests of _control with real jobs: launch, status, vanished detection, kill, names, check mode."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import typing as t

import pytest

from ansible_collections.detached.jobs.plugins.module_utils import _control as ctl
from ansible_collections.detached.jobs.plugins.module_utils import _ids as ids
from ansible_collections.detached.jobs.plugins.module_utils import _jobstore as js
from ansible_collections.detached.jobs.plugins.module_utils import _launch, _pyzcache
from ansible_collections.detached.jobs.plugins.module_utils import _ops as ops
from ansible_collections.detached.jobs.plugins.module_utils import _process as proc
from ansible_collections.detached.jobs.plugins.module_utils import _records as rec
from ansible_collections.detached.jobs.tests.unit.plugins.module_utils._jobs import kill_leftovers, status_jids, wait_done

ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))


def cmd(argv: list[str], **extra: t.Any) -> ctl.JobSpec:
    return ctl.JobSpec(dict(argv=argv, **extra))


def module(source: str, **extra: t.Any) -> ctl.JobSpec:
    payload = base64.b64encode(textwrap.dedent(source).encode()).decode()
    return ctl.JobSpec(dict({"module": "test.fake", "payload": payload, "interpreter": [sys.executable], "style": "new"}, **extra))


def start_one(live_store: js.JobStore, spec: ctl.JobSpec) -> dict:
    (result,) = _launch.start(live_store, [spec])
    assert not result.get("failed"), result
    return result


def wait_for(predicate: t.Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def raw(live_store: js.JobStore, jid: str) -> dict:
    with open(live_store.job_path(jid)) as f:
        return json.load(f)


def read_pids(path: t.Any, count: int) -> list[int]:
    def ready() -> bool:
        return os.path.exists(path) and len(open(path).read().split()) >= count

    wait_for(ready)
    return [int(x) for x in open(path).read().split()][:count]


# --- command jobs -----------------------------------------------------------------
def test_command_job_runs_to_completion(live_store: js.JobStore, tmp_path: t.Any) -> None:
    marker = tmp_path / "marker"
    result = start_one(live_store, cmd(["sh", "-c", f"echo hello; echo oops >&2; echo done > {marker}"]))
    jid = result["ansible_job_id"]
    assert result["started"] is True and result["changed"] is True and result["attached"] is False
    assert result["results_file"] == live_store.job_path(jid)
    assert set(result) >= {"started", "finished", "ansible_job_id", "results_file", "detached"}
    assert os.path.exists(live_store.job_path(jid))  # recorded before start returned
    view = wait_done(live_store, jid)
    assert marker.read_text() == "done\n"
    assert view["rc"] == 0 and view["stdout"] == "hello" and view["stderr"] == "oops"
    assert view["cmd"] == ["sh", "-c", f"echo hello; echo oops >&2; echo done > {marker}"]
    for key in ("start", "end", "delta"):
        assert isinstance(view[key], str) and view[key]
    assert view["start"] <= view["end"]
    assert view["changed"] is True and "failed" not in view
    meta = view["detached"]
    assert meta["state"] == ids.SUCCEEDED and meta["version"] == rec.FORMAT_VERSION
    assert meta["rc"] == 0 and meta["signal"] is None and meta["files"] == {}
    assert meta["ended_at"] >= meta["started_at"] and meta["elapsed"] >= 0
    assert meta["cmd"] == view["cmd"] and meta["module"] is None
    assert meta["boot_id"] == proc.boot_id()
    # the supervisor cleaned up after itself and is gone
    assert os.listdir(live_store.path) == [jid]
    assert oct(os.stat(live_store.job_path(jid)).st_mode & 0o777) == oct(0o600)
    wait_for(lambda: not proc.is_alive(meta["pid"], meta["pid_start"]))
    assert raw(live_store, jid) == view


def test_command_job_failure(live_store: js.JobStore) -> None:
    jid = start_one(live_store, cmd(["sh", "-c", "echo bad >&2; exit 3"]))["ansible_job_id"]
    view = wait_done(live_store, jid)
    assert view["rc"] == 3 and view["failed"] is True and view["msg"] == "non-zero return code"
    assert view["stderr"] == "bad"
    assert view["detached"]["state"] == ids.FAILED and view["detached"]["rc"] == 3


def test_command_chdir(live_store: js.JobStore, tmp_path: t.Any) -> None:
    jid = start_one(live_store, cmd(["pwd"], chdir=str(tmp_path)))["ansible_job_id"]
    assert wait_done(live_store, jid)["stdout"] == str(tmp_path)


def test_command_that_cannot_start(live_store: js.JobStore) -> None:
    (result,) = _launch.start(live_store, [cmd(["/nonexistent/program", "x"])])
    assert result["failed"] is True and result["started"] is False
    assert "/nonexistent/program" in result["msg"]
    assert os.listdir(live_store.path) == []  # nothing left behind


def test_batch_of_jobs_via_ops(tmp_path: t.Any) -> None:
    """_ops.start as the modules call it: several jobs at once, each recorded when start returns."""
    path = str(tmp_path / "jobs")
    out = ops.start({"async_dir": path, "jobs": [{"argv": ["echo", str(i)]} for i in range(3)]})
    assert out["changed"] is True and out["async_dir"] == path
    live_store = js.JobStore(path)
    jids = [r["ansible_job_id"] for r in out["jobs"]]
    assert len(set(jids)) == 3
    assert [wait_done(live_store, jid)["stdout"] for jid in jids] == ["0", "1", "2"]
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o700)


def test_module_job(live_store: js.JobStore) -> None:
    source = """
        import json, sys
        args = json.load(open(sys.argv[1]))
        print(json.dumps({"changed": False, "echo": args["x"], "argv_len": len(sys.argv)}))
    """
    spec = module(source, args_data=json.dumps({"x": "yes"}))
    jid = start_one(live_store, spec)["ansible_job_id"]
    view = wait_done(live_store, jid)
    assert view["echo"] == "yes" and view["argv_len"] == 2 and view["changed"] is False
    assert view["detached"]["state"] == ids.SUCCEEDED and view["detached"]["module"] == "test.fake"
    assert os.listdir(live_store.path) == [jid]  # payload, args, pyz and output removed


def test_timeout(live_store: js.JobStore) -> None:
    jid = start_one(live_store, cmd(["sleep", "300"], timeout=0.3, grace=1))["ansible_job_id"]
    child = raw(live_store, jid)["detached"]
    view = wait_done(live_store, jid)
    assert view["detached"]["state"] == ids.TIMEOUT and view["failed"] is True
    assert view["msg"].startswith("Timeout exceeded")
    assert view["detached"]["signal"] == signal.SIGTERM
    assert not proc.is_alive(child["child_pid"], child["child_start"])


# --- vanished ---------------------------------------------------------------------
def test_supervisor_killed_reads_vanished_and_is_persisted(live_store: js.JobStore) -> None:
    jid = start_one(live_store, cmd(["sleep", "300"]))["ansible_job_id"]
    meta = raw(live_store, jid)["detached"]
    assert ctl.status(live_store, jid)["detached"]["state"] == ids.RUNNING
    os.kill(meta["pid"], signal.SIGKILL)
    wait_for(lambda: not proc.is_alive(meta["pid"], meta["pid_start"]))

    # a reader in check mode sees vanished but changes nothing
    view = ctl.status(live_store, jid, persist=False)
    assert view["finished"] is True and view["detached"]["state"] == ids.VANISHED
    assert raw(live_store, jid)["finished"] is False

    view = ctl.status(live_store, jid)
    assert view["finished"] is True and view["failed"] is True
    assert view["detached"]["state"] == ids.VANISHED
    assert str(meta["pid"]) in view["msg"] and "still running" in view["msg"]
    stored = raw(live_store, jid)
    assert stored["finished"] is True and stored["detached"]["state"] == ids.VANISHED
    assert stored["detached"]["ended_at"] is not None
    assert ids.state_of(stored) == ids.VANISHED  # what ansible.builtin.async_status sees too

    # the job's own process runs on unsupervised; kill still reaches it
    assert proc.is_alive(meta["child_pid"], meta["child_start"])
    job, changed = ctl.kill(live_store, jid)
    assert changed is True and job["detached"]["state"] == ids.KILLED
    wait_for(lambda: not proc.is_alive(meta["child_pid"], meta["child_start"]))
    assert raw(live_store, jid)["detached"]["state"] == ids.KILLED
    assert ctl.kill(live_store, jid)[1] is False


def test_vanished_when_recorded_pid_is_reused_or_another_boot(live_store: js.JobStore) -> None:
    """A running record whose supervisor identity no longer matches (a stale start time, another boot)."""
    jid_a, jid_b = "j100000000001.1", "j100000000002.1"
    me = os.getpid()
    meta = {"name": None, "module": None, "cmd": ["x"], "pid": me, "pid_start": proc.start_time(me), "boot_id": proc.boot_id(), "started_at": time.time()}
    live_store.write(jid_a, rec.running_record(jid_a, live_store.job_path(jid_a), dict(meta, pid_start="1")))
    live_store.write(jid_b, rec.running_record(jid_b, live_store.job_path(jid_b), dict(meta, boot_id="00000000-0000-4000-8000-000000000000")))
    for jid in (jid_a, jid_b):
        assert ctl.status(live_store, jid)["detached"]["state"] == ids.VANISHED
        assert raw(live_store, jid)["detached"]["state"] == ids.VANISHED
    # the same record with this process's true identity is running
    jid_c = "j100000000003.1"
    live_store.write(jid_c, rec.running_record(jid_c, live_store.job_path(jid_c), meta))
    assert ctl.status(live_store, jid_c)["detached"]["state"] == ids.RUNNING
    live_store.remove(jid_c)


def test_builtin_records_are_left_alone(live_store: js.JobStore) -> None:
    """ansible-core's async keyword writes no pids: its running record stays running, and cannot be killed."""
    jid = "j200000000001.77"
    live_store.write(jid, {"started": 1, "finished": 0, "ansible_job_id": jid})
    view = ctl.status(live_store, jid)
    assert view["finished"] is False and view["detached"]["foreign"] is True
    assert raw(live_store, jid) == {"started": 1, "finished": 0, "ansible_job_id": jid}
    with pytest.raises(ids.NotKillable, match="async keyword.*still running"):
        ctl.kill(live_store, jid)
    live_store.write(jid, {"started": 1, "finished": 1, "ansible_job_id": jid, "rc": 0})
    assert ctl.kill(live_store, jid)[1] is False


def test_mitogen_records_are_not_killed(live_store: js.JobStore) -> None:
    """Mitogen's async records a bare pid: the kill is refused, naming Mitogen, and the record is untouched."""
    jid = "0123456789abcdef"
    record = {"started": 1, "finished": 0, "ansible_job_id": jid, "pid": os.getpid()}
    live_store.write(jid, record)
    with pytest.raises(ids.NotKillable, match=f"job {jid}: started by Mitogen's async"):
        ctl.kill(live_store, jid)
    assert raw(live_store, jid) == record


def test_refused_kill_is_not_reported_finished(tmp_path: t.Any) -> None:
    """async_status mode=kill of a job it cannot kill fails with finished false (the job goes on)."""
    from ansible_collections.detached.jobs.plugins.module_utils import _ops

    live_store = js.JobStore(str(tmp_path / "jobs"))
    jid = "fedcba9876543210"
    live_store.write(jid, {"started": 1, "finished": 0, "ansible_job_id": jid, "pid": 1})
    result = _ops.status({"jid": jid, "mode": "kill", "_async_dir": str(tmp_path / "jobs")})
    assert result["failed"] is True and result["finished"] is False
    assert "Mitogen" in result["msg"] and "still running" in result["msg"]


# --- kill -------------------------------------------------------------------------
def test_kill_running_job_and_its_whole_tree(live_store: js.JobStore, tmp_path: t.Any) -> None:
    pids_file = tmp_path / "pids"
    script = f"echo $$ > {pids_file}; setsid sleep 300 & echo $! >> {pids_file}; sleep 300 & echo $! >> {pids_file}; wait"
    jid = start_one(live_store, cmd(["sh", "-c", script], grace=2))["ansible_job_id"]
    shell, escapee, sibling = read_pids(pids_file, 3)
    wait_for(lambda: os.getsid(escapee) == escapee)  # it left the job's session
    meta = raw(live_store, jid)["detached"]
    assert meta["child_pid"] == shell
    starts = {p: proc.start_time(p) for p in (shell, escapee, sibling)}

    # The supervisor is given a minute to answer, not the default grace + 5 s: on a loaded machine
    # (the whole suite on 2 CPUs) it once took longer, and the kill then, rightly, finished the job
    # itself ("its supervisor did not handle it"): test_supervisor_killed_reads_vanished_and_is_persisted.
    job, changed = ctl.kill(live_store, jid, wait=60)
    assert changed is True
    assert job["finished"] is True and job["failed"] is True
    assert job["detached"]["state"] == ids.KILLED and job["msg"] == "the job was killed on request"
    for p in (shell, escapee, sibling):
        wait_for(lambda p=p: not proc.is_alive(p, starts[p]))  # type: ignore[misc]
    wait_for(lambda: not proc.is_alive(meta["pid"], meta["pid_start"]))
    assert raw(live_store, jid)["detached"]["state"] == ids.KILLED
    assert os.listdir(live_store.path) == [jid]
    # killing a finished job changes nothing
    again, changed = ctl.kill(live_store, jid)
    assert changed is False and again["detached"]["state"] == ids.KILLED


def test_kill_escalates_for_a_job_that_ignores_sigterm(live_store: js.JobStore, tmp_path: t.Any) -> None:
    pids_file = tmp_path / "pids"
    jid = start_one(live_store, cmd(["sh", "-c", f"trap '' TERM; sleep 300 & echo $! > {pids_file}; wait; wait"], grace=0.3))["ansible_job_id"]
    (sleeper,) = read_pids(pids_file, 1)
    start = proc.start_time(sleeper)
    job, changed = ctl.kill(live_store, jid)
    assert changed and job["detached"]["state"] == ids.KILLED
    assert job["detached"]["signal"] == signal.SIGKILL
    wait_for(lambda: not proc.is_alive(sleeper, start))


def test_kill_and_status_of_a_missing_job(live_store: js.JobStore) -> None:
    with pytest.raises(ids.JobNotFound, match=live_store.job_path("j1.1")):
        ctl.kill(live_store, "j1.1")
    with pytest.raises(ids.JobNotFound):
        ctl.status(live_store, "j1.1")
    with pytest.raises(ids.InvalidJobId):
        ctl.status(live_store, "../x")


# --- names ------------------------------------------------------------------------
def test_names_attach_fail_restart(live_store: js.JobStore) -> None:
    first = start_one(live_store, cmd(["sleep", "300"], name="web"))
    jid = first["ansible_job_id"]
    assert first["changed"] is True and first["attached"] is False
    assert live_store.name_get("web") == jid
    assert first["detached"]["name"] == "web"
    old = raw(live_store, jid)["detached"]

    attached = start_one(live_store, cmd(["sleep", "300"], name="web", if_running="attach"))
    assert attached["ansible_job_id"] == jid and attached["attached"] is True and attached["changed"] is False
    assert status_jids(live_store) == [jid]

    (refused,) = _launch.start(live_store, [cmd(["sleep", "300"], name="web", if_running="fail")])
    assert refused["failed"] is True and refused["changed"] is False
    assert "'web'" in refused["msg"] and jid in refused["msg"]
    assert status_jids(live_store) == [jid]

    restarted = start_one(live_store, cmd(["sleep", "300"], name="web", if_running="restart"))
    new = restarted["ansible_job_id"]
    assert new != jid and restarted["changed"] is True and restarted["attached"] is False
    assert live_store.name_get("web") == new
    assert raw(live_store, jid)["detached"]["state"] == ids.KILLED
    wait_for(lambda: not proc.is_alive(old["child_pid"], old["child_start"]))
    assert ctl.status(live_store, new)["finished"] is False

    # once the named job is over, the name starts a new job
    ctl.kill(live_store, new)
    third = start_one(live_store, cmd(["true"], name="web"))
    assert third["ansible_job_id"] not in (jid, new) and third["attached"] is False
    assert live_store.name_get("web") == third["ansible_job_id"]


def test_name_pointing_at_a_removed_job_starts_a_new_one(live_store: js.JobStore) -> None:
    live_store.name_set("web", "j300000000001.1")
    result = start_one(live_store, cmd(["true"], name="web"))
    assert result["attached"] is False and live_store.name_get("web") == result["ansible_job_id"]


def test_invalid_name_is_refused() -> None:
    with pytest.raises(ids.InvalidName):
        cmd(["true"], name="../evil")


def test_concurrent_starts_of_one_name_start_one_job(live_store: js.JobStore) -> None:
    code = textwrap.dedent(
        f"""
        import json
        from ansible_collections.detached.jobs.plugins.module_utils import _ops
        out = _ops.start({{"async_dir": {live_store.path!r}, "jobs": [{{"argv": ["sleep", "300"], "name": "once"}}]}})
        print(json.dumps(out["jobs"][0]))
        """
    )
    procs = [subprocess.Popen([sys.executable, "-c", code], env=ENV, stdout=subprocess.PIPE) for dummy in range(3)]
    results = [json.loads(p.communicate(timeout=60)[0]) for p in procs]
    assert len({r["ansible_job_id"] for r in results}) == 1
    assert sorted(r["attached"] for r in results) == [False, True, True]
    assert len(status_jids(live_store)) == 1


# --- check mode -------------------------------------------------------------------
def test_check_mode_starts_nothing(live_store: js.JobStore, tmp_path: t.Any) -> None:
    marker = tmp_path / "marker"
    results = _launch.start(live_store, [cmd(["touch", str(marker)]), cmd(["touch", str(marker)], name="n")], check_mode=True)
    assert [r["would_start"] for r in results] == [True, True]
    assert all(r["changed"] and not r["started"] for r in results)
    assert os.listdir(live_store.path) == []
    assert not marker.exists()


def test_check_mode_via_ops_creates_no_directory(tmp_path: t.Any) -> None:
    path = tmp_path / "nothere"
    out = ops.start({"async_dir": str(path), "jobs": [{"argv": ["true"], "name": "x"}]}, check_mode=True)
    assert out["changed"] is True and out["jobs"][0]["would_start"] is True
    assert not path.exists()


def test_check_mode_restart_keeps_the_running_job(live_store: js.JobStore) -> None:
    jid = start_one(live_store, cmd(["sleep", "300"], name="web"))["ansible_job_id"]
    (result,) = _launch.start(live_store, [cmd(["sleep", "300"], name="web", if_running="restart")], check_mode=True)
    assert result["would_start"] is True and result["restarted"] == jid
    assert status_jids(live_store) == [jid] and live_store.name_get("web") == jid
    assert ctl.status(live_store, jid)["finished"] is False


# --- the supervisor's zip application, kept in the user's cache directory ---------------------


@pytest.fixture
def fresh_pyz(tmp_path: t.Any, monkeypatch: pytest.MonkeyPatch) -> t.Iterator[dict]:
    """A cache directory of this test, no zip built in this process yet, and a count of the builds."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(_pyzcache, "_PYZ", {})
    builds = {"n": 0}
    real = _pyzcache._build_pyz

    def counting(sources: dict[str, str], compiled: bool) -> bytes:
        builds["n"] += 1
        return real(sources, compiled)

    monkeypatch.setattr(_pyzcache, "_build_pyz", counting)
    yield builds


def _cached_files(tmp_path: t.Any) -> list[str]:
    cache = tmp_path / "xdg" / "detached.jobs"
    return sorted(os.listdir(cache)) if cache.exists() else []


def test_supervisor_pyz_is_built_once_and_read_from_the_cache(fresh_pyz: dict, tmp_path: t.Any, monkeypatch: pytest.MonkeyPatch) -> None:
    first = _pyzcache.supervisor_pyz(compiled=True)
    [name] = _cached_files(tmp_path)
    path = tmp_path / "xdg" / "detached.jobs" / name
    assert name.startswith("supervisor-") and name.endswith(".pyz")
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert os.stat(path.parent).st_mode & 0o777 == 0o700
    assert path.read_bytes() == first
    monkeypatch.setattr(_pyzcache, "_PYZ", {})  # a new process: only the cache is left
    assert _pyzcache.supervisor_pyz(compiled=True) == first
    assert fresh_pyz["n"] == 1
    # Source and bytecode are kept apart.
    _pyzcache.supervisor_pyz(compiled=False)
    assert fresh_pyz["n"] == 2 and len(_cached_files(tmp_path)) == 2


def test_supervisor_pyz_cache_key_follows_the_code(fresh_pyz: dict, tmp_path: t.Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _pyzcache.supervisor_pyz(compiled=True)
    real = _pyzcache._module_source
    monkeypatch.setattr(_pyzcache, "_module_source", lambda name: real(name) + ("\n# changed\n" if name == "_supervisor" else ""))
    monkeypatch.setattr(_pyzcache, "_PYZ", {})
    _pyzcache.supervisor_pyz(compiled=True)
    assert fresh_pyz["n"] == 2 and len(_cached_files(tmp_path)) == 2


def test_supervisor_pyz_rebuilt_when_the_cached_file_is_cut_short(fresh_pyz: dict, tmp_path: t.Any, monkeypatch: pytest.MonkeyPatch) -> None:
    whole = _pyzcache.supervisor_pyz(compiled=True)
    [name] = _cached_files(tmp_path)
    path = tmp_path / "xdg" / "detached.jobs" / name
    path.write_bytes(whole[: len(whole) // 2])
    monkeypatch.setattr(_pyzcache, "_PYZ", {})
    assert _pyzcache.supervisor_pyz(compiled=True) == whole
    assert fresh_pyz["n"] == 2 and path.read_bytes() == whole


@pytest.mark.parametrize("mode", [0o770, 0o777])
def test_supervisor_pyz_cache_writable_by_others_is_not_used(fresh_pyz: dict, tmp_path: t.Any, monkeypatch: pytest.MonkeyPatch, mode: int) -> None:
    whole = _pyzcache.supervisor_pyz(compiled=True)
    cache = tmp_path / "xdg" / "detached.jobs"
    [name] = _cached_files(tmp_path)
    os.chmod(cache, mode)
    (cache / name).write_bytes(b"not the supervisor")  # what another user could have put there
    monkeypatch.setattr(_pyzcache, "_PYZ", {})
    assert _pyzcache.supervisor_pyz(compiled=True) == whole
    assert fresh_pyz["n"] == 2
    assert (cache / name).read_bytes() == b"not the supervisor"  # nothing written into it either


def test_supervisor_pyz_cache_file_writable_by_others_is_not_used(fresh_pyz: dict, tmp_path: t.Any, monkeypatch: pytest.MonkeyPatch) -> None:
    whole = _pyzcache.supervisor_pyz(compiled=True)
    [name] = _cached_files(tmp_path)
    os.chmod(tmp_path / "xdg" / "detached.jobs" / name, 0o666)
    monkeypatch.setattr(_pyzcache, "_PYZ", {})
    assert _pyzcache.supervisor_pyz(compiled=True) == whole
    assert fresh_pyz["n"] == 2


def test_supervisor_pyz_without_a_usable_cache(fresh_pyz: dict, tmp_path: t.Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # The cache directory's place is a file: nothing can be kept, the zip is built each time.
    (tmp_path / "xdg").mkdir()
    (tmp_path / "xdg" / "detached.jobs").write_text("a file")
    whole = _pyzcache.supervisor_pyz(compiled=True)
    monkeypatch.setattr(_pyzcache, "_PYZ", {})
    assert _pyzcache.supervisor_pyz(compiled=True) == whole
    assert fresh_pyz["n"] == 2
    # No home at all (a relative XDG_CACHE_HOME is ignored, as the spec says).
    monkeypatch.setenv("XDG_CACHE_HOME", "relative")
    monkeypatch.setenv("HOME", "")
    monkeypatch.setattr(os.path, "expanduser", lambda p: p)
    assert _pyzcache._cache_dir() is None
    monkeypatch.setattr(_pyzcache, "_PYZ", {})
    assert _pyzcache.supervisor_pyz(compiled=True) == whole


def test_jobs_start_from_the_cached_supervisor(fresh_pyz: dict, live_store: js.JobStore, monkeypatch: pytest.MonkeyPatch) -> None:
    _pyzcache.supervisor_pyz(compiled=True)
    monkeypatch.setattr(_pyzcache, "_PYZ", {})
    [started] = _launch.start(live_store, [cmd(["sh", "-c", "echo cached"])])
    assert fresh_pyz["n"] == 1
    done = wait_done(live_store, started["ansible_job_id"])
    assert done["stdout"].strip() == "cached" and done["detached"]["state"] == "succeeded"


def test_module_source_from_the_file_when_the_loader_keeps_none(monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    from ansible_collections.detached.jobs.plugins.module_utils import _supervisor

    with open(_supervisor.__file__, encoding="utf-8") as f:
        expected = f.read()
    monkeypatch.delitem(sys.modules, _supervisor.__name__)
    monkeypatch.setattr(_pyzcache.importlib.util, "find_spec", lambda name: types.SimpleNamespace(loader=None))
    assert _pyzcache._module_source("_supervisor") == expected


# --- the host side of wait: when a round returns ----------------------------------------
@pytest.mark.parametrize(
    ("until", "fast", "returns_with"),
    [
        ("any", "true", {"fast"}),  # the first job that ends
        ("bad", "true", {"fast", "slow"}),  # a success is no reason to come back early
        ("bad", "false", {"fast"}),  # a failure is
        ("all", "false", {"fast", "slow"}),  # only when every job has ended
    ],
)
def test_a_wait_round_returns_when_the_controller_has_something_to_do(tmp_path: t.Any, until: str, fast: str, returns_with: set) -> None:
    from ansible_collections.detached.jobs.plugins.module_utils import _ops

    live_store = js.JobStore(str(tmp_path / "jobs"))
    gate = tmp_path / "gate"
    try:
        quick, slow = _launch.start(
            live_store,
            [ctl.JobSpec({"argv": [fast]}), ctl.JobSpec({"argv": ["sh", "-c", f"until [ -e {gate} ]; do sleep 0.02; done"]})],
        )
        jids = {"fast": quick["ansible_job_id"], "slow": slow["ansible_job_id"]}
        deadline = time.monotonic() + 30
        while not ctl.status(live_store, jids["fast"])["finished"]:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        # The fast job has ended; the slow one ends half a second into the round, when its gate
        # opens: the round sees it end only if it did not return at once for the fast one.
        import threading

        opener = threading.Timer(0.5, gate.touch)
        opener.start()
        views, errors = _ops.long_poll(live_store, list(jids.values()), 30, persist=True, until=until)
        opener.join()
        assert not errors
        assert {k for k, jid in jids.items() if views[jid]["finished"]} == returns_with
    finally:
        gate.touch()
        kill_leftovers(live_store)
