# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""Unit tests of _supervisor: results read from output files, output limits, non-UTF-8 output, signals; in-process and with real jobs."""

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
from ansible_collections.detached.jobs.plugins.module_utils import _process as proc
from ansible_collections.detached.jobs.plugins.module_utils import _slots as slots
from ansible_collections.detached.jobs.plugins.module_utils import _supervisor as sup
from ansible_collections.detached.jobs.plugins.module_utils import _tmpdirs as tmpdirs
from ansible_collections.detached.jobs.tests.unit.plugins.module_utils._jobs import wait_done

JID = "j123456789012.4242"


def run_job(live_store: js.JobStore, spec: dict, timeout: float = 30.0) -> dict:
    (result,) = _launch.start(live_store, [ctl.JobSpec(spec)])
    assert not result.get("failed"), result
    return wait_done(live_store, result["ansible_job_id"], timeout)


def module_job(source: str, **extra: t.Any) -> dict:
    payload = base64.b64encode(textwrap.dedent(source).encode()).decode()
    return dict({"module": "test.fake", "payload": payload, "interpreter": [sys.executable], "style": "new"}, **extra)


# The pure shaping of results (module output parsing, messages) is tested in test__results.py.
JUNK = "Module invocation had junk after the JSON data: "


# --- results built from output files (in process, real files) -----------------------------
def _supervisor(live_store: js.JobStore, mode: str = "module", limit: int | None = None, **files: bytes) -> sup.Supervisor:
    s = sup.Supervisor({"async_dir": live_store.path, "jid": JID, "mode": mode, "output_limit": limit, "cmd": ["x"], "argv": ["x"]})
    for suffix, data in files.items():
        live_store.create_private(live_store.extra_path(JID, suffix), data)
    return s


def test_module_result_with_junk(live_store: js.JobStore) -> None:
    s = _supervisor(live_store, stdout=b'MOTD\n{"changed": true, "x": 1}\nbye\n', stderr=b"a warning\n")
    keep: dict = {}
    assert s._module_result(0, keep) == {"changed": True, "x": 1, "stderr": "a warning\n", "warnings": [JUNK + "bye"]}
    assert keep == {}


def test_module_result_without_json_keeps_raw_output(live_store: js.JobStore) -> None:
    s = _supervisor(live_store, stdout=b"no json here\n", stderr=b"Traceback (most recent call last):\nKeyError: 'x'\n")
    keep: dict = {}
    result = s._module_result(1, keep)
    assert result["failed"] is True and "did not return a JSON result (rc=1)" in result["msg"]
    assert result["module_stdout"] == "no json here\n"
    assert "KeyError" in result["module_stderr"]
    assert result["rc"] == 1
    assert keep == {"stdout": live_store.extra_path(JID, "stdout")}


def test_module_result_over_the_limit(live_store: js.JobStore) -> None:
    data = json.dumps({"big": "x" * 5000}).encode()
    s = _supervisor(live_store, limit=1000, stdout=data, stderr=b"")
    keep: dict = {}
    result = s._module_result(0, keep)
    assert result["failed"] is True
    assert str(len(data)) in result["msg"] and "output_limit (1000)" in result["msg"]
    assert keep == {"stdout": live_store.extra_path(JID, "stdout")}


def test_command_output_tail(live_store: js.JobStore) -> None:
    lines = b"".join(b"line %05d\n" % i for i in range(10000))  # 110000 bytes
    s = _supervisor(live_store, mode="command", limit=1100, stdout=lines, stderr=b"small\n")
    keep: dict = {}
    result = s._command_result(0, 1.0, 2.5, keep)
    path = live_store.extra_path(JID, "stdout")
    note = f"[detached.jobs: first {len(lines) - 1100} of {len(lines)} bytes omitted; full output in {path}]\n"
    assert result["stdout"] == note + lines[-1100:].decode().rstrip("\n")
    assert result["stdout"].endswith("line 09999")
    assert result["stderr"] == "small"
    assert keep == {"stdout": path}
    assert result["delta"] == "0:00:01.500000"


def test_command_output_not_utf8(live_store: js.JobStore) -> None:
    s = _supervisor(live_store, mode="command", stdout=b"caf\xe9 \xff\n", stderr=b"ok\n")
    keep: dict = {}
    result = s._command_result(1, 1.0, 1.0, keep)
    assert result["stdout"] == "caf\ufffd \ufffd"
    assert result["failed"] is True and result["rc"] == 1
    assert keep == {"stdout": live_store.extra_path(JID, "stdout")}


# --- real jobs ------------------------------------------------------------------------
def test_module_job_with_junk_around_json(live_store: js.JobStore) -> None:
    view = run_job(live_store, module_job('print("banner")\nprint(\'{"changed": true, "answer": 42}\')\nprint("bye")\n'))
    assert view["answer"] == 42 and view["changed"] is True
    assert view["detached"]["state"] == ids.SUCCEEDED
    assert os.listdir(live_store.path) == [view["ansible_job_id"]]


def test_module_job_without_json(live_store: js.JobStore) -> None:
    view = run_job(live_store, module_job('import sys\nprint("just text")\nsys.stderr.write("warn\\n")\n'))
    assert view["failed"] is True and view["detached"]["state"] == ids.FAILED
    assert "did not return a JSON result" in view["msg"]
    assert view["module_stdout"] == "just text\n" and view["module_stderr"] == "warn\n"
    kept = view["detached"]["files"]["stdout"]
    with open(kept, "rb") as f:
        assert f.read() == b"just text\n"


def test_module_job_traceback(live_store: js.JobStore) -> None:
    view = run_job(live_store, module_job("1 / 0\n"))
    assert view["failed"] is True and view["rc"] == 1
    assert "Traceback" in view["module_stderr"] and "ZeroDivisionError" in view["module_stderr"]
    assert view["detached"]["state"] == ids.FAILED


def test_module_job_failed_without_msg(live_store: js.JobStore) -> None:
    source = 'import json, sys\nprint(json.dumps({"failed": True, "exception": {"event": {"msg": "it broke"}}}))\nsys.exit(1)\n'
    view = run_job(live_store, module_job(source))
    assert view["failed"] is True and view["msg"] == "the module failed: it broke"
    assert view["detached"]["state"] == ids.FAILED


def test_module_job_over_the_output_limit(live_store: js.JobStore) -> None:
    view = run_job(live_store, module_job('import json\nprint(json.dumps({"big": "y" * 50000}))\n', output_limit=1000))
    assert view["failed"] is True and "output_limit (1000)" in view["msg"]
    kept = view["detached"]["files"]["stdout"]
    assert os.path.getsize(kept) > 50000


def test_command_job_output_limit_and_non_utf8(live_store: js.JobStore) -> None:
    script = "i=0; while [ $i -lt 3000 ]; do echo line$i; i=$((i+1)); done; printf 'caf\\351\\n' >&2"
    view = run_job(live_store, {"argv": ["sh", "-c", script], "output_limit": 500})
    files = view["detached"]["files"]
    assert view["stdout"].startswith("[detached.jobs: first ")
    assert view["stdout"].endswith("line2999")
    assert view["stderr"] == "caf\ufffd"
    assert set(files) == {"stdout", "stderr"}
    with open(files["stdout"], "rb") as f:
        assert f.read().startswith(b"line0\nline1\n")
    with open(files["stderr"], "rb") as f:
        assert f.read() == b"caf\xe9\n"
    jid = view["ansible_job_id"]
    assert sorted(os.listdir(live_store.path)) == sorted([jid, f"{jid}.stdout", f"{jid}.stderr"])
    # removing the job removes the kept output too
    assert sorted(live_store.remove(jid)) == sorted([live_store.job_path(jid), files["stdout"], files["stderr"]])


def test_job_killed_by_another_signal_failed(live_store: js.JobStore) -> None:
    view = run_job(live_store, {"argv": ["sh", "-c", "kill -USR1 $$"]})
    assert view["detached"]["state"] == ids.FAILED and view["detached"]["signal"] == signal.SIGUSR1
    assert "SIGUSR1" in view["msg"] and view["rc"] == -signal.SIGUSR1


def test_job_killed_by_sigkill_vanished_and_group_stopped(live_store: js.JobStore, tmp_path: t.Any) -> None:
    """SIGKILL from outside (the OOM killer's signature): vanished, and the rest of its process group is stopped."""
    pids = tmp_path / "pids"
    view = run_job(live_store, {"argv": ["sh", "-c", f"sleep 300 & echo $! > {pids}; kill -KILL $$"], "grace": 1})
    assert view["detached"]["state"] == ids.VANISHED and "SIGKILL" in view["msg"]
    sleeper = int(pids.read_text())
    deadline = time.monotonic() + 10
    while proc.is_alive(sleeper):
        assert time.monotonic() < deadline, "the job's process group survived"
        time.sleep(0.02)


def test_supervisor_reports_a_bad_spec(tmp_path: t.Any) -> None:
    pyz = tmp_path / "sup.pyz"
    pyz.write_bytes(_pyzcache.supervisor_pyz(compiled=True))
    for stdin in (b"not json", b'{"async_dir": "/nonexistent/x", "jid": "../bad"}', b"{}"):
        res = subprocess.run([sys.executable, "-I", "-S", str(pyz)], input=stdin, capture_output=True, timeout=30, check=False)
        assert res.returncode == 1
        reply = json.loads(res.stdout.decode().strip().splitlines()[-1])
        assert reply["failed"] is True and reply["msg"].startswith("supervisor failed to start")


def test_supervisor_pyz_runs_from_source_too(live_store: js.JobStore) -> None:
    """Another interpreter than this one gets source, not bytecode: it must run the same."""
    if os.path.realpath(sys.executable) == sys.executable:
        pytest.skip("no second path to this interpreter")
    (result,) = _launch.start(live_store, [ctl.JobSpec({"argv": ["echo", "src"]})], python=os.path.realpath(sys.executable))
    jid = result["ansible_job_id"]
    deadline = time.monotonic() + 30
    while not (view := ctl.status(live_store, jid))["finished"]:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert view["stdout"] == "src"


# --- retries -----------------------------------------------------------------------------
def _counting(tmp_path: t.Any, succeed_at: int) -> list:
    counter = tmp_path / "count"
    script = f'n=$(cat {counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {counter}; echo "try $n"; echo "err $n" >&2; [ $n -ge {succeed_at} ]'
    return ["sh", "-c", script]


def test_retries_record_every_attempt_and_return_the_last(live_store: js.JobStore, tmp_path: t.Any) -> None:
    view = run_job(live_store, {"argv": _counting(tmp_path, 3), "retries": 4, "retry_delay": 0.05, "backoff": 2})
    meta = view["detached"]
    assert meta["state"] == ids.SUCCEEDED
    assert view["stdout"] == "try 3" and view["rc"] == 0
    assert meta["attempt"] == 3
    attempts = meta["attempts"]
    assert [a["attempt"] for a in attempts] == [1, 2, 3]
    assert [a["rc"] for a in attempts] == [1, 1, 0]
    assert [a["state"] for a in attempts] == [ids.FAILED, ids.FAILED, ids.SUCCEEDED]
    assert [a["tail"] for a in attempts] == [{"stdout": [f"try {n}"], "stderr": [f"err {n}"]} for n in (1, 2, 3)]
    # The delays, from the recorded times: 0.05 after the first failure, then 0.1.
    for n, (before, after) in enumerate(zip(attempts, attempts[1:])):
        assert after["started_at"] - before["ended_at"] >= 0.05 * 2**n
    assert "retry_at" not in meta
    assert not os.path.exists(live_store.extra_path(view["ansible_job_id"], "stdout"))


def test_retries_give_up_with_the_last_failure(live_store: js.JobStore, tmp_path: t.Any) -> None:
    view = run_job(live_store, {"argv": _counting(tmp_path, 99), "retries": 2, "retry_delay": 0})
    meta = view["detached"]
    assert meta["state"] == ids.FAILED and view["rc"] == 1
    assert len(meta["attempts"]) == 3
    assert view["msg"] == "non-zero return code (the last of 3 attempts)"


def test_a_timeout_is_not_retried_unless_asked(live_store: js.JobStore) -> None:
    view = run_job(live_store, {"argv": ["sleep", "30"], "timeout": 1, "grace": 1, "retries": 2, "retry_delay": 0})
    assert view["detached"]["state"] == ids.TIMEOUT
    assert len(view["detached"]["attempts"]) == 1
    view = run_job(live_store, {"argv": ["sleep", "30"], "timeout": 1, "grace": 1, "retries": 1, "retry_delay": 0, "retry_on_timeout": True})
    assert view["detached"]["state"] == ids.TIMEOUT
    assert [a["state"] for a in view["detached"]["attempts"]] == [ids.TIMEOUT, ids.TIMEOUT]


def test_total_timeout_stops_the_running_attempt(live_store: js.JobStore) -> None:
    view = run_job(live_store, {"argv": ["sleep", "30"], "timeout": 60, "grace": 1, "retries": 3, "retry_delay": 0, "total_timeout": 1})
    assert view["detached"]["state"] == ids.TIMEOUT
    assert "total_timeout of 1s" in view["msg"]
    assert len(view["detached"]["attempts"]) == 1


def test_a_kill_in_the_retry_delay_stops_the_retries(live_store: js.JobStore, tmp_path: t.Any) -> None:
    (started,) = _launch.start(live_store, [ctl.JobSpec({"argv": _counting(tmp_path, 99), "retries": 3, "retry_delay": 60})])
    jid = started["ansible_job_id"]
    deadline = time.monotonic() + 30
    while not ctl.status(live_store, jid)["detached"].get("retry_at"):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    view, changed = ctl.kill(live_store, jid)
    assert changed and view["detached"]["state"] == ids.KILLED
    assert "in the delay before attempt 2" in view["msg"]
    assert len(view["detached"]["attempts"]) == 1
    assert (tmp_path / "count").read_text().strip() == "1"


# --- slots -------------------------------------------------------------------------------
def test_slot_jobs_queue_run_in_order_and_free_their_slot(live_store: js.JobStore, tmp_path: t.Any) -> None:
    log = tmp_path / "log"
    gate = tmp_path / "gate"
    cmd = f'echo "start $DETACHED_JOBS_JID" >> {log}; while [ ! -e {gate} ]; do sleep 0.02; done; echo "end $DETACHED_JOBS_JID" >> {log}'
    specs = [ctl.JobSpec({"argv": ["sh", "-c", cmd], "slot": "db", "slot_limit": 2}) for dummy in range(4)]
    started = _launch.start(live_store, specs)
    jids = [s["ansible_job_id"] for s in started]
    assert [s["detached"]["state"] for s in started] == [ids.RUNNING, ids.RUNNING, ids.QUEUED, ids.QUEUED]
    queued = ctl.status(live_store, jids[3])
    assert not queued["finished"] and queued["detached"]["slot"] == "db" and queued["detached"]["child_pid"] is None
    gate.touch()
    views = [wait_done(live_store, jid) for jid in jids]
    assert [v["detached"]["state"] for v in views] == [ids.SUCCEEDED] * 4
    events = log.read_text().split("\n")[:-1]
    running = peak = 0
    for event in events:
        running += 1 if event.startswith("start") else -1
        peak = max(peak, running)
    assert peak == 2
    assert os.listdir(os.path.join(live_store.path, slots.SLOTS_DIR, "db")) == [js.LOCK_FILE]
    # One at a time, they run in the order they were started.
    log.unlink()
    started = _launch.start(live_store, [ctl.JobSpec({"argv": ["sh", "-c", cmd], "slot": "one"}) for dummy in range(5)])
    jids = [s["ansible_job_id"] for s in started]
    for jid in jids:
        wait_done(live_store, jid)
    assert log.read_text().split("\n")[:-1] == [f"{what} {jid}" for jid in jids for what in ("start", "end")]


def test_a_queued_job_whose_supervisor_died_never_runs(live_store: js.JobStore, tmp_path: t.Any) -> None:
    gate = tmp_path / "gate"
    ran = tmp_path / "ran"
    first, second, third = _launch.start(
        live_store,
        [
            ctl.JobSpec({"argv": ["sh", "-c", f"while [ ! -e {gate} ]; do sleep 0.02; done"], "slot": "db"}),
            ctl.JobSpec({"argv": ["touch", str(ran)], "slot": "db"}),
            ctl.JobSpec({"argv": ["true"], "slot": "db"}),
        ],
    )
    os.kill(second["detached"]["pid"], signal.SIGKILL)
    view = wait_done(live_store, second["ansible_job_id"])
    assert view["detached"]["state"] == ids.VANISHED
    assert "queued for slot 'db' and never ran" in view["msg"]
    gate.touch()
    assert wait_done(live_store, third["ansible_job_id"])["detached"]["state"] == ids.SUCCEEDED
    assert wait_done(live_store, first["ansible_job_id"])["detached"]["state"] == ids.SUCCEEDED
    assert not ran.exists()


def test_queue_timeout(live_store: js.JobStore, tmp_path: t.Any) -> None:
    gate = tmp_path / "gate"
    first, second = _launch.start(
        live_store,
        [
            ctl.JobSpec({"argv": ["sh", "-c", f"while [ ! -e {gate} ]; do sleep 0.02; done"], "slot": "db"}),
            ctl.JobSpec({"argv": ["true"], "slot": "db", "queue_timeout": 0.3, "timeout": 5}),
        ],
    )
    view = wait_done(live_store, second["ansible_job_id"])
    gate.touch()
    assert view["detached"]["state"] == ids.TIMEOUT
    assert "queue_timeout of 0.3s" in view["msg"] and "never ran" in view["msg"]
    assert wait_done(live_store, first["ansible_job_id"])["detached"]["state"] == ids.SUCCEEDED


@pytest.mark.parametrize(("key", "value"), [("retries", -1), ("slot_limit", 0), ("backoff", 0.5), ("queue_timeout", "soon"), ("retry_delay", True)])
def test_bad_retry_and_slot_options_name_the_value(key: str, value: object) -> None:
    with pytest.raises(ids.JobError, match=f"invalid {key} {value!r}"):
        ctl.JobSpec({"argv": ["true"], key: value})


# --- a module attempt's temporary directory ----------------------------------------------
MODULE_TMPDIR = """
    import json, os, sys
    path = os.environ["TMPDIR"]
    with open(os.path.join(path, "made-by-the-module"), "w") as f:
        f.write("x")
    with open(sys.argv[1] if len(sys.argv) > 1 else %r, "a") as f:
        f.write(path + "\\n")
    print(json.dumps({"failed": os.path.getsize(f.name) < 2 * len(path + "\\n"), "msg": path}))
"""


def test_module_attempts_have_a_tmpdir_of_their_own_removed_after(live_store: js.JobStore, tmp_path: t.Any, monkeypatch: t.Any) -> None:
    base = tmp_path / "tmp"
    base.mkdir()
    monkeypatch.setenv("TMPDIR", str(base))
    seen = tmp_path / "seen"
    view = run_job(live_store, module_job(MODULE_TMPDIR % str(seen), retries=1, retry_delay=0))
    jid = view["ansible_job_id"]
    assert view["detached"]["state"] == ids.SUCCEEDED, view
    # The first attempt failed (on purpose), the second succeeded: each had its own directory.
    assert seen.read_text().splitlines() == [str(base / f"detached.jobs-{jid}-{n}") for n in (1, 2)]
    assert list(base.iterdir()) == []


def _start_module_in_its_tmpdir(live_store: js.JobStore, base: t.Any) -> tuple[dict, t.Any]:
    """A module job that writes a file into its TMPDIR and sleeps; returns its start result and
    its own directory (under base), once the file is there."""
    source = """
        import os, time
        open(os.path.join(os.environ["TMPDIR"], "left-behind"), "w").close()
        time.sleep(600)
    """
    (started,) = _launch.start(live_store, [ctl.JobSpec(module_job(source))])
    jid = started["ansible_job_id"]
    own = base / f"detached.jobs-{jid}-1"
    deadline = time.monotonic() + 30
    while not (own / "left-behind").exists():
        assert time.monotonic() < deadline, "the module never ran"
        time.sleep(0.05)
    return started, own


def test_a_killed_module_leaves_no_temporary_files(live_store: js.JobStore, tmp_path: t.Any, monkeypatch: t.Any) -> None:
    base = tmp_path / "tmp"
    base.mkdir()
    monkeypatch.setenv("TMPDIR", str(base))
    started, own = _start_module_in_its_tmpdir(live_store, base)
    jid = started["ansible_job_id"]
    os.kill(live_store.read(jid)["detached"]["pid"], signal.SIGTERM)  # what async_status mode=kill sends
    view = wait_done(live_store, jid, 30)
    assert view["detached"]["state"] == ids.KILLED
    assert list(base.iterdir()) == []


def test_command_jobs_keep_their_tmpdir(live_store: js.JobStore, tmp_path: t.Any, monkeypatch: t.Any) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    view = run_job(live_store, {"argv": ["sh", "-c", 'echo "$TMPDIR"']})
    assert view["stdout"] == str(tmp_path)


def test_a_taken_tmpdir_name_runs_the_module_without_one(tmp_path: t.Any, monkeypatch: t.Any) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    (tmp_path / f"detached.jobs-{JID}-1").mkdir()
    assert tmpdirs.make_tmpdir(JID, 1) is None
    assert tmpdirs.make_tmpdir(JID, 2) == str(tmp_path / f"detached.jobs-{JID}-2")


def test_the_tmpdir_of_a_supervisor_killed_with_kill_9_goes_with_the_cleanup(live_store: js.JobStore, tmp_path: t.Any, monkeypatch: t.Any) -> None:
    from ansible_collections.detached.jobs.plugins.module_utils import _ops

    base = tmp_path / "tmp"
    base.mkdir()
    monkeypatch.setenv("TMPDIR", str(base))
    started, own = _start_module_in_its_tmpdir(live_store, base)
    jid = started["ansible_job_id"]
    assert started["detached"]["tmpdir"] == str(own)
    os.kill(started["detached"]["pid"], signal.SIGKILL)
    job, changed = ctl.kill(live_store, jid)  # the job's process ran on unsupervised
    assert changed and job["detached"]["state"] == ids.KILLED
    assert (own / "left-behind").exists()  # nobody removed it yet
    answer = _ops.status({"jid": jid, "mode": "cleanup", "_async_dir": live_store.path})
    assert str(own) in answer["removed"], answer
    assert list(base.iterdir()) == []
