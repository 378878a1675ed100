# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""Listing and pruning the jobs of a job directory. Private to the detached.jobs collection.

Job summaries, filters, and the two host-side operations ``job_info`` and ``prune`` as plain
functions (parameters in, result dict out), like those of ``_ops``. Their argument specs and the
parsing of ages (``30s``, ``15m``, ``2h``, ``7d`` or plain seconds) are in ``_specs``, which the
controller imports too. The files stay ``_jobstore``'s, the records' shapes ``_records``';
liveness (vanished detection) comes from ``_control.status``. Standard library only, Python 3.8+.
"""

from __future__ import annotations

import os
import time
import typing as t

from ansible_collections.detached.jobs.plugins.module_utils import _control
from ansible_collections.detached.jobs.plugins.module_utils import _ids as ids
from ansible_collections.detached.jobs.plugins.module_utils import _jobstore as js
from ansible_collections.detached.jobs.plugins.module_utils import _records as rec
from ansible_collections.detached.jobs.plugins.module_utils import _slots as slots
from ansible_collections.detached.jobs.plugins.module_utils import _tmpdirs as tmpdirs
from ansible_collections.detached.jobs.plugins.module_utils._specs import CORRUPT, INFO_STATES, PRUNE_STATES, parse_age

# Temporary files of atomic writes and the files of a job being launched exist without a
# status file for a moment (a launch gives up after 60 s): whatever the requested age, such
# leftovers are removed only once they are at least this old.
LEFTOVER_MIN_AGE = 600.0
_MSG_MAX = 500


def _count(value: object, option: str) -> int:
    """A number of lines or bytes: an integer, 0 or more (None is 0)."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ids.QueryError(f"invalid {option} {value!r}: a whole number, 0 or more")
    return value


def _validate_jids(jids: t.Iterable[object]) -> set[str]:
    try:
        return {ids.validate_jid(jid) for jid in jids}
    except ids.InvalidJobId as ex:
        raise ids.QueryError(str(ex)) from ex


def _validate_states(states: t.Iterable[object], allowed: tuple[str, ...], option: str = "states") -> set[str]:
    found = set()
    for state in states:
        if state not in allowed:
            raise ids.QueryError(f"invalid {option} value {state!r}: choose from {', '.join(allowed)}")
        found.add(str(state))
    return found


class Job:
    """One job of the directory as read now: its status view, or the error that made it unreadable."""

    def __init__(self, store: js.JobStore, jid: str, files: list[str], now: float) -> None:
        self.jid = jid
        self.path = store.job_path(jid)
        self.files = files
        self.now = now
        self.view: dict | None = None
        self.error: str | None = None
        self.reason: str | None = None  # beside error: its kind (see _ids.REASONS)
        self.mtime: float | None = None
        self.size = 0
        for path in files:
            try:
                st = os.lstat(path)
            except OSError:
                continue
            self.size += st.st_size
            if path == self.path:
                self.mtime = st.st_mtime

    @property
    def meta(self) -> dict:
        return self.view["detached"] if self.view is not None else {}

    @property
    def ours(self) -> bool:
        return self.view is not None and rec.is_ours(self.view)

    @property
    def state(self) -> str:
        return CORRUPT if self.view is None else str(self.meta.get("state"))

    @property
    def name(self) -> str | None:
        name = self.meta.get("name")
        return name if isinstance(name, str) else None

    def _time(self, key: str) -> float | None:
        value = self.meta.get(key) if self.ours else None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        return self.mtime

    @property
    def started_at(self) -> float | None:
        """When the job started (ours; a queued one: when it was queued), else when its status file was last written."""
        return self._time("started_at" if self.meta.get("started_at") is not None or self.meta.get("queued_at") is None else "queued_at")

    @property
    def ended_at(self) -> float | None:
        """When the job ended (ours), else when its status file was last written."""
        return self._time("ended_at")

    def age(self, since: float | None) -> float:
        return max(0.0, self.now - since) if since is not None else 0.0

    def summary(self, details: bool = False) -> dict:
        meta = self.meta
        rc = meta.get("rc")
        if rc is None and self.view is not None and isinstance(self.view.get("rc"), int):
            rc = self.view["rc"]
        out: dict[str, t.Any] = {
            "ansible_job_id": self.jid,
            "name": self.name,
            "state": self.state,
            "finished": bool(self.view["finished"]) if self.view is not None else None,
            "module": meta.get("module"),
            "cmd": meta.get("cmd"),
            "started_at": meta.get("started_at") if self.ours else None,
            "ended_at": meta.get("ended_at") if self.ours else None,
            "elapsed": meta.get("elapsed"),
            "rc": rc,
            "pid": meta.get("pid"),
            "slot": meta.get("slot"),
            "queued_at": meta.get("queued_at"),
            "attempt": meta.get("attempt"),
            "results_file": self.path,
            "files": list(self.files),
            "size": self.size,
            "updated_at": self.mtime,
            "age": round(self.age(self.started_at), 3),
            "foreign": self.view is not None and not self.ours,
        }
        if self.error is not None:
            out["error"], out["reason"] = self.error, self.reason
        elif self.state not in (ids.RUNNING, ids.SUCCEEDED) and self.view is not None and self.view.get("msg"):
            out["msg"] = str(self.view["msg"])[:_MSG_MAX]
        if details and self.view is not None:
            out["record"] = self.view
        return out


def read_jobs(store: js.JobStore, persist: bool, jids: set[str] | None = None) -> tuple[list[Job], dict[str, list[str]], list[str]]:
    """Every job with a status file (refreshed: a running job whose supervisor is gone becomes vanished).

    Returns (jobs, orphans: {jid: files} of job ids without a status file, leftover temporary files).
    A job whose status file cannot be read is returned with its error (state corrupt).
    """
    found, tmps = store.scan()
    now = time.time()
    jobs = []
    orphans = {}
    for jid, files in found.items():
        if jids is not None and jid not in jids:
            continue
        if not files or files[0] != store.job_path(jid):
            orphans[jid] = files
            continue
        job = Job(store, jid, files, now)
        try:
            job.view = _control.status(store, jid, persist=persist)
        except ids.JobNotFound:
            continue  # removed since the listing
        except ids.JobError as ex:
            job.error, job.reason = str(ex), ex.reason
        jobs.append(job)
    jobs.sort(key=lambda j: (j.started_at if j.started_at is not None else now, j.jid))
    return jobs, orphans, tmps


def job_info(params: dict, check_mode: bool = False) -> dict:
    """List jobs (the job_info module): params names, states, jids, older_than, newer_than, details, _async_dir.

    A running job found without its supervisor is recorded as vanished on disk (as async_status
    does, so that every reader agrees), except in check mode; that is bookkeeping, not a change.
    """
    try:
        older = None if params.get("older_than") is None else parse_age(params["older_than"], "older_than")
        newer = None if params.get("newer_than") is None else parse_age(params["newer_than"], "newer_than")
        states = _validate_states(params.get("states") or [], INFO_STATES)
        jids = _validate_jids(params.get("jids") or []) or None
        names = set(params.get("names") or [])
        tail_lines = _count(params.get("tail"), "tail")
        tail_bytes = _count(params.get("tail_bytes"), "tail_bytes") or ids.TAIL_BYTES
        store = js.JobStore(params.get("_async_dir") or ids.DEFAULT_ASYNC_DIR, create=False)
        jobs = read_jobs(store, persist=not check_mode, jids=jids)[0]
    except ids.Error as ex:
        return ids.failure(ex, jobs=[], count=0)
    selected = []
    for job in jobs:
        age = job.age(job.started_at)
        if names and job.name not in names:
            continue
        if states and job.state not in states:
            continue
        if older is not None and age < older:
            continue
        if newer is not None and age >= newer:
            continue
        summary = job.summary(details=bool(params.get("details")))
        if tail_lines and job.view is not None:
            try:
                summary["tail"] = _control.tail(store, job.jid, job.view, tail_lines, tail_bytes)
            except ids.JobError as ex:
                summary["tail"] = {"error": str(ex), "reason": ex.reason}
        selected.append(summary)
    return {"changed": False, "jobs": selected, "count": len(selected), "async_dir": store.path}


def prune(params: dict, check_mode: bool = False) -> dict:
    """Remove finished jobs older than an age (the prune module): params older_than, states, names, _async_dir.

    Running jobs are never removed (nor vanished jobs whose process still runs unsupervised).
    The age of a job is measured from its end (ours) or from its status file's last change.
    Without O(names), leftover temporary files and files of job ids without a status file,
    older than the age and than LEFTOVER_MIN_AGE, go too; so do name index entries that
    point at no job.
    """
    result: dict[str, t.Any] = {"changed": False, "removed": [], "files": [], "kept_running": 0}
    try:
        older = parse_age(params.get("older_than"), "older_than")
        states = _validate_states(params.get("states") or ids.FINAL_STATES, PRUNE_STATES)
        names = set(params.get("names") or [])
        store = js.JobStore(params.get("_async_dir") or ids.DEFAULT_ASYNC_DIR, create=False)
        result["async_dir"] = store.path
        jobs, orphans, tmps = read_jobs(store, persist=not check_mode)
    except ids.Error as ex:
        return ids.failure(ex, **result)
    remover = _Remover(store, check_mode)
    _prune_jobs(jobs, older, states, names, remover, result)
    if not names:
        result["files"].extend(_prune_leftovers([p for files in orphans.values() for p in files] + tmps, older, remover))
    _prune_names(store, names, remover, result)
    if not names and not check_mode:
        _prune_slots(store, remover, result)
    result["changed"] = bool(result["files"])
    if remover.errors:
        return ids.failure(ids.Error(f"could not remove every file of the pruned jobs: {'; '.join(remover.errors)}", ids.IO), **result)
    return result


class _Remover:
    """Removes files of a job directory (in check mode only says which exist), collecting the errors."""

    def __init__(self, store: js.JobStore, check_mode: bool) -> None:
        self.store = store
        self.check_mode = check_mode
        self.errors: list[str] = []

    def __call__(self, paths: list[str]) -> list[str]:
        """The paths removed (in check mode: the paths that would be)."""
        if self.check_mode:
            return [p for p in paths if os.path.lexists(p)]
        gone = []
        for path in paths:
            try:
                if self.store.discard(path):
                    gone.append(path)
            except ids.JobError as ex:
                self.errors.append(str(ex))
        return gone


def _still_running(job: Job) -> bool:
    """Not finished, or vanished with its process still running unsupervised."""
    return job.view is not None and (not job.view["finished"] or (job.state == ids.VANISHED and _control.child_alive(job.meta)))


def _prune_jobs(jobs: list[Job], older: float, states: set[str], names: set[str], remove: _Remover, result: dict) -> None:
    """Remove the selected jobs old enough: their ids go to result removed, their files to result files."""
    for job in jobs:
        if _still_running(job):
            result["kept_running"] += 1
            continue
        if job.state not in states or (names and job.name not in names):
            continue
        if job.age(job.ended_at) < older:
            continue
        gone = remove(job.files)
        tmpdir = tmpdirs.recorded_tmpdir(job.jid, job.meta)
        if gone and tmpdir is not None:
            # (What a module attempt left in its TMPDIR when its supervisor was killed with kill -9.)
            if remove.check_mode or tmpdirs.remove_tmpdir(tmpdir):
                gone.append(tmpdir)
            else:
                remove.errors.append(f"job {job.jid}: cannot remove its temporary directory {tmpdir}")
        if gone:
            result["removed"].append(job.jid)
            result["files"].extend(gone)


def _prune_leftovers(paths: list[str], older: float, remove: _Remover) -> list[str]:
    """Remove leftover files older than the age and than LEFTOVER_MIN_AGE; returns those removed."""
    now = time.time()
    gone = []
    for path in paths:
        try:
            age = now - os.lstat(path).st_mtime
        except OSError:
            continue
        if age >= max(older, LEFTOVER_MIN_AGE):
            gone.extend(remove([path]))
    return gone


def _prune_slots(store: js.JobStore, remove: _Remover, result: dict) -> None:
    """Remove the slot tickets of jobs that are gone (no process holds them); their paths go to result files."""
    try:
        top = store.private_subdir(slots.SLOTS_DIR, create=False)
        queues = sorted(os.listdir(top)) if top else []
    except (OSError, ids.JobError) as ex:
        remove.errors.append(str(ex))
        return
    for slot in queues:
        if not ids.is_name(slot):
            continue
        try:
            result["files"].extend(slots.SlotQueue(store, slot).sweep())
        except ids.JobError as ex:
            remove.errors.append(str(ex))


def _prune_names(store: js.JobStore, names: set[str], remove: _Remover, result: dict) -> None:
    """Remove name index entries (of the given names, or all) that point at no job; their paths go to result files."""
    gone_jids = set(result["removed"]) if remove.check_mode else set()
    try:
        every = store.names()
    except ids.JobError as ex:
        remove.errors.append(str(ex))
        return
    for name in every:
        if names and name not in names:
            continue
        try:
            stale = store.stale_name(name, gone_jids)
            if stale is not None and not remove.check_mode:
                stale = store.name_remove_stale(name)  # again under the lock: a start may be claiming the name
        except ids.JobError as ex:  # (an entry that is not a file of this user's: reported by name, left alone)
            remove.errors.append(str(ex))
            continue
        if stale is not None:
            result["files"].append(stale)
