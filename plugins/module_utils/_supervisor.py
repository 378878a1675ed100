# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""The supervisor of one detached job. Private to the detached.jobs collection.

It runs in a fresh, lean interpreter (``python -I -S <jid>.pyz``) started in a new session
by the launcher (see _control.launch). It reads its spec as JSON on stdin, queues for the
job's slot if it has one, spawns the job (a module payload or a command) in a process group of
its own with output streamed to files, records the status (queued, then running),
acknowledges on stdout, then enforces the time limit, obeys SIGTERM as a kill request, runs
failed attempts again after their delay (retries), writes the final result atomically and
removes the job's temporary files. Standard library only, Python 3.8+.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

from ansible_collections.detached.jobs.plugins.module_utils import _ids as ids
from ansible_collections.detached.jobs.plugins.module_utils import _jobstore as js
from ansible_collections.detached.jobs.plugins.module_utils import _options as opts
from ansible_collections.detached.jobs.plugins.module_utils import _process as proc
from ansible_collections.detached.jobs.plugins.module_utils import _slots as slots
from ansible_collections.detached.jobs.plugins.module_utils import _tmpdirs as tmpdirs

# How often a queued job looks at its slot's queue when nothing in it changed (a job ahead may
# have been killed with kill -9, which leaves its ticket behind, unheld), and how long it sleeps
# between looks at the directory's change time.
_QUEUE_RECHECK = 1.0
_QUEUE_TICK = 0.1
# Lines and bytes of each stream kept in an attempt's record.
ATTEMPT_TAIL_LINES = 10
ATTEMPT_TAIL_BYTES = 2048
QUEUE_TIMEOUT = "queue_timeout"
TOTAL_TIMEOUT = "total_timeout"
# Why the job was stopped when its time limit could not be armed (see Supervisor._arm).
UNARMED = "unarmed"


def killed_how(store: js.JobStore, jid: str) -> str:
    """How a killed job's message says it was killed: why, when the kill said (JobStore.kill_reason), else "on request"."""
    return store.kill_reason(jid) or "on request"


def retry_delay(attempt: int, delay: float, backoff: float, max_delay: float) -> float:
    """Seconds to wait after failed attempt number attempt (1-based): delay * backoff ** (attempt - 1), at most max_delay."""
    try:
        wait = float(delay) * float(backoff) ** (attempt - 1)
    except OverflowError:
        wait = float("inf")
    return max(0.0, min(wait, float(max_delay)) if max_delay else wait)


class SpawnError(Exception):
    pass


class _Stop(BaseException):
    """Raised by the signal handlers to interrupt the wait for the child."""


class Supervisor:
    def __init__(self, spec: dict) -> None:
        self.spec = spec
        self.store = js.JobStore(spec["async_dir"])
        self.jid = ids.validate_jid(spec["jid"])
        self.path = self.store.job_path(self.jid)
        self.mode = spec.get("mode", "module")
        given = opts.supervised  # the option as spec gives it, else its default (_options.JOB_OPTIONS)
        self.timeout = float(given(spec, "timeout"))
        self.grace = float(given(spec, "grace"))
        self.limit = int(given(spec, "output_limit"))
        self.retries = int(given(spec, "retries"))
        self.delay = float(given(spec, "retry_delay"))
        self.backoff = float(given(spec, "backoff"))
        self.max_delay = float(given(spec, "retry_max_delay"))
        self.retry_on_timeout = bool(given(spec, "retry_on_timeout"))
        self.total_timeout = float(given(spec, "total_timeout"))
        self.slot = given(spec, "slot")
        self.slot_limit = int(given(spec, "slot_limit"))
        self.queue_timeout = float(given(spec, "queue_timeout"))
        self.queue: slots.SlotQueue | None = slots.SlotQueue(self.store, self.slot) if self.slot else None
        # The job's place in the slot's queue, taken by the launcher (see _control) and inherited.
        self.ticket: slots.SlotTicket | None = slots.SlotTicket(spec["ticket_path"], int(spec["ticket_fd"])) if self.queue else None
        self.admitted = False  # the job may run (it has no slot, or its slot had room)
        self.reason: str | None = None  # a stop requested by a signal
        self.killed = False  # SIGTERM came: no more attempts, whatever else happens
        self.stopped: str | None = None  # the stop that actually ended the job
        self.alarm_for: str = ids.TIMEOUT  # what the armed alarm stands for: the attempt's timeout or total_timeout
        self.unarmed: str | None = None  # why the limit could not be armed (the job is then stopped)
        self.waiting = False
        self.child = 0
        # A module job run in-process by a process forked from here (its payload's path; see
        # _run_inproc), else None: the job's process executes argv.
        self.inproc: str | None = spec.get("inproc") if _SHARED else None
        # A module attempt's temporary directory (its TMPDIR), removed when the attempt ends.
        self.module_tmp: str | None = None
        self.child_status: int | None = None
        self.meta: dict = {}
        self.attempts: list[dict] = []
        self.started = 0.0  # when the current attempt started
        self.first_started: float | None = None  # when the first attempt started (the job left the queue)

    # --- signals -----------------------------------------------------------
    def _on_signal(self, signum: int, frame: object) -> None:
        if signum == signal.SIGTERM:
            self.killed = True
        if self.reason is None:
            self.reason = self.alarm_for if signum == signal.SIGALRM else ids.KILLED
        if self.waiting:
            self.waiting = False
            raise _Stop()

    def _install_signals(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGALRM, self._on_signal)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    # --- the child ----------------------------------------------------------
    def _spawn(self, argv: list, out_fd: int, err_fd: int) -> int:
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
                chdir = self.spec.get("chdir")
                if chdir:
                    os.chdir(chdir)
                os.environ[proc.MARKER] = self.jid
                if self.module_tmp:
                    os.environ["TMPDIR"] = self.module_tmp
                if self.ticket is not None:
                    # The job's process holds the slot too: a supervisor killed with kill -9 frees it only once the job is over.
                    os.set_inheritable(self.ticket.fd, True)
                if self.inproc:
                    os.close(w)  # started: the parent stops waiting for an error
                    _run_inproc(self.inproc, {self.ticket.fd} if self.ticket is not None else set())
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
            raise SpawnError(f"cannot start {argv[0]!r}: {b''.join(chunks).decode('utf-8', errors='replace')}")
        return pid

    def _reap(self) -> None:
        """Collect exited children: the job's process (keeping its status) and re-parented orphans."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.child:
                self.child_status = status

    def _wait_child(self) -> None:
        while self.child_status is None:
            try:
                self.waiting = True
                if self.reason is not None:
                    raise _Stop()
                pid, status = os.waitpid(self.child, 0)
                self.waiting = False
                if pid == self.child:
                    self.child_status = status
            except _Stop:
                self.waiting = False
                self.stopped = self.reason
                proc.kill_tree(self.child, root=os.getpid(), grace=self.grace, reap=self._reap)
                if self.child_status is None:
                    try:
                        dummy, self.child_status = os.waitpid(self.child, 0)
                    except ChildProcessError:  # reaped in the instant the signal arrived
                        self.child_status = 0
            except ChildProcessError:
                self.child_status = 0
        if self.stopped is None and os.WIFSIGNALED(self.child_status):
            # The job's process was killed from outside (kill -9, the OOM killer): what is left of its
            # process group (a module's command, a shell's pipeline) is stopped too, or it would run
            # on with nobody able to find it (the record names only the dead process).
            proc.kill_tree(self.child, root=None, grace=self.grace, reap=self._reap)
        signal.setitimer(signal.ITIMER_REAL, 0)

    # --- results ------------------------------------------------------------
    def _read_output(self, suffix: str) -> tuple[bytes, int]:
        path = self.store.extra_path(self.jid, suffix)
        try:
            size = os.path.getsize(path)
            with open(path, "rb") as f:
                if size > self.limit:
                    f.seek(size - self.limit)
                return f.read(self.limit), size
        except OSError:
            return b"", 0

    def _text(self, suffix: str, keep: dict) -> str:
        data, size = self._read_output(suffix)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("utf-8", errors="replace")
            keep[suffix] = self.store.extra_path(self.jid, suffix)
        if size > len(data):
            keep[suffix] = self.store.extra_path(self.jid, suffix)
            text = f"[detached.jobs: first {size - len(data)} of {size} bytes omitted; full output in {keep[suffix]}]\n" + text
        return text

    def _module_result(self, rc: int | None, keep: dict) -> dict:
        out_data, out_size = self._read_output("stdout")
        stderr = self._text("stderr", keep)
        if out_size > len(out_data):
            keep["stdout"] = self.store.extra_path(self.jid, "stdout")
            return {
                "failed": True,
                "msg": f"the module printed {out_size} bytes, more than output_limit ({self.limit}); its raw output is kept in {keep['stdout']}",
                "rc": rc,
                "module_stderr": stderr,
            }
        text = out_data.decode("utf-8", errors="replace")
        result = _parse_module_json(text)
        if result is None:
            if text:
                keep["stdout"] = self.store.extra_path(self.jid, "stdout")
            return {
                "failed": True,
                "msg": f"the module did not return a JSON result (rc={rc}); see module_stdout and module_stderr",
                "rc": rc,
                "module_stdout": text,
                "module_stderr": stderr,
            }
        if stderr:
            result.setdefault("stderr", stderr)
        if result.get("failed") and not result.get("msg"):
            result["msg"] = _failure_msg(result, rc)
        return result

    def _command_result(self, rc: int | None, started: float, ended: float, keep: dict) -> dict:
        import datetime

        fmt = "%Y-%m-%d %H:%M:%S.%f"
        start = datetime.datetime.fromtimestamp(started)
        end = datetime.datetime.fromtimestamp(ended)
        result = {
            "cmd": self.spec.get("cmd"),
            "rc": rc,
            "stdout": self._text("stdout", keep).rstrip("\r\n"),
            "stderr": self._text("stderr", keep).rstrip("\r\n"),
            "start": start.strftime(fmt),
            "end": end.strftime(fmt),
            "delta": str(end - start),
            "changed": True,
            "msg": "",
        }
        if rc:
            result["failed"] = True
            result["msg"] = "non-zero return code"
        return result

    def _outcome(self, ended: float, keep: dict) -> tuple[dict, str, int | None, int | None]:
        """The result of the attempt that just ended, its state, exit code and signal."""
        status = self.child_status or 0
        rc: int | None = None
        sig: int | None = None
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
        else:
            rc = os.WEXITSTATUS(status)
        if self.mode == "command":
            result = self._command_result(rc if sig is None else -sig, self.started, ended, keep)
        else:
            result = self._module_result(rc, keep)
        if self.stopped == ids.TIMEOUT:
            state = ids.TIMEOUT
            result["msg"] = (
                f"Timeout exceeded: the job ran longer than its {self.timeout:g}s limit and was killed (SIGTERM, then SIGKILL after {self.grace:g}s)"
            )
        elif self.stopped == TOTAL_TIMEOUT:
            state = ids.TIMEOUT
            result["msg"] = (
                f"Timeout exceeded: the job ran longer than its total_timeout of {self.total_timeout:g}s and attempt {len(self.attempts) + 1} "
                f"was killed (SIGTERM, then SIGKILL after {self.grace:g}s)"
            )
        elif self.stopped == ids.KILLED:
            state = ids.KILLED
            result["msg"] = f"the job was killed {killed_how(self.store, self.jid)}"
        elif self.stopped == UNARMED:
            state = ids.FAILED
            result["msg"] = f"{self.unarmed}; it was stopped (SIGTERM, then SIGKILL after {self.grace:g}s) rather than left running without a limit"
        elif sig is not None:
            name = proc.signal_name(sig)
            if sig == signal.SIGKILL:
                state = ids.VANISHED
                result["msg"] = f"the job's process (pid {self.child}) was killed by {name} (out of memory, or kill -9) before it returned a result"
            else:
                state = ids.FAILED
                result["msg"] = f"the job's process (pid {self.child}) was killed by {name}"
        elif result.get("failed"):
            state = ids.FAILED
        else:
            state = ids.SUCCEEDED
        return result, state, rc, sig

    def _attempt_record(self, result: dict, state: str, rc: int | None, sig: int | None, ended: float) -> dict:
        """What is kept of one attempt: when it ran, how it ended, and the tail of its output."""
        tail = {}
        for suffix in ("stdout", "stderr"):
            if self.mode == "command":
                found = self.store.output_tail(self.jid, suffix, ATTEMPT_TAIL_LINES, ATTEMPT_TAIL_BYTES)
                tail[suffix] = found[0] if found else []
            else:
                text = result.get(suffix)
                tail[suffix] = js.text_tail(text, ATTEMPT_TAIL_LINES, ATTEMPT_TAIL_BYTES)[0] if isinstance(text, str) else []
        return {
            "attempt": len(self.attempts) + 1,
            "started_at": self.started,
            "ended_at": ended,
            "elapsed": round(ended - self.started, 3),
            "state": state,
            "rc": rc if rc is not None else result.get("rc") if isinstance(result.get("rc"), int) else None,
            "signal": sig,
            "msg": str(result.get("msg") or "")[:500],
            "tail": tail,
        }

    def _retry_wait(self, state: str) -> float | None:
        """Seconds to wait after the attempts so far before the next one, or None when the job is not run again."""
        if len(self.attempts) > self.retries or self.killed or self.stopped == UNARMED:
            return None
        if state == ids.TIMEOUT and not (self.retry_on_timeout and self.stopped == ids.TIMEOUT):
            return None
        if state not in (ids.FAILED, ids.VANISHED, ids.TIMEOUT):
            return None
        # At most MAX_SECONDS: a delay that grew beyond any bound (backoff) is no infinite retry_at in the record.
        wait = min(retry_delay(len(self.attempts), self.delay, self.backoff, self.max_delay), ids.MAX_SECONDS)
        if self.total_timeout and self.first_started is not None and time.time() + wait >= self.first_started + self.total_timeout:
            return None
        return wait

    def _sleep(self, seconds: float) -> None:
        """Sleep, unless SIGTERM asks the job to stop (then self.killed is set)."""
        end = time.monotonic() + seconds
        try:
            while not self.killed:
                left = end - time.monotonic()
                if left <= 0:
                    return
                self.waiting = True
                time.sleep(min(left, 1.0))
                self.waiting = False
        except _Stop:
            pass
        finally:
            self.waiting = False

    def _write_final(self, result: dict, state: str, meta: dict, keep: dict) -> None:
        record = js.final_record(self.jid, self.path, result, meta, state)
        try:
            self.store.write(self.jid, record)
        except ids.JobError as ex:
            # (A full disk, most often.) Free what the job no longer needs and try again, then try a
            # small record; if even that fails, readers will see the supervisor gone without a
            # result (vanished). The output files are kept either way.
            self.store.remove_extra(self.jid, ("payload", "args", "pyz"))
            try:
                self.store.write(self.jid, record)
            except ids.JobError:
                kept = {s: p for s in ("stdout", "stderr") for p in [self.store.extra_path(self.jid, s)] if os.path.exists(p)}
                small = js.final_record(self.jid, self.path, {"msg": f"could not record the job's result: {ex}"}, dict(meta, files=kept), ids.FAILED)
                try:
                    self.store.write(self.jid, small)
                except ids.JobError:
                    pass
                return
        drop = [s for s in ("stdout", "stderr") if s not in keep]
        self.store.remove_extra(self.jid, ["payload", "args", "pyz", "kill"] + drop)

    def _final_meta(self, ended: float, rc: int | None, sig: int | None, keep: dict) -> dict:
        started = self.first_started if self.first_started is not None else ended
        meta = dict(self.meta, ended_at=ended, elapsed=round(ended - started, 3), rc=rc, signal=sig, files=keep)
        meta.pop("retry_at", None)
        if self.retries:
            meta.update(attempt=len(self.attempts), attempts=self.attempts)
        return meta

    def _remove_task_tmp(self) -> None:
        """Keyword mode: the task's tmp dir, which the module may use while it runs (get_url
        downloads into it), goes when the job has ended, as with ansible-core's wrapper."""
        if self.spec.get("remove_after"):
            import shutil

            shutil.rmtree(self.spec["remove_after"], ignore_errors=True)

    def _remove_module_tmp(self) -> None:
        """The attempt's temporary directory goes when its process has ended, however it ended: a
        module killed on timeout or on request leaves behind what it could not remove itself
        (AnsiballZ's payload directory, ansible_<module>_payload_*, among others)."""
        if self.module_tmp:
            tmpdirs.remove_tmpdir(self.module_tmp)
            self.module_tmp = None
            self.meta["tmpdir"] = None

    # --- the queue ------------------------------------------------------------
    def _wait_for_slot(self) -> str | None:
        """Wait until the job may run; None then, else why it never will (killed, queue_timeout)."""
        deadline = time.monotonic() + self.queue_timeout if self.queue_timeout else None
        seen: int | None = -1
        last = 0.0
        while True:
            if self.killed:
                return ids.KILLED
            now = time.monotonic()
            try:
                changed = os.stat(self.queue.dir).st_mtime_ns if self.queue is not None else None
            except OSError:
                changed = None
            if changed != seen or now - last >= _QUEUE_RECHECK:
                seen, last = changed, now
                if self._may_run():
                    return None
            if deadline is not None and now >= deadline:
                return QUEUE_TIMEOUT
            self._sleep(_QUEUE_TICK if deadline is None else max(0.001, min(_QUEUE_TICK, deadline - now)))

    def _may_run(self) -> bool:
        """Whether fewer than slot_limit live jobs are ahead of this one in the slot's queue."""
        if self.queue is None or self.ticket is None:
            raise ids.JobError(f"job {self.jid}: slot {self.slot!r} without a place in its queue")
        ahead = self.queue.ahead(self.ticket)
        if ahead is None:
            raise ids.JobError(f"slot {self.slot!r}: the job's ticket {self.ticket.path} is gone from the queue")
        return ahead < self.slot_limit

    def _end_early(self, why: str) -> None:
        """The job ends before an attempt ran: killed or timed out in the queue, or it could not start (why is the message)."""
        ended = time.time()
        if why == ids.KILLED:
            state, msg = ids.KILLED, f"the job was killed {killed_how(self.store, self.jid)} while queued for slot {self.slot!r}; it never ran"
        elif why == QUEUE_TIMEOUT:
            state, msg = ids.TIMEOUT, (
                f"Timeout exceeded: the job waited longer than its queue_timeout of {self.queue_timeout:g}s for slot {self.slot!r} "
                f"(limit {self.slot_limit}); it never ran"
            )
        else:
            state, msg = ids.FAILED, why
        meta = dict(self.meta, ended_at=ended, elapsed=0.0, rc=None, signal=None, files={})
        if self.retries:
            meta.update(attempt=len(self.attempts), attempts=self.attempts)
        self._remove_task_tmp()
        self._write_final({"msg": msg}, state, meta, {})

    # --- main ---------------------------------------------------------------
    def _spawn_attempt(self) -> None:
        """Start an attempt: fresh output files, the job's process, its running record."""
        self.store.remove_extra(self.jid, ("stdout", "stderr"))
        out_fd = self.store.open_output(self.jid, "stdout")
        err_fd = self.store.open_output(self.jid, "stderr")
        try:
            self.child_status = None
            self.stopped = None
            # A timeout ended the attempt before (retry_on_timeout); a kill request is never forgotten.
            self.reason = None
            if self.killed:
                self.reason = ids.KILLED
            self.started = time.time()
            if self.first_started is None:
                self.first_started = self.started
            if self.mode == "module":
                self.module_tmp = tmpdirs.make_tmpdir(self.jid, len(self.attempts) + 1)
            self.child = self._spawn(list(self.spec["argv"]), out_fd, err_fd)
        finally:
            os.close(out_fd)
            os.close(err_fd)
        self.meta.update(
            child_pid=self.child,
            child_start=proc.start_time(self.child),
            tmpdir=self.module_tmp,
            started_at=self.first_started,
            deadline=self.started + self.timeout if self.timeout else None,
        )
        self.meta.pop("retry_at", None)
        if self.retries:
            self.meta.update(attempt=len(self.attempts) + 1, attempts=self.attempts, attempt_started_at=self.started)
        self.store.write(self.jid, js.running_record(self.jid, self.path, self.meta))
        self._arm()

    def _arm(self) -> None:
        """The alarm for the attempt that starts now: its own timeout, or the job's total_timeout if that comes first."""
        left = [(self.timeout, ids.TIMEOUT)] if self.timeout else []
        if self.total_timeout and self.first_started is not None:
            left.append((self.first_started + self.total_timeout - time.time(), TOTAL_TIMEOUT))
        if left:
            seconds, self.alarm_for = min(left)
            try:
                signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.001))
            except Exception as ex:  # noqa: BLE001 - OverflowError, ValueError, ItimerError: the job must not run on without its limit
                # Stopped at once by _wait_child (as a timeout would be) and recorded failed, saying why.
                self.unarmed = f"the supervisor could not arm the job's time limit ({self.alarm_for} {seconds:g}s: {type(ex).__name__}: {ex})"
                if self.reason is None:
                    self.reason = UNARMED

    def _base_meta(self, queued_at: float) -> dict:
        me = os.getpid()
        meta = {
            "name": self.spec.get("name"),
            "module": self.spec.get("module"),
            "cmd": self.spec.get("cmd") if self.mode == "command" else None,
            "pid": me,
            "pid_start": proc.start_time(me),
            "boot_id": proc.boot_id(),
            "child_pid": None,
            "child_start": None,
            "tmpdir": None,
            "subreaper": self.subreaper,
            "started_at": None,
            "ended_at": None,
            "timeout": self.timeout,
            "deadline": None,
            "grace": self.grace,
        }
        if self.slot:
            meta.update(slot=self.slot, slot_limit=self.slot_limit, queued_at=queued_at, queue_timeout=self.queue_timeout)
            if self.ticket is not None:
                meta["queue_seq"] = int(os.path.basename(self.ticket.path).split(".", 1)[0])
        if self.retries:
            meta.update(retries=self.retries, retry_delay=self.delay, backoff=self.backoff, retry_max_delay=self.max_delay, total_timeout=self.total_timeout)
        return meta

    def run(self, ack: int) -> int:
        self._install_signals()
        self.subreaper = proc.set_subreaper()
        queued_at = time.time()
        try:
            self.meta = self._base_meta(queued_at)
            # A job whose slot is free starts before the launch returns, as one without a slot does;
            # the others are recorded queued and wait below.
            self.admitted = self.queue is None or self._may_run()
            if self.admitted:
                self._spawn_attempt()
            else:
                self.store.write(self.jid, js.running_record(self.jid, self.path, self.meta, ids.QUEUED))
        except (ids.JobError, SpawnError, OSError, KeyError, ValueError) as ex:
            if self.child:
                proc.kill_tree(self.child, root=os.getpid(), grace=0, reap=self._reap)
            self._leave_queue()
            self._remove_module_tmp()
            self.store.remove_extra(self.jid, ("payload", "args", "pyz", "stdout", "stderr"))
            if self.queue is not None:
                try:
                    os.unlink(self.path)  # the queued record, if it was written: the start failed, the job does not exist
                except OSError:
                    pass
            os.write(ack, json.dumps({"failed": True, "jid": self.jid, "msg": f"job {self.jid}: {ex}"}).encode() + b"\n")
            return 1
        os.write(ack, json.dumps({"ok": True, "jid": self.jid}).encode() + b"\n")
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 1)
        os.dup2(null, 2)
        os.close(null)
        try:
            if not self.admitted:
                why = self._wait_for_slot()
                if why is not None:
                    self._end_early(why)
                    return 0
                self._spawn_attempt()
            self._attempts()
        except (ids.JobError, SpawnError, OSError) as ex:
            # (A full disk when a queued job's turn came, most often.) Its process, if it started, is stopped.
            if self.child and self.child_status is None:
                proc.kill_tree(self.child, root=os.getpid(), grace=0, reap=self._reap)
            self._end_early(f"job {self.jid}: {ex}")
        finally:
            self._remove_module_tmp()
            self._remove_task_tmp()
            self._leave_queue()
        return 0

    def _attempts(self) -> None:
        """Wait for each attempt; run failed ones again after their delay; record the result of the last."""
        while True:
            self._wait_child()
            self._remove_module_tmp()
            ended = time.time()
            keep: dict = {}
            result, state, rc, sig = self._outcome(ended, keep)
            if not self.retries:
                break
            self.attempts.append(self._attempt_record(result, state, rc, sig, ended))
            wait = self._retry_wait(state)
            if wait is None:
                break
            self.meta.update(child_pid=self.child, attempt=len(self.attempts), attempts=self.attempts, retry_at=time.time() + wait, deadline=None)
            self.store.write(self.jid, js.running_record(self.jid, self.path, self.meta))
            self._sleep(wait)
            if self.killed:
                ended = time.time()
                result["msg"] = (
                    f"the job was killed {killed_how(self.store, self.jid)} in the delay before attempt {len(self.attempts) + 1}; no more attempts "
                    f"(attempt {len(self.attempts)}: {result.get('msg') or state})"
                )
                state = ids.KILLED
                break
            try:
                self._spawn_attempt()
            except SpawnError as ex:
                ended = time.time()
                result = {"msg": f"attempt {len(self.attempts) + 1} could not start: {ex}"}
                state = ids.FAILED
                break
        # The job is over: a kill request or the deadline arriving now changes nothing.
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGALRM, signal.SIG_IGN)
        if len(self.attempts) > 1 and state != ids.SUCCEEDED and not self.killed:
            result["msg"] = f"{result.get('msg') or state} (the last of {len(self.attempts)} attempts)"
        self._remove_task_tmp()
        self._write_final(result, state, self._final_meta(ended, rc, sig, keep), keep)

    def _leave_queue(self) -> None:
        if self.queue is not None and self.ticket is not None:
            self.queue.leave(self.ticket)
            self.ticket = None


def _failure_msg(result: dict, rc: int | None) -> str:
    """A message for a failed module result that has none.

    ansible-core 2.19 reports a module's unhandled exception as {"failed": true, "exception":
    {"event": {"msg": ...}, ...}} without "msg" (its controller derives one); older versions
    give the traceback as a string.
    """
    exc = result.get("exception")
    event = exc.get("event") if isinstance(exc, dict) else None
    text = event.get("msg") if isinstance(event, dict) else None
    if not text and isinstance(exc, str) and exc.strip():
        text = exc.strip().splitlines()[-1]
    return f"the module failed: {text}" if text else f"the module failed without a message (rc={rc})"


def _parse_module_json(text: str) -> dict | None:
    """The module's JSON result, ignoring junk lines before and after it (as ansible-core does).

    Junk after it (uncommon, and worth a look) is reported in the result's warnings, in the words
    of ansible-core's async_wrapper.
    """
    lines = text.splitlines()
    first = next((i for i, line in enumerate(lines) if line.lstrip().startswith("{")), None)
    last = next((i for i in range(len(lines) - 1, -1, -1) if lines[i].rstrip().endswith("}")), None)
    if first is None or last is None or last < first:
        return None
    try:
        result = json.loads("\n".join(lines[first : last + 1]))
    except ValueError:
        return None
    if not isinstance(result, dict):
        return None
    junk = lines[last + 1 :]
    if any(line.strip() for line in junk):
        warnings = result.get("warnings", [])
        warnings = list(warnings) if isinstance(warnings, list) else [warnings]
        warnings.append("Module invocation had junk after the JSON data: " + "\n".join(junk))
        result["warnings"] = warnings
    return result


def main() -> None:
    """Entry point of the supervisor interpreter: spec on stdin, acknowledgement on stdout.

    The spec is one job's, or {"jobs": [...], "modlib": ...} for a batch of module jobs that share
    their module's imports (see _zygote).
    """
    try:
        spec = json.loads(sys.stdin.buffer.read().decode("utf-8"))
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        code = _zygote(spec) if "jobs" in spec else Supervisor(spec).run(1)
    except Exception as ex:  # the launcher reports this line as the job's failure (as every job's, for a batch)
        os.write(1, json.dumps({"failed": True, "msg": f"supervisor failed to start: {ex!r}"}).encode() + b"\n")
        code = 1
    os._exit(code)


# --- module jobs that share their imports ------------------------------------------------------
# A batch's module jobs whose payloads carry the same module zip are started from one process,
# the zygote (run by the module interpreter as a module would be, not -I -S): it imports
# ansible.module_utils.basic from that zip once, then forks each job's supervisor, and each
# supervisor forks the job's process, which runs the AnsiballZ payload in-process instead of
# executing a new interpreter. The imported code stays shared, copy-on-write, by every process of
# the batch: a module job then costs about half the memory (docs/performance.md).
# Linux only (the zip is read through /proc/self/fd); elsewhere, or when the import fails, every
# job runs as a new interpreter, as a lone module job does.

# Set in the zygote once the imports are shared: "zip", the zip they came from (an unlinked file,
# open in every process of the batch and read through /proc/self/fd/N, so it is never left
# behind), and "script", the supervisor's own zip on sys.path; empty when nothing was imported.
_SHARED: dict = {}
_PRELOAD = "ansible.module_utils.basic"


def _zygote(spec: dict) -> int:
    """Import the batch's module code once, then fork every job's supervisor (each acknowledges on stdout)."""
    jobs = spec["jobs"]
    script = sys.path[0] if sys.path else ""
    if _preload(str(spec.pop("modlib", "")), str(jobs[0]["async_dir"])):
        _SHARED["script"] = script
    tickets = {int(job["ticket_fd"]) for job in jobs if job.get("ticket_fd") is not None}
    for i, job in enumerate(jobs):
        try:
            pid = os.fork()
        except OSError as ex:
            for rest in jobs[i:]:
                _abandon(rest, f"job {rest['jid']}: cannot start its supervisor: {ex}")
            break
        if pid == 0:
            code = 1
            try:
                os.setsid()
                for fd in tickets - {job.get("ticket_fd")}:
                    os.close(fd)  # another job's place in a slot's queue
                code = Supervisor(job).run(1)
            except Exception as ex:  # noqa: BLE001 - reported as this job's failure
                os.write(1, json.dumps({"failed": True, "jid": job["jid"], "msg": f"supervisor failed to start: {ex!r}"}).encode() + b"\n")
            os._exit(code)
    return 0


def _abandon(job: dict, msg: str) -> None:
    """A job of the batch whose supervisor could not be forked: its files and its place in its
    slot's queue go (as when a supervisor fails to start), and the launcher is told why."""
    try:
        store = js.JobStore(job["async_dir"])
        if job.get("ticket_fd") is not None:
            slots.SlotQueue(store, job["slot"]).leave(slots.SlotTicket(job["ticket_path"], int(job["ticket_fd"])))
        store.remove_extra(job["jid"], ("payload", "args", "pyz"))
    except (ids.JobError, OSError):
        pass
    os.write(1, json.dumps({"failed": True, "jid": job["jid"], "msg": msg}).encode() + b"\n")


def _preload(modlib: str, where: str) -> bool:
    """Import ansible.module_utils.basic from the module zip modlib (base64); False when it is not done."""
    if not modlib or not os.path.isdir("/proc/self/fd") or "ansible" in sys.modules:
        return False
    import base64
    import gc
    import importlib
    import tempfile

    try:
        f = tempfile.TemporaryFile(dir=where)
        f.write(base64.b64decode(modlib))
        f.flush()
    except (OSError, ValueError):
        return False
    path = f"/proc/self/fd/{f.fileno()}"
    sys.path.insert(0, path)
    try:
        importlib.import_module(_PRELOAD)
    except BaseException:  # noqa: B036 - whatever the module code does, the jobs then run as new interpreters
        for name in [n for n in sys.modules if n == "ansible" or n.startswith("ansible.")]:
            del sys.modules[name]
        f.close()
        return False
    finally:
        sys.path.remove(path)
        sys.path_importer_cache.pop(path, None)
    _SHARED["zip"] = f
    # What was imported is never collected again: the collector, walking it, would write to
    # (and so copy) every page of it in every process.
    gc.collect()
    gc.freeze()
    return True


def _run_inproc(payload: str, keep: set) -> None:
    """In the job's process (forked from its supervisor): run the module payload as the interpreter
    would run the script, then exit with its status. Never returns."""
    import atexit
    import traceback

    code = 1
    try:
        # What the supervisor's interpreter holds and a module's would not: the supervisor's package
        # (a collection's module must import its own ansible_collections), its zip on the path, its
        # exit handlers, signal dispositions and open files, a temporary directory chosen before
        # TMPDIR was set.
        for name in [n for n in sys.modules if n == "ansible_collections" or n.startswith("ansible_collections.")]:
            del sys.modules[name]
        script = _SHARED["script"]
        sys.path[:] = [p for p in sys.path if p != script]
        sys.path_importer_cache.pop(script, None)
        sys.argv[:] = [payload]
        if "tempfile" in sys.modules:
            setattr(sys.modules["tempfile"], "tempdir", None)  # noqa: B010 - the module is not imported here
        atexit._clear()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for sig in ("SIGPIPE", "SIGXFSZ"):
            if hasattr(signal, sig):
                signal.signal(getattr(signal, sig), signal.SIG_IGN)
        keep = set(keep) | {0, 1, 2, _SHARED["zip"].fileno()}
        for fd in [int(n) for n in os.listdir("/proc/self/fd")]:
            if fd not in keep:
                try:
                    os.close(fd)
                except OSError:
                    pass
        import runpy

        code = 0
        try:
            runpy.run_path(payload, run_name="__main__")
        except SystemExit as ex:
            code = _exit_status(ex.code)
    except BaseException:  # noqa: B036 - as the interpreter does: the traceback on stderr, status 1
        traceback.print_exc()
        code = 1
    try:
        if "threading" in sys.modules:
            threading = sys.modules["threading"]
            for thread in threading.enumerate():
                if thread is not threading.current_thread() and not thread.daemon:
                    thread.join()
        atexit._run_exitfuncs()
    except BaseException:  # noqa: B036
        traceback.print_exc()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def _exit_status(code: object) -> int:
    """The exit status of SystemExit(code), as the interpreter makes it."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    try:
        sys.stderr.write(f"{code}\n")
    except (OSError, ValueError):
        pass
    return 1
