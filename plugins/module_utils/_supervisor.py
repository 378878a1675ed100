# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""The supervisor of one detached job. Private to the detached.jobs collection.

It runs in a fresh, lean interpreter (``python -I -S <jid>.pyz``) started in a new session
by the launcher (see _control.launch). It reads its spec as JSON on stdin, spawns the job
(a module payload or a command) in a process group of its own with output streamed to files,
records the running status, acknowledges on stdout, then enforces the time limit, obeys
SIGTERM as a kill request, writes the final result atomically and removes the job's
temporary files. Standard library only, Python 3.8+.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

from ansible_collections.detached.jobs.plugins.module_utils import _jobstore as js
from ansible_collections.detached.jobs.plugins.module_utils import _process as proc

_DEFAULT_GRACE = 5.0


class SpawnError(Exception):
    pass


class _Stop(BaseException):
    """Raised by the signal handlers to interrupt the wait for the child."""


class Supervisor:
    def __init__(self, spec: dict) -> None:
        self.spec = spec
        self.store = js.JobStore(spec["async_dir"])
        self.jid = js.validate_jid(spec["jid"])
        self.path = self.store.job_path(self.jid)
        self.mode = spec.get("mode", "module")
        self.timeout = float(spec.get("timeout") or 0)
        self.grace = float(spec.get("grace", _DEFAULT_GRACE))
        self.limit = int(spec.get("output_limit") or 16 * 1024 * 1024)
        self.reason: str | None = None  # a stop requested by a signal
        self.stopped: str | None = None  # the stop that actually ended the job
        self.waiting = False
        self.child = 0
        self.child_status: int | None = None
        self.meta: dict = {}

    # --- signals -----------------------------------------------------------
    def _on_signal(self, signum: int, frame: object) -> None:
        if self.reason is None:
            self.reason = js.TIMEOUT if signum == signal.SIGALRM else js.KILLED
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
        # The job is over: a kill request or the deadline arriving now changes nothing.
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGALRM, signal.SIG_IGN)

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

    def _finish(self, started: float) -> None:
        ended = time.time()
        self._remove_task_tmp()
        status = self.child_status or 0
        rc: int | None = None
        sig: int | None = None
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
        else:
            rc = os.WEXITSTATUS(status)
        keep: dict = {}
        if self.mode == "command":
            result = self._command_result(rc if sig is None else -sig, started, ended, keep)
        else:
            result = self._module_result(rc, keep)
        if self.stopped == js.TIMEOUT:
            state = js.TIMEOUT
            result["msg"] = (
                f"Timeout exceeded: the job ran longer than its {self.timeout:g}s limit and was killed (SIGTERM, then SIGKILL after {self.grace:g}s)"
            )
        elif self.stopped == js.KILLED:
            state = js.KILLED
            result["msg"] = "the job was killed on request"
        elif sig is not None:
            name = proc.signal_name(sig)
            if sig == signal.SIGKILL:
                state = js.VANISHED
                result["msg"] = f"the job's process (pid {self.child}) was killed by {name} (out of memory, or kill -9) before it returned a result"
            else:
                state = js.FAILED
                result["msg"] = f"the job's process (pid {self.child}) was killed by {name}"
        elif result.get("failed"):
            state = js.FAILED
        else:
            state = js.SUCCEEDED
        meta = dict(self.meta, ended_at=ended, elapsed=round(ended - started, 3), rc=rc, signal=sig, files=keep)
        record = js.final_record(self.jid, self.path, result, meta, state)
        try:
            self.store.write(self.jid, record)
        except js.JobStoreError as ex:
            # (A full disk, most often.) Free what the job no longer needs and try again, then try a
            # small record; if even that fails, readers will see the supervisor gone without a
            # result (vanished). The output files are kept either way.
            self.store.remove_extra(self.jid, ("payload", "args", "pyz"))
            try:
                self.store.write(self.jid, record)
            except js.JobStoreError:
                kept = {s: p for s in ("stdout", "stderr") for p in [self.store.extra_path(self.jid, s)] if os.path.exists(p)}
                small = js.final_record(self.jid, self.path, {"msg": f"could not record the job's result: {ex}"}, dict(meta, files=kept), js.FAILED)
                try:
                    self.store.write(self.jid, small)
                except js.JobStoreError:
                    pass
                return
        drop = [s for s in ("stdout", "stderr") if s not in keep]
        self.store.remove_extra(self.jid, ["payload", "args", "pyz"] + drop)

    def _remove_task_tmp(self) -> None:
        """Keyword mode: the task's tmp dir, which the module may use while it runs (get_url
        downloads into it), goes when the job has ended, as with ansible-core's wrapper."""
        if self.spec.get("remove_after"):
            import shutil

            shutil.rmtree(self.spec["remove_after"], ignore_errors=True)

    # --- main ---------------------------------------------------------------
    def run(self, ack: int) -> int:
        self._install_signals()
        subreaper = proc.set_subreaper()
        started = time.time()
        try:
            out_fd = self.store.open_output(self.jid, "stdout")
            err_fd = self.store.open_output(self.jid, "stderr")
            self.child = self._spawn(list(self.spec["argv"]), out_fd, err_fd)
            os.close(out_fd)
            os.close(err_fd)
            me = os.getpid()
            self.meta = {
                "name": self.spec.get("name"),
                "module": self.spec.get("module"),
                "cmd": self.spec.get("cmd") if self.mode == "command" else None,
                "pid": me,
                "pid_start": proc.start_time(me),
                "boot_id": proc.boot_id(),
                "child_pid": self.child,
                "child_start": proc.start_time(self.child),
                "subreaper": subreaper,
                "started_at": started,
                "ended_at": None,
                "timeout": self.timeout,
                "deadline": started + self.timeout if self.timeout else None,
                "grace": self.grace,
            }
            self.store.write(self.jid, js.running_record(self.jid, self.path, self.meta))
        except (js.JobStoreError, SpawnError, OSError, KeyError, ValueError) as ex:
            if self.child:
                proc.kill_tree(self.child, root=os.getpid(), grace=0, reap=self._reap)
            self.store.remove_extra(self.jid, ("payload", "args", "pyz", "stdout", "stderr"))
            os.write(ack, json.dumps({"failed": True, "msg": f"job {self.jid}: {ex}"}).encode() + b"\n")
            return 1
        if self.timeout:
            signal.setitimer(signal.ITIMER_REAL, max(self.timeout - (time.time() - started), 0.001))
        os.write(ack, b'{"ok": true}\n')
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 1)
        os.dup2(null, 2)
        os.close(null)
        self._wait_child()
        self._finish(started)
        return 0


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
    """Entry point of the supervisor interpreter: spec on stdin, acknowledgement on stdout."""
    try:
        spec = json.loads(sys.stdin.buffer.read().decode("utf-8"))
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        code = Supervisor(spec).run(1)
    except Exception as ex:  # the launcher reports this line as the job's failure
        os.write(1, json.dumps({"failed": True, "msg": f"supervisor failed to start: {ex!r}"}).encode() + b"\n")
        code = 1
    os._exit(code)
