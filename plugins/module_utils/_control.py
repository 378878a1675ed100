# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""Job control on the managed host: the job to launch (JobSpec), status (vanished detection), tail, kill. Private to detached.jobs.

Used by the collection's modules; it puts _jobstore (the files) and _process (the processes)
together and holds no knowledge of its own about either. Launching is _launch's (which uses
status and kill here for jobs of the same name), the supervisor's zip application _pyzcache's.
Standard library only, Python 3.8+.
"""

from __future__ import annotations

import os
import time

from ansible_collections.detached.jobs.plugins.module_utils import _ids
from ansible_collections.detached.jobs.plugins.module_utils import _jobstore as js
from ansible_collections.detached.jobs.plugins.module_utils import _options as opts
from ansible_collections.detached.jobs.plugins.module_utils import _process as proc
from ansible_collections.detached.jobs.plugins.module_utils import _records as rec


class JobSpec:
    """One job to launch, as the async_wrapper module received it."""

    def __init__(self, spec: dict) -> None:
        self.mode = "command" if spec.get("argv") else "module"
        self.name = spec.get("name")
        self.module = spec.get("module")
        self.argv = spec.get("argv")
        self.payload = spec.get("payload")
        self.interpreter = spec.get("interpreter") or []
        self.style = spec.get("style") or "new"
        self.args_data = spec.get("args_data")
        self.chdir = spec.get("chdir")
        given = opts.on_host  # the option as spec gives it, else the host's default (_options.JOB_OPTIONS)
        self.timeout = given(spec, "timeout")
        self.grace = given(spec, "grace")
        self.output_limit = given(spec, "output_limit")  # None: the supervisor's default (16 MiB)
        self.if_running = spec.get("if_running") or given(spec, "if_running")
        self.retries = given(spec, "retries")
        self.retry_delay = given(spec, "retry_delay")
        self.backoff = given(spec, "backoff")
        self.retry_max_delay = given(spec, "retry_max_delay")
        self.retry_on_timeout = bool(given(spec, "retry_on_timeout"))
        self.total_timeout = given(spec, "total_timeout")
        self.slot = given(spec, "slot")
        self.slot_limit = given(spec, "slot_limit")
        self.queue_timeout = given(spec, "queue_timeout")
        # Keyword mode: a directory the supervisor removes once the job has ended (the task's tmp dir).
        self.remove_after = spec.get("remove_after")
        # Set by the async keyword (ansible-core chose the id); else a new one is made at launch.
        self.jid = _ids.validate_jid(spec["jid"]) if spec.get("jid") else None
        if self.name is not None:
            _ids.validate_name(self.name)
        if self.slot is not None:
            _ids.validate_name(self.slot, "slot name")
        for key in opts.LIMITS:
            value = getattr(self, key, None)
            problem = None if key in ("output_limit", "poll") and value is None else opts.limit_problem(key, value)
            if problem:
                raise _ids.LaunchError(f"job {self.label}: invalid {key} {value!r}: {problem}")

    @property
    def label(self) -> str:
        return self.name or self.module or (" ".join(self.argv) if self.argv else "?")


def status(store: js.JobStore, jid: str, persist: bool = True) -> dict:
    """The job's status as readers return it. A running job whose supervisor is gone becomes vanished.

    Raises JobNotFound / CorruptJob / InvalidJobId from the store.
    """
    record = store.read(jid)
    if _ids.is_finished(record) or not rec.is_ours(record):
        return rec.view(jid, store.job_path(jid), record)
    meta = record["detached"]
    if proc.is_alive(meta.get("pid"), meta.get("pid_start"), meta.get("boot_id")):
        return rec.view(jid, store.job_path(jid), record)
    record = store.read(jid)  # it may have finished in the meantime
    if _ids.is_finished(record):
        return rec.view(jid, store.job_path(jid), record)
    now = time.time()
    meta = dict(record["detached"])
    started = meta.get("started_at") or now
    meta.update(ended_at=now, elapsed=round(now - started, 3), rc=None, signal=None)
    msg = f"job {jid}: its supervisor (pid {meta.get('pid')}) is gone without recording a result (killed, out of memory, or the host rebooted)"
    if meta.get("state") == _ids.QUEUED:
        msg += f"; the job was queued for slot {meta.get('slot')!r} and never ran"
    elif meta.get("retry_at"):
        msg += f"; it was waiting to start attempt {int(meta.get('attempt') or 0) + 1}, which will not run (the attempts so far are in detached.attempts)"
    if child_alive(meta):
        msg += f"; its process {meta.get('child_pid')} is still running unsupervised: kill it with mode=kill"
    record = rec.final_record(jid, store.job_path(jid), {"msg": msg}, meta, _ids.VANISHED)
    if persist:
        try:
            store.write(jid, record)
        except _ids.JobError as ex:
            # (A full disk.) The verdict stands; the next reader reaches it again and records it.
            record["msg"] = f"{msg}; this could not be recorded in its status file: {ex}"
    return rec.view(jid, store.job_path(jid), record)


def tail(store: js.JobStore, jid: str, view: dict, lines: int, max_bytes: int = _ids.TAIL_BYTES) -> dict:
    """The last lines of a job's output: from its output files while they are there (a running
    job's, or a finished one's that were kept), else from its result's stdout and stderr.

    Returns {"stdout": [...], "stderr": [...], "stdout_bytes": N, "stderr_bytes": N, "last_line": str or None,
    "source": "files" | "result" | "none"}; last_line is the last line of the stream written last
    (from a result: of stdout, else of stderr).
    Reading opens the files read-only and takes no lock: the job and its supervisor never notice.
    """
    out: dict = {"stdout": [], "stderr": [], "stdout_bytes": 0, "stderr_bytes": 0, "last_line": None, "source": "none"}
    newest = None
    finished = bool(view.get("finished"))
    kept = (view.get("detached") or {}).get("files") or {}
    for suffix in ("stdout", "stderr"):
        # A finished job's files are read only when its result says they were kept (output cut or not
        # UTF-8); otherwise its result is the output, and the files are about to go.
        found = store.output_tail(jid, suffix, lines, max_bytes) if not finished or suffix in kept else None
        if found is not None:
            out[suffix], out[f"{suffix}_bytes"], mtime = found
            out["source"] = "files"
            if out[suffix] and (newest is None or mtime >= newest[0]):
                newest = (mtime, out[suffix][-1])
        elif finished and isinstance(view.get(suffix), str):
            out[suffix], out[f"{suffix}_bytes"] = js.text_tail(view[suffix], lines, max_bytes)
            out["source"] = "files" if out["source"] == "files" else "result"
            if out[suffix] and (newest is None or suffix == "stdout"):
                newest = (0.0, out[suffix][-1])
    out["last_line"] = newest[1] if newest else None
    return out


def child_alive(meta: dict) -> bool:
    return proc.is_alive(meta.get("child_pid"), meta.get("child_start"), meta.get("boot_id"))


def kill(store: js.JobStore, jid: str, wait: float | None = None, reason: str | None = None) -> tuple[dict, bool]:
    """Kill a job and its whole process tree. Returns (final status, changed).

    reason: why, as the job's record is to say it ("the job was killed <reason>", e.g. "because
    the wait timed out after 30s (wait on_timeout: kill)"); None: "on request". It reaches the
    supervisor as the file '<jid>.kill', written before the signal (see _supervisor.killed_how).
    """
    try:
        return _kill(store, jid, wait, reason)
    finally:
        if reason:
            store.remove_extra(jid, ["kill"])


def _kill(store: js.JobStore, jid: str, wait: float | None, reason: str | None) -> tuple[dict, bool]:
    record = store.read(jid)
    if not rec.is_ours(record):
        if _ids.is_finished(record):
            return rec.view(jid, store.job_path(jid), record), False
        if _ids.is_mitogen_jid(jid):
            raise _ids.NotKillable(
                f"job {jid}: started by Mitogen's async (strategy mitogen_*), which records a bare process id ({record.get('pid')!r}) "
                "with no start time or boot id, so it cannot be told apart from a later process with that id; it is still running "
                "and is left alone: stop it on the host, or start the job with detached.jobs.start to be able to kill it"
            )
        raise _ids.NotKillable(
            f"job {jid}: started by ansible-core's async keyword, which records no process id; it cannot be killed from here and "
            "is still running (start it with detached.jobs.start, or turn keyword mode on, to be able to kill it)"
        )
    meta = dict(record["detached"])
    grace = float(meta.get("grace") or opts.OPTIONS["grace"].default)
    if _ids.is_finished(record) and not (meta.get("state") == _ids.VANISHED and (child_alive(meta) or proc.marked(jid))):
        return rec.view(jid, store.job_path(jid), record), False
    pid = meta.get("pid")
    boot = meta.get("boot_id")
    if isinstance(pid, int) and not _ids.is_finished(record) and proc.is_alive(pid, meta.get("pid_start"), boot):
        _refuse_unproven(jid, "its supervisor", pid, meta.get("pid_start"), boot)
        if reason:
            store.set_kill_reason(jid, reason)
        try:
            os.kill(pid, 15)
        except OSError as ex:
            raise _ids.JobError(f"job {jid}: cannot signal its supervisor (pid {pid}): {ex.strerror}") from ex
        deadline = time.monotonic() + (wait if wait is not None else grace + 5)
        while time.monotonic() < deadline:
            record = store.read(jid)
            if _ids.is_finished(record):
                return rec.view(jid, store.job_path(jid), record), True
            time.sleep(0.05)
        # The supervisor did not answer: stop it, then the job, here.
        try:
            os.kill(pid, 9)
        except OSError:
            pass
    if child_alive(meta):
        _refuse_unproven(jid, "its process", meta.get("child_pid"), meta.get("child_start"), boot)
    # The supervisor (the subreaper) is gone: the job's group, and its processes found by their
    # marker, setsid escapees included.
    proc.kill_tree(meta.get("child_pid") if child_alive(meta) else None, root=None, grace=grace, jid=jid)
    now = time.time()
    # The same keys as a record the supervisor writes; the exit code and signal are not known here.
    meta.update(ended_at=now, elapsed=round(now - (meta.get("started_at") or now), 3), rc=None, signal=None)
    meta.setdefault("files", {})
    msg = f"the job was killed {reason or 'on request'} (its supervisor did not handle it)"
    record = rec.final_record(jid, store.job_path(jid), {"msg": msg}, meta, _ids.KILLED)
    store.write(jid, record)
    return rec.view(jid, store.job_path(jid), record), True


def _refuse_unproven(jid: str, what: str, pid: object, start: object, boot: object) -> None:
    """Raise NotKillable unless pid is provably the process the record names (see proc.provable)."""
    if not proc.provable(pid, start, boot):
        raise _ids.NotKillable(
            f"job {jid}: {what} (pid {pid}) cannot be told apart from another process that has the same id: its record "
            f"{'has no start time for it' if start is None else 'names another start time'}; no signal was sent. Stop it on the "
            "host if it is yours"
        )
