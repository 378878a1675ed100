# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""The supervisor of one detached job. Private to the detached.jobs collection.

It runs in a fresh, lean interpreter (``python -I -S <jid>.pyz``) started in a new session
by the launcher (see _launch.launch). It reads its spec as JSON on stdin, queues for the
job's slot if it has one, spawns the job (a module payload or a command) in a process group of
its own with output streamed to files, records the status (queued, then running),
acknowledges on stdout, then enforces the time limit, obeys SIGTERM as a kill request, runs
failed attempts again after their delay (retries), writes the final result atomically and
removes the job's temporary files. What an attempt's outcome comes to (results, attempt
records, retry delays, messages) is worked out by _results, from the output files _outputs reads
(which also writes the final record); the job's process is forked by _process.fork_job; a batch of
module jobs is started by _zygote, which hands each supervisor what the batch shares.
Standard library only, Python 3.8+.
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
from ansible_collections.detached.jobs.plugins.module_utils import _outputs as out
from ansible_collections.detached.jobs.plugins.module_utils import _process as proc
from ansible_collections.detached.jobs.plugins.module_utils import _records as rec
from ansible_collections.detached.jobs.plugins.module_utils import _results as res
from ansible_collections.detached.jobs.plugins.module_utils import _slots as slots
from ansible_collections.detached.jobs.plugins.module_utils import _tmpdirs as tmpdirs
from ansible_collections.detached.jobs.plugins.module_utils import _zygote


def killed_how(store: js.JobStore, jid: str) -> str:
    """How a killed job's message says it was killed: why, when the kill said (JobStore.kill_reason), else "on request"."""
    return store.kill_reason(jid) or "on request"


class _Stop(BaseException):
    """Raised by the signal handlers to interrupt the wait for the child."""


class Supervisor:
    """One job's supervisor. shared: what the zygote of its batch imported (see _zygote), with
    which a module job whose spec says "inproc" runs in-process; None: the job's process executes argv."""

    def __init__(self, spec: dict, shared: _zygote.Shared | None = None) -> None:
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
        # The job's place in the slot's queue, taken by the launcher (see _launch) and inherited.
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
        # _zygote.run_inproc), else None: the job's process executes argv.
        self.shared = shared
        self.inproc: str | None = spec.get("inproc") if shared is not None else None
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
        """Fork the job's process (see proc.fork_job); it runs a module in-process when its batch shares its imports."""
        env = {proc.MARKER: self.jid}
        if self.module_tmp:
            env["TMPDIR"] = self.module_tmp
        # The job's process holds the slot too: a supervisor killed with kill -9 frees it only once the job is over.
        fd = self.ticket.fd if self.ticket is not None else None
        run = None
        if self.inproc and self.shared is not None:
            run = self.shared.runner(self.inproc, {fd} if fd is not None else set())
        return proc.fork_job(argv, out_fd, err_fd, env, self.spec.get("chdir"), fd, run)

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

    # --- results (read by _outputs, shaped by _results) ---------------------
    def _module_result(self, rc: int | None, keep: dict) -> dict:
        return out.module_result(self.store, self.jid, self.limit, rc, keep)

    def _command_result(self, rc: int | None, started: float, ended: float, keep: dict) -> dict:
        return out.command_result(self.store, self.jid, self.limit, self.spec.get("cmd"), rc, started, ended, keep)

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
        why = {
            "timeout": self.timeout,
            "total_timeout": self.total_timeout,
            "grace": self.grace,
            "attempt": len(self.attempts) + 1,
            "child": self.child,
            "killed_how": killed_how(self.store, self.jid) if self.stopped == ids.KILLED else "",
            "unarmed": self.unarmed,
            "signal_name": proc.signal_name(sig) if sig is not None else "",
        }
        state, msg = res.attempt_end(result, self.stopped, sig, why)
        if msg is not None:
            result["msg"] = msg
        return result, state, rc, sig

    def _attempt_record(self, result: dict, state: str, rc: int | None, sig: int | None, ended: float) -> dict:
        """What is kept of one attempt: when it ran, how it ended, and the tail of its output."""
        tail = out.attempt_tail(self.store, self.jid, self.mode, result)
        return res.attempt_record(len(self.attempts) + 1, self.started, ended, state, result, rc, sig, tail)

    def _retry_wait(self, state: str) -> float | None:
        """Seconds to wait after the attempts so far before the next one, or None when the job is not run again."""
        opts = {
            "retries": self.retries,
            "retry_delay": self.delay,
            "backoff": self.backoff,
            "retry_max_delay": self.max_delay,
            "retry_on_timeout": self.retry_on_timeout,
            "total_timeout": self.total_timeout,
        }
        return res.retry_wait(state, self.stopped, self.killed, len(self.attempts), opts, self.first_started, time.time())

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
        out.write_final(self.store, self.jid, self.path, result, state, meta, keep)

    def _final_meta(self, ended: float, rc: int | None, sig: int | None, keep: dict) -> dict:
        return res.final_meta(self.meta, ended, self.first_started, rc, sig, keep, self.attempts if self.retries else None)

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
    def _may_run(self) -> bool:
        """Whether fewer than slot_limit live jobs are ahead of this one in the slot's queue."""
        if self.queue is None or self.ticket is None:
            raise ids.JobError(f"job {self.jid}: slot {self.slot!r} without a place in its queue")
        return self.queue.has_room(self.ticket, self.slot_limit)

    def _end_early(self, why: str) -> None:
        """The job ends before an attempt ran: killed or timed out in the queue, or it could not start (why is the message)."""
        ended = time.time()
        how = killed_how(self.store, self.jid) if why == ids.KILLED else ""
        state, msg = res.early_end(why, how, self.slot, self.slot_limit, self.queue_timeout)
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
        self.store.write(self.jid, rec.running_record(self.jid, self.path, self.meta))
        self._arm()

    def _arm(self) -> None:
        """The alarm for the attempt that starts now: its own timeout, or the job's total_timeout if that comes first."""
        left = [(self.timeout, ids.TIMEOUT)] if self.timeout else []
        if self.total_timeout and self.first_started is not None:
            left.append((self.first_started + self.total_timeout - time.time(), res.TOTAL_TIMEOUT))
        if left:
            seconds, self.alarm_for = min(left)
            try:
                signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.001))
            except Exception as ex:  # noqa: BLE001 - OverflowError, ValueError, ItimerError: the job must not run on without its limit
                # Stopped at once by _wait_child (as a timeout would be) and recorded failed, saying why.
                self.unarmed = f"the supervisor could not arm the job's time limit ({self.alarm_for} {seconds:g}s: {type(ex).__name__}: {ex})"
                if self.reason is None:
                    self.reason = res.UNARMED

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
                self.store.write(self.jid, rec.running_record(self.jid, self.path, self.meta, ids.QUEUED))
        except (ids.JobError, ids.SpawnError, OSError, KeyError, ValueError) as ex:
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
            if not self.admitted and self.queue is not None:  # (a job without a slot is admitted at once)
                why = self.queue.wait_turn(self._may_run, self.queue_timeout, lambda: self.killed, self._sleep)
                if why is not None:
                    self._end_early(why)
                    return 0
                self._spawn_attempt()
            self._attempts()
        except (ids.JobError, ids.SpawnError, OSError) as ex:
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
            self.store.write(self.jid, rec.running_record(self.jid, self.path, self.meta))
            self._sleep(wait)
            if self.killed:
                ended = time.time()
                result["msg"] = res.killed_in_delay_msg(killed_how(self.store, self.jid), len(self.attempts), result.get("msg") or state)
                state = ids.KILLED
                break
            try:
                self._spawn_attempt()
            except ids.SpawnError as ex:
                ended = time.time()
                result = {"msg": f"attempt {len(self.attempts) + 1} could not start: {ex}"}
                state = ids.FAILED
                break
        # The job is over: a kill request or the deadline arriving now changes nothing.
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGALRM, signal.SIG_IGN)
        if len(self.attempts) > 1 and state != ids.SUCCEEDED and not self.killed:
            result["msg"] = res.last_of_msg(result.get("msg") or state, len(self.attempts))
        self._remove_task_tmp()
        self._write_final(result, state, self._final_meta(ended, rc, sig, keep), keep)

    def _leave_queue(self) -> None:
        if self.queue is not None and self.ticket is not None:
            self.queue.leave(self.ticket)
            self.ticket = None


def supervise(spec: dict, shared: _zygote.Shared | None) -> int:
    """Run one job's supervisor (shared: what its batch's zygote imported, see _zygote); its exit code."""
    return Supervisor(spec, shared).run(1)


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
        code = _zygote.zygote(spec, supervise) if "jobs" in spec else supervise(spec, None)
    except Exception as ex:  # the launcher reports this line as the job's failure (as every job's, for a batch)
        os.write(1, json.dumps({"failed": True, "msg": f"supervisor failed to start: {ex!r}"}).encode() + b"\n")
        code = 1
    os._exit(code)
