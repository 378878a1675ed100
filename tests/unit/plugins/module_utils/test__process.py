# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""Unit tests of _process with real processes: identity, liveness, process-tree kill, the subreaper, no /proc."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import typing as t

import pytest

from ansible_collections.detached.jobs.plugins.module_utils import _process as proc

LINUX = sys.platform.startswith("linux")
needs_linux = pytest.mark.skipif(not LINUX, reason="Linux /proc")
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))


def _gone(pid: int, start: str | None, timeout: float = 10.0) -> bool:
    """Poll until (pid, start) is no longer a live process; False if it still is after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.is_alive(pid, start):
            return True
        time.sleep(0.02)
    return False


def _reaper(p: subprocess.Popen) -> t.Callable[[], None]:
    """A reap callback for kill_tree: collect p once it exits (so its group empties)."""

    def reap() -> None:
        p.poll()

    return reap


@pytest.fixture
def child() -> t.Iterator[subprocess.Popen]:
    p = subprocess.Popen(["sleep", "300"])
    yield p
    if p.poll() is None:
        p.kill()
    p.wait()


# --- identity -------------------------------------------------------------------
@needs_linux
def test_boot_id() -> None:
    bid = proc.boot_id()
    assert bid is not None
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", bid)
    with open("/proc/sys/kernel/random/boot_id") as f:
        assert f.read().strip() == bid
    assert proc.boot_id() == bid


@needs_linux
def test_start_time_of_a_real_child(child: subprocess.Popen) -> None:
    start = proc.start_time(child.pid)
    assert start is not None and start.isdigit()
    with open(f"/proc/{child.pid}/stat") as f:
        stat = f.read()
    assert stat[stat.rfind(")") + 2 :].split()[19] == start
    assert proc.start_time(child.pid) == start  # stable
    assert int(start) >= int(proc.start_time(os.getpid()) or 0)  # started after this process
    assert proc.provable(child.pid, start) and not proc.provable(child.pid, None) and not proc.provable(child.pid, str(int(start) + 1))


@needs_linux
def test_start_time_with_odd_command_name(tmp_path: t.Any) -> None:
    """The command name in /proc/<pid>/stat may hold spaces and ')': fields are counted from the last ')'."""
    exe = tmp_path / "a) b (c"
    shutil.copy("/bin/sleep", exe)
    p = subprocess.Popen([str(exe), "300"])
    try:
        start = proc.start_time(p.pid)
        assert start is not None and start.isdigit()
        assert proc.is_alive(p.pid, start)
    finally:
        p.kill()
        p.wait()


def test_start_time_of_a_missing_process() -> None:
    p = subprocess.Popen(["true"])
    p.wait()
    assert proc.start_time(p.pid) is None


# --- liveness -------------------------------------------------------------------
def test_is_alive_for_a_live_child(child: subprocess.Popen) -> None:
    start = proc.start_time(child.pid)
    assert proc.is_alive(child.pid)
    assert proc.is_alive(child.pid, start)
    assert proc.is_alive(child.pid, start, proc.boot_id())


def test_is_alive_false_after_exit(child: subprocess.Popen) -> None:
    start = proc.start_time(child.pid)
    child.kill()
    child.wait()
    assert not proc.is_alive(child.pid)
    assert not proc.is_alive(child.pid, start, proc.boot_id())


@needs_linux
def test_is_alive_false_for_a_zombie(child: subprocess.Popen) -> None:
    start = proc.start_time(child.pid)
    os.kill(child.pid, signal.SIGKILL)
    # not waited for: a zombie until reaped, and kill(pid, 0) still succeeds on it
    deadline = time.monotonic() + 10
    while proc._stat_fields(child.pid) and proc._stat_fields(child.pid)[0] != "Z":  # type: ignore[index]
        assert time.monotonic() < deadline
        time.sleep(0.01)
    os.kill(child.pid, 0)
    assert not proc.is_alive(child.pid, start)


@needs_linux
def test_is_alive_false_when_start_time_differs(child: subprocess.Popen) -> None:
    """pid reuse: the pid is live but its start time is not the recorded one."""
    start = proc.start_time(child.pid)
    assert start is not None
    assert not proc.is_alive(child.pid, str(int(start) - 1))
    assert not proc.is_alive(child.pid, "0")
    assert proc.is_alive(child.pid, start)


@needs_linux
def test_is_alive_false_when_boot_id_differs(child: subprocess.Popen) -> None:
    start = proc.start_time(child.pid)
    other_boot = "00000000-0000-4000-8000-000000000000"
    assert other_boot != proc.boot_id()
    assert not proc.is_alive(child.pid, start, other_boot)
    assert not proc.is_alive(os.getpid(), None, other_boot)


@pytest.mark.parametrize("pid", [0, -1, None, True, False, "123", 1.0, [1]])
def test_is_alive_refuses_non_pids(pid: object) -> None:
    assert proc.is_alive(pid) is False


def test_is_alive_for_another_users_process() -> None:
    """pid 1 runs as root; for other users kill(1, 0) is EPERM, which still means alive."""
    assert proc.is_alive(1)
    assert proc._exists(1)


# --- descendants and kill_tree ------------------------------------------------------
def _read_pids(stream: t.IO[str], count: int) -> list[int]:
    pids: list[int] = []
    while len(pids) < count:
        line = stream.readline()
        assert line, f"helper ended early after {pids}"
        pids.extend(int(x) for x in line.split())
    return pids


@needs_linux
def test_descendants(child: subprocess.Popen) -> None:
    p = subprocess.Popen(["sh", "-c", "sleep 300 & echo $!; sleep 300 & echo $!; wait"], stdout=subprocess.PIPE, text=True)
    kids: list[int] = []
    try:
        assert p.stdout is not None
        kids = _read_pids(p.stdout, 2)
        found = proc.descendants(os.getpid())
        assert p.pid in found and child.pid in found
        assert set(kids) <= set(found)
        assert sorted(proc.descendants(p.pid)) == sorted(kids)
        assert os.getpid() not in found
    finally:
        p.kill()
        for k in kids:
            os.kill(k, signal.SIGKILL)
        p.wait()


def test_kill_tree_of_a_process_group() -> None:
    p = subprocess.Popen(["sh", "-c", "sleep 300 & echo $!; sleep 300 & echo $!; wait"], stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert p.stdout is not None
    kids = _read_pids(p.stdout, 2)
    starts = {k: proc.start_time(k) for k in kids}
    proc.kill_tree(p.pid, root=None, grace=5, reap=_reaper(p))
    assert p.wait(timeout=30) == -signal.SIGTERM
    for k in kids:
        assert _gone(k, starts[k])


def test_kill_tree_escalates_to_sigkill() -> None:
    """A process group that ignores SIGTERM (inherited by its children) is killed with SIGKILL after grace."""
    p = subprocess.Popen(
        ["sh", "-c", "trap '' TERM; sleep 300 & echo $!; wait; wait"],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert p.stdout is not None
    (kid,) = _read_pids(p.stdout, 1)  # printed after the trap is set
    start = proc.start_time(kid)
    os.killpg(p.pid, signal.SIGTERM)  # ignored by both
    assert p.poll() is None and proc.is_alive(kid, start)
    proc.kill_tree(p.pid, grace=0.3, reap=_reaper(p))
    assert p.wait(timeout=30) == -signal.SIGKILL
    assert _gone(kid, start)


_SUBREAPER_HELPER = textwrap.dedent(
    """
    import json, os, subprocess, sys, time
    from ansible_collections.detached.jobs.plugins.module_utils import _process as proc

    use_root = sys.argv[1] == "root"
    subreaper = proc.set_subreaper()
    # a job in a process group of its own; its child leaves the group with setsid
    job = subprocess.Popen(
        ["sh", "-c", "setsid sleep 300 & echo $!; sleep 300 & echo $!; wait"],
        stdout=subprocess.PIPE, text=True, start_new_session=True,
    )
    escapee, sibling = int(job.stdout.readline()), int(job.stdout.readline())
    deadline = time.monotonic() + 10
    while os.getsid(escapee) != escapee:  # setsid has not run yet
        assert time.monotonic() < deadline
        time.sleep(0.01)
    pids = {"job": job.pid, "escapee": escapee, "sibling": sibling, "subreaper": subreaper,
            "starts": {str(p): proc.start_time(p) for p in (job.pid, escapee, sibling)},
            "descendants": proc.descendants(os.getpid())}
    def reap():
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            pass
    pids["signalled"] = proc.kill_tree(job.pid, root=os.getpid() if use_root else None, grace=5, reap=reap)
    print(json.dumps(pids), flush=True)
    """
)


@needs_linux
def test_kill_tree_finds_a_setsid_grandchild_through_the_subreaper() -> None:
    out = subprocess.run([sys.executable, "-c", _SUBREAPER_HELPER, "root"], env=ENV, stdout=subprocess.PIPE, check=True, timeout=60).stdout
    info = json.loads(out)
    assert info["subreaper"] is True
    assert info["escapee"] in info["descendants"]
    assert info["escapee"] in info["signalled"]
    for key in ("job", "escapee", "sibling"):
        pid = info[key]
        assert _gone(pid, info["starts"][str(pid)]), f"{key} {pid} survived"


@needs_linux
def test_kill_tree_without_root_misses_the_setsid_grandchild() -> None:
    """The control: killing the process group alone leaves the escapee running (why root matters)."""
    out = subprocess.run([sys.executable, "-c", _SUBREAPER_HELPER, "group"], env=ENV, stdout=subprocess.PIPE, check=True, timeout=60).stdout
    info = json.loads(out)
    escapee, start = info["escapee"], info["starts"][str(info["escapee"])]
    try:
        assert proc.is_alive(escapee, start)
        assert _gone(info["job"], info["starts"][str(info["job"])])
        assert _gone(info["sibling"], info["starts"][str(info["sibling"])])
    finally:
        if proc.is_alive(escapee, start):
            os.kill(escapee, signal.SIGKILL)
    assert _gone(escapee, start)


@needs_linux
def test_marked_processes_are_found_and_killed_without_their_parent() -> None:
    """A process that left with setsid and whose parent is gone is found by its marker and killed."""
    env = dict(os.environ, **{proc.MARKER: "j1.42"})
    p = subprocess.Popen(["sleep", "61"], env=env, start_new_session=True)
    other = subprocess.Popen(["sleep", "62"], env=dict(os.environ, **{proc.MARKER: "j1.420"}), start_new_session=True)
    try:
        start = proc.start_time(p.pid)
        deadline = time.monotonic() + 5
        while p.pid not in proc.marked("j1.42") and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.marked("j1.42") == [p.pid]
        assert proc.kill_tree(None, grace=5, jid="j1.42", reap=_reaper(p)) == [p.pid]
        assert _gone(p.pid, start)
        assert other.poll() is None  # another job's marker is not a match
    finally:
        for q in (p, other):
            q.kill()
            q.wait()


def test_kill_tree_of_nothing() -> None:
    p = subprocess.Popen(["true"], start_new_session=True)
    p.wait()
    assert proc.kill_tree(p.pid, grace=5) == []
    assert proc.kill_tree(None, root=None, grace=0) == []


@needs_linux
def test_set_subreaper_in_a_child() -> None:
    code = "import sys; from ansible_collections.detached.jobs.plugins.module_utils import _process as p; sys.exit(0 if p.set_subreaper() else 1)"
    assert subprocess.run([sys.executable, "-c", code], env=ENV, check=False).returncode == 0


def test_signal_name() -> None:
    assert proc.signal_name(signal.SIGKILL) == "SIGKILL"
    assert proc.signal_name(signal.SIGTERM) == "SIGTERM"
    assert proc.signal_name(999) == "signal 999"


# --- no /proc ---------------------------------------------------------------------
def test_without_proc(monkeypatch: pytest.MonkeyPatch, tmp_path: t.Any, child: subprocess.Popen) -> None:
    """/proc unreadable: start times are unknown (None), liveness still works by pid, no descendants."""
    monkeypatch.setattr(proc, "_PROC", str(tmp_path / "noproc"))
    assert proc.start_time(child.pid) is None
    assert proc.is_alive(child.pid)
    assert proc.is_alive(child.pid, "12345")  # an unknown current start time cannot contradict the record
    assert proc.descendants(os.getpid()) == []
    assert proc._parent_map() == {}
    dead = subprocess.Popen(["true"])
    dead.wait()
    assert not proc.is_alive(dead.pid)
    g = subprocess.Popen(["sleep", "300"], start_new_session=True)
    proc.kill_tree(g.pid, root=os.getpid(), grace=5, reap=_reaper(g))
    assert g.wait(timeout=30) == -signal.SIGTERM


def test_without_linux_falls_back_to_ps(monkeypatch: pytest.MonkeyPatch, child: subprocess.Popen) -> None:
    """The non-Linux code path (ps lstart) run here: a start time text, liveness by it."""
    if shutil.which("ps") is None:
        pytest.skip("no ps")
    monkeypatch.setattr(proc, "_IS_LINUX", False)
    start = proc.start_time(child.pid)
    assert start and not start.isdigit()
    assert proc.is_alive(child.pid, start)
    assert not proc.is_alive(child.pid, "Thu Jan  1 00:00:00 1970")
    assert proc.descendants(os.getpid()) == []
    assert proc.set_subreaper() is False
    assert proc.boot_id() is None or isinstance(proc.boot_id(), str)


_NO_PROC_SCRIPT = textwrap.dedent(
    """
    import json, os, subprocess, sys
    from ansible_collections.detached.jobs.plugins.module_utils import _process as proc
    assert not os.path.exists("/proc/self/stat"), "procfs still visible"
    live = subprocess.Popen(["sleep", "300"], start_new_session=True)
    dead = subprocess.Popen(["true"]); dead.wait()
    out = {
        "boot_id": proc.boot_id(),
        "start": proc.start_time(live.pid),
        "alive": proc.is_alive(live.pid, None, None),
        "dead": proc.is_alive(dead.pid),
        "descendants": proc.descendants(os.getpid()),
        "subreaper": proc.set_subreaper(),
    }
    proc.kill_tree(live.pid, root=os.getpid(), grace=5, reap=lambda: live.poll() and None)
    out["killed"] = live.wait()
    print(json.dumps(out))
    """
)


@needs_linux
def test_without_proc_mounted() -> None:
    """A real run with an empty /proc (a private mount namespace): every Linux extra degrades to 'unknown'."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare")
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"cannot unshare a mount namespace here: {probe.stderr.decode(errors='replace').strip()}")
    shell = 'mount -t tmpfs none /proc && exec "$0" -c "$1"'
    res = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", shell, sys.executable, _NO_PROC_SCRIPT],
        env=ENV,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if res.returncode != 0 and "mount" in res.stderr and "Traceback" not in res.stderr:
        pytest.skip(f"cannot mount over /proc here: {res.stderr.strip()}")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out == {"boot_id": None, "start": None, "alive": True, "dead": False, "descendants": [], "subreaper": True, "killed": -signal.SIGTERM}
