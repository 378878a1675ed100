# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""Processes: identity, liveness, process-tree kill, starting them. Private to the detached.jobs collection.

A process is identified by (pid, start time, boot id) so that pid reuse and reboots are caught.
Linux gets exact start times from /proc and a child subreaper; other POSIX systems fall back
to ``ps`` and degrade cleanly (start time or boot id may be unknown, i.e. None).
Standard library only, Python 3.8+.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
import time

from ansible_collections.detached.jobs.plugins.module_utils import _ids as ids

TYPE_CHECKING = False  # typing is not imported at run time: the supervisor stays lean
if TYPE_CHECKING:
    import typing as t

_PROC = "/proc"
_IS_LINUX = sys.platform.startswith("linux")
# Set in the environment of every job's process (and so inherited by all it starts), so that a
# job's processes can still be found once its supervisor, the subreaper, is gone (Linux only).
MARKER = "DETACHED_JOBS_JID"


def boot_id() -> str | None:
    """An id of the current boot, or None where the system offers none."""
    if _IS_LINUX:
        try:
            with open("/proc/sys/kernel/random/boot_id") as f:
                return f.read().strip() or None
        except OSError:
            return None
    out = _run(["sysctl", "-n", "kern.boottime"])
    return out.strip() or None if out else None


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (field 3 'state' is index 0)."""
    try:
        with open(f"{_PROC}/{pid}/stat", "rb") as f:
            data = f.read().decode("ascii", errors="replace")
    except OSError:
        return None
    return data[data.rfind(")") + 2 :].split()


def start_time(pid: int) -> str | None:
    """The start time of pid as an opaque string (clock ticks since boot on Linux), or None if unknown/gone."""
    if _IS_LINUX:
        fields = _stat_fields(pid)
        return fields[19] if fields and len(fields) > 19 else None
    out = _run(["ps", "-o", "lstart=", "-p", str(pid)])
    return " ".join(out.split()) or None if out else None


def _exists(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except OSError as ex:
        return ex.errno == errno.EPERM
    return True


def _zombie(pid: int) -> bool:
    if not _IS_LINUX:
        return False
    fields = _stat_fields(pid)
    return bool(fields) and fields[0] in ("Z", "X")  # type: ignore[index]


def is_alive(pid: object, start: object = None, boot: object = None) -> bool:
    """True if the process recorded as (pid, start, boot) is still the same running process."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    if boot is not None:
        current_boot = boot_id()
        if current_boot is not None and current_boot != boot:
            return False
    if not _exists(pid) or _zombie(pid):
        return False
    if start is not None:
        current = start_time(pid)
        if current is not None and current != start:
            return False
    return True


def provable(pid: object, start: object = None, boot: object = None) -> bool:
    """Whether pid is, provably, the process recorded as (pid, start, boot): the only processes a
    job's record may have signalled. On Linux that needs its start time recorded and matched
    (a record without one could name any process: another user's, or one that reused the id);
    elsewhere, where ps may not give one, a live pid of this boot is trusted (docs/reliability.md)."""
    if not is_alive(pid, start, boot):
        return False
    if not _IS_LINUX:
        return True
    return start is not None and start_time(pid) == start  # type: ignore[arg-type]


def set_subreaper() -> bool:
    """On Linux, make this process the reaper of orphaned descendants (PR_SET_CHILD_SUBREAPER)."""
    if not _IS_LINUX:
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except Exception:
        return False


def _parent_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir(_PROC)
    except OSError:
        return children
    for entry in entries:
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        if fields and len(fields) > 1 and fields[0] not in ("Z", "X"):
            children.setdefault(int(fields[1]), []).append(int(entry))
    return children


def descendants(pid: int) -> list[int]:
    """All live descendants of pid (Linux only; empty elsewhere)."""
    if not _IS_LINUX:
        return []
    tree = _parent_map()
    found: list[int] = []
    todo = list(tree.get(pid, []))
    while todo:
        p = todo.pop()
        if p in found:
            continue
        found.append(p)
        todo.extend(tree.get(p, []))
    return found


def marked(jid: str) -> list[int]:
    """The live processes whose environment carries MARKER=jid (Linux, those this user may read)."""
    if not _IS_LINUX:
        return []
    needle = f"{MARKER}={jid}".encode()
    found: list[int] = []
    me = os.getpid()
    try:
        entries = os.listdir(_PROC)
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"{_PROC}/{entry}/environ", "rb") as f:
                env = f.read()
        except OSError:
            continue
        if needle in env.split(b"\0") and is_alive(int(entry)):
            found.append(int(entry))
    return found


def _signal_pid(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except OSError:
        pass


def _signal_group(pgid: int, sig: int) -> bool:
    try:
        os.killpg(pgid, sig)
    except OSError:
        return False
    return True


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except OSError as ex:
        return ex.errno == errno.EPERM
    return True


def kill_tree(pgid: int | None, root: int | None = None, grace: float = 5.0, reap: t.Callable[[], None] | None = None, jid: str | None = None) -> list[int]:
    """Kill a job's processes: the process group pgid and every descendant of root (but not root itself).

    SIGTERM first, then SIGKILL to whatever is left after grace seconds. root is the supervisor
    (a child subreaper on Linux, so descendants that left the group with setsid are still found).
    With jid, the processes marked with that job id (see MARKER) are killed too: that finds the
    escapees when the supervisor is gone. reap is called while waiting so the caller can collect
    exited children. Returns the pids signalled.
    """
    me = os.getpid()

    def targets() -> list[int]:
        found = descendants(root) if root else []
        if jid:
            found += [p for p in marked(jid) if p not in found]
        return [p for p in found if p != me and p != root]

    signalled: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGKILL):
        procs = targets()
        if pgid:
            _signal_group(pgid, sig)
        for p in procs:
            _signal_pid(p, sig)
            if p not in signalled:
                signalled.append(p)
        if sig == signal.SIGKILL:
            break
        deadline = time.monotonic() + max(grace, 0.0)
        while time.monotonic() < deadline:
            if reap:
                reap()
            if not (pgid and _group_alive(pgid)) and not targets():
                break
            time.sleep(0.05)
        else:
            continue
        break
    if reap:
        end = time.monotonic() + 2.0
        while time.monotonic() < end:
            reap()
            if not (pgid and _group_alive(pgid)):
                break
            time.sleep(0.02)
    return signalled


def signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def fork_job(argv: list, out_fd: int, err_fd: int, env: dict, chdir: str | None, keep_fd: int | None, run: t.Callable[[], None] | None) -> int:
    """Fork a job's process and return its pid: in a process group of its own, signals at their
    defaults, stdin /dev/null, stdout and stderr to out_fd and err_fd, env added to its
    environment, in chdir if given, keep_fd inherited by what it executes. It executes argv, or
    calls run (which never returns: a module run in-process). Raises SpawnError when argv cannot
    be executed (the process has then exited and been reaped)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the job's process
        try:
            os.close(r)
            os.setpgid(0, 0)
            for sig in (signal.SIGTERM, signal.SIGALRM, signal.SIGHUP, signal.SIGINT, signal.SIGPIPE, signal.SIGCHLD):
                signal.signal(sig, signal.SIG_DFL)
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(out_fd, 1)
            os.dup2(err_fd, 2)
            if chdir:
                os.chdir(chdir)
            os.environ.update(env)
            if keep_fd is not None:
                os.set_inheritable(keep_fd, True)
            if run is not None:
                os.close(w)  # started: the parent stops waiting for an error
                run()
            os.execvp(argv[0], argv)
        except BaseException as ex:  # noqa: B036 - report anything to the parent, then leave without cleanup
            try:
                os.write(w, f"{ex}".encode("utf-8", errors="replace") or b"exec failed")
            finally:
                os._exit(127)
    os.close(w)
    chunks = []
    while True:
        chunk = os.read(r, 4096)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(r)
    if chunks:
        os.waitpid(pid, 0)
        raise ids.SpawnError(f"cannot start {argv[0]!r}: {b''.join(chunks).decode('utf-8', errors='replace')}")
    return pid


def _run(argv: list[str]) -> str | None:
    """Output of a small command (non-Linux fallbacks only)."""
    import subprocess

    try:
        # pylint: disable-next=ansible-bad-function  # the lean runner has no AnsibleModule
        return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=10, check=False).stdout.decode("ascii", errors="replace")
    except (OSError, subprocess.SubprocessError):
        return None


class Spawned:
    """A process started in a session of its own, fed its input, whose one-line answer is awaited."""

    def __init__(self, popen: t.Any) -> None:
        self.popen = popen
        self.answer = b""
        self.error: str | None = None


def spawn_session(argv: list[str], data: bytes, pass_fds: tuple[int, ...] = ()) -> Spawned:
    """Start argv in a new session (stdin: data, stdout: a pipe for its answer, stderr: /dev/null; pass_fds stay open in it).

    Raises OSError when it cannot be started. A process that dies before reading its input is
    not an error here: its missing answer reports it (see read_answers).
    """
    import subprocess  # not at module level: the supervisor, which imports this module, never spawns

    # pylint: disable-next=ansible-bad-function  # the supervisor starts detached, without an AnsibleModule
    popen = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        close_fds=True,
        pass_fds=pass_fds,
        start_new_session=True,
    )
    stdin = popen.stdin
    try:
        if stdin is not None:
            stdin.write(data)
            stdin.close()
    except OSError:
        pass
    return Spawned(popen)


def read_answers(spawned: list[Spawned], timeout: float) -> None:
    """Read every spawned process's stdout until it closes, all at once, for up to timeout seconds.

    Each one's output lands in .answer; one that does not answer in time gets .error.
    """
    import select

    waiting = {s.popen.stdout.fileno(): s for s in spawned if s.popen.stdout is not None}
    deadline = time.monotonic() + timeout
    while waiting:
        left = deadline - time.monotonic()
        if left <= 0:
            for s in waiting.values():
                s.error = f"did not report within {timeout:g}s"
            break
        ready, dummy, dummy = select.select(list(waiting), [], [], left)
        for fd in ready:
            chunk = os.read(fd, 4096)
            if chunk:
                waiting[fd].answer += chunk
            else:
                del waiting[fd]
    for s in spawned:
        if s.popen.stdout is not None:
            s.popen.stdout.close()


def exit_code(spawned: Spawned) -> int | None:
    return spawned.popen.poll()
