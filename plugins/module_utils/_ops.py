# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""The host-side operations of the collection, callable without AnsibleModule. Private to detached.jobs.

Each operation takes plain parameters (already validated by the action or by AnsibleModule)
and returns a result dict. The modules are thin wrappers around them, and the action plugins
can also run them directly with a lean interpreter (see plugin_utils/_remote.py): that skips
the AnsiballZ start-up, which dominates the cost of a launch or of a wait round.
Standard library only, Python 3.8+.
"""

from __future__ import annotations

import time

from ansible_collections.detached.jobs.plugins.module_utils import _control, _launch
from ansible_collections.detached.jobs.plugins.module_utils import _ids as ids
from ansible_collections.detached.jobs.plugins.module_utils import _jobstore as js
from ansible_collections.detached.jobs.plugins.module_utils._ids import BECOME_HINT, REMOVED_HINT, missing_msg

TYPE_CHECKING = False  # typing is not imported at run time (the host code stays lean)
if TYPE_CHECKING:
    import typing as t

_TICK = 0.05
_LIVENESS_EVERY = 1.0
_MISSING_GRACE = 2.0


def start(params: dict, check_mode: bool = False) -> dict:
    """Launch jobs (the async_wrapper module): params jobs (list of job specs), async_dir."""
    try:
        store = js.JobStore(params.get("async_dir") or ids.DEFAULT_ASYNC_DIR, create=not check_mode)
        specs = [_control.JobSpec(job) for job in params["jobs"]]
        results = _launch.start(store, specs, check_mode=check_mode)
    except ids.JobError as ex:
        return ids.failure(ex)
    return {"changed": any(r.get("changed") for r in results), "jobs": results, "async_dir": store.path}


def status(params: dict, check_mode: bool = False) -> dict:
    """Status, cleanup or kill of one job (the async_status module): params jid, mode, _async_dir.

    The job's own result comes back nested under "job"; the action makes it the task's result.
    """
    jid = params["jid"]
    mode = params.get("mode") or "status"
    fail = dict(ansible_job_id=jid, started=True, finished=True)
    path = None
    try:
        ids.validate_jid(jid)
        store = js.JobStore(params.get("_async_dir") or ids.DEFAULT_ASYNC_DIR, create=False)
        path = store.job_path(jid)
        if mode == "cleanup":
            files = store.files_of(jid)
            if not files:
                raise ids.JobNotFound(f"job {jid}: no status file {store.job_path(jid)}")
            _refuse_running(store, jid)
            stopped = None if check_mode else _stop_leftovers(store, jid)
            removed = files if check_mode else store.remove(jid)
            result = {"changed": bool(removed), "ansible_job_id": jid, "erased": store.job_path(jid), "removed": removed}
            if stopped:
                result["stopped"] = stopped
            return result
        if mode == "kill":
            if check_mode:
                job = _control.status(store, jid, persist=False)
                return {"changed": not job["finished"], "job": job}
            job, changed = _control.kill(store, jid)
            return {"changed": changed, "job": job}
        job = _control.status(store, jid, persist=not check_mode)
        result = {"changed": False, "job": job}
        if params.get("tail"):
            result["tail"] = _control.tail(store, jid, job, int(params["tail"]), _tail_bytes(params))
        return result
    except ids.JobNotFound as ex:
        return ids.failure(ids.JobNotFound(missing_msg(jid, path) if path else f"could not find job: {ex}"), **fail)
    except ids.NotKillable as ex:
        return ids.failure(ex, ansible_job_id=jid, started=True, finished=False)
    except ids.JobError as ex:
        return ids.failure(ex, **fail)


def _tail_bytes(params: dict) -> int:
    value = params.get("tail_bytes")
    return int(value) if value else ids.TAIL_BYTES


def _refuse_running(store: js.JobStore, jid: str) -> None:
    """A cleanup of a job that still runs is refused: it would delete the output the job is
    writing and free its name for a second copy, and its record would then read succeeded."""
    try:
        job = _control.status(store, jid, persist=False)
    except ids.JobError:
        return  # (a damaged status file: its files may go)
    if not job["finished"]:
        state = (job.get("detached") or {}).get("state") or ids.RUNNING
        raise ids.JobError(
            f"job {jid} is still {state}; a cleanup would delete its output and free its name while it runs, so its files are "
            "kept: kill it first (mode=kill, or wait with on_timeout=kill), then clean it up",
            ids.STILL_RUNNING,
        )


def _stop_leftovers(store: js.JobStore, jid: str) -> str | None:
    """Before a cleanup: a vanished job's processes still running unsupervised are stopped.

    Once its files are gone nothing could find or kill them (ansible-core cleans up after every
    poll task, a failed one included). Returns what was stopped, or None; a process that cannot
    be stopped safely (NotKillable) keeps the job's files, as the error says.
    """
    try:
        job = _control.status(store, jid)
    except ids.JobError:
        return None
    meta = job.get("detached") or {}
    if meta.get("state") != ids.VANISHED:
        return None
    try:
        dummy, changed = _control.kill(store, jid)
    except ids.NotKillable:
        raise
    except ids.JobError:
        return None
    return f"its process {meta.get('child_pid')} (still running unsupervised)" if changed else None


def _running_view(view: dict) -> dict:
    """A running job's status without its (possibly large) payload."""
    keep = ("started", "finished", "ansible_job_id", "results_file", "detached")
    return {k: view[k] for k in keep if k in view}


def long_poll(
    store: js.JobStore, jids: list[str], block: float, persist: bool, until: str = "any", reasons: dict[str, str] | None = None
) -> tuple[dict, dict]:
    """Read every job until the controller has something to act on, or block seconds pass; return (views, errors).

    errors: {jid: message}; reasons, if given, gets {jid: reason} for the same jobs (see _ids.REASONS).

    until: "any" returns as soon as one job finishes (or cannot be read); "bad" as soon as one
    ends other than succeeded (or cannot be read), or all have ended; "all" once every job has
    ended (or cannot be read). Status files are re-read only when they change (mtime) and
    liveness is checked once a second, so waiting on many jobs costs a few stat calls per tick;
    the call returns within a tick (0.05 s) of the moment it has its answer.
    """
    start_ = time.monotonic()
    deadline = start_ + block
    seen: dict[str, int | None] = {}
    views: dict[str, dict] = {}
    errors: dict[str, str] = {}
    reasons = {} if reasons is None else reasons
    last_liveness = start_
    first = True
    while True:
        now = time.monotonic()
        liveness = first or now - last_liveness >= _LIVENESS_EVERY
        if liveness:
            last_liveness = now
        changed = False
        bad = False
        waiting_for_missing = False
        for jid in jids:
            if jid in errors:
                continue
            mtime = store.mtime_ns(jid)
            if not liveness and jid in seen and mtime == seen[jid]:
                continue
            seen[jid] = mtime
            try:
                view = _control.status(store, jid, persist=persist)
            except ids.JobNotFound:
                if now - start_ < _MISSING_GRACE and now < deadline:
                    waiting_for_missing = True
                    seen.pop(jid, None)
                    continue
                errors[jid], reasons[jid] = missing_msg(jid, store.job_path(jid)), ids.NOT_FOUND
                changed = bad = True
                continue
            except ids.JobError as ex:
                errors[jid], reasons[jid] = str(ex), ex.reason
                changed = bad = True
                continue
            if view["finished"]:
                if views.get(jid, {}).get("finished") is not True:
                    changed = True
                    bad = bad or ids.state_of(view) != ids.SUCCEEDED
                views[jid] = view
            else:
                views[jid] = _running_view(view)
        first = False
        ended = all(jid in errors or views.get(jid, {}).get("finished") for jid in jids)
        answer = ended or (changed if until == "any" else bad if until == "bad" else False)
        if (answer and not waiting_for_missing) or time.monotonic() >= deadline:
            return views, errors
        time.sleep(_TICK)


def kill_reason(params: dict) -> str | None:
    """Why the wait kills, for the jobs' records: its _mode kill comes with the wait's own on_timeout
    (kill), and fail_fast true when the wait stopped early because a job did not succeed, else
    timeout, the wait's timeout that passed. None (the record says "on request") otherwise."""
    if params.get("on_timeout") != "kill":
        return None
    if params.get("fail_fast"):
        return "because another job did not succeed and the wait stopped early (wait fail_fast and on_timeout: kill)"
    if params.get("timeout"):
        return f"because the wait timed out after {float(params['timeout']):g}s (wait on_timeout: kill)"
    return None


def wait(params: dict, check_mode: bool = False) -> dict:
    """The host side of detached.jobs.wait: params _jids, names, _mode (wait|kill|cleanup), _block, _until, _tail, _async_dir.

    With _mode kill, the wait's on_timeout, fail_fast and timeout say why (see kill_reason).
    The answer's "missing" lists the job ids that have no status file (their "errors" say so).
    "errors" ({job id or name: message}) has its "reasons" beside it ({job id or name: reason}, see _ids.REASONS).
    With _tail, a running job's "tail" that cannot be read is {"error": message, "reason": reason}.
    """
    try:
        store = js.JobStore(params.get("_async_dir") or ids.DEFAULT_ASYNC_DIR, create=False)
    except ids.JobError as ex:  # (a job directory another user could change: refused, saying why)
        return ids.failure(ex)
    errors: dict[str, str] = {}
    reasons: dict[str, str] = {}

    def error(key: str, ex: ids.Error) -> None:
        errors[key], reasons[key] = str(ex), ex.reason

    jids, resolved = _wait_refs(store, params, error)
    result = {"changed": False, "errors": errors, "reasons": reasons, "names": resolved, "async_dir": store.path}
    mode = params.get("_mode") or "wait"
    if mode != "wait":
        changed, views = _kill_or_clean(store, jids, mode, params, check_mode, error)
        return dict(result, changed=changed, jobs=views)
    # Nothing to watch (only names that name no job): answer at once.
    block = 0.0 if check_mode or not jids else float(params.get("_block") or 0)
    polled: dict[str, str] = {}
    views, errs = long_poll(store, jids, block, persist=not check_mode, until=str(params.get("_until") or "any"), reasons=polled)
    errors.update(errs)
    reasons.update(polled)
    result["missing"] = [jid for jid in errs if polled.get(jid) == ids.NOT_FOUND]
    lines = int(params.get("_tail") or 0)
    if lines:
        # The wait's progress display: the last line of each job still going (a few stat and read calls).
        for jid, view in views.items():
            if not view.get("finished"):
                try:
                    view["tail"] = _control.tail(store, jid, view, lines, _tail_bytes(params))
                except ids.JobError as ex:
                    view["tail"] = {"error": str(ex), "reason": ex.reason}
    return dict(result, jobs=views)


def _wait_refs(store: js.JobStore, params: dict, error: t.Callable[[str, ids.Error], None]) -> tuple[list[str], dict[str, str | None]]:
    """The job ids a wait is about (its _jids, then the jobs its names name), and what each name resolved to; error(key, ex) records the bad ones."""
    jids: list[str] = []
    for jid in params.get("_jids") or []:
        try:
            jids.append(ids.validate_jid(jid))
        except ids.JobError as ex:
            error(str(jid), ex)
    resolved: dict[str, str | None] = {}
    for name in params.get("names") or []:
        try:
            found = store.name_get(name)
        except ids.JobError as ex:
            error(name, ex)
            continue
        resolved[name] = found
        if found is None:
            error(name, ids.JobNotFound(f"no job named {name!r} in {store.path}: {REMOVED_HINT.replace('it was', 'its job was')}{BECOME_HINT}"))
        elif found not in jids:
            jids.append(found)
    return jids, resolved


def _kill_or_clean(
    store: js.JobStore, jids: list[str], mode: str, params: dict, check_mode: bool, error: t.Callable[[str, ids.Error], None]
) -> tuple[bool, dict[str, dict]]:
    """A wait's _mode kill or cleanup of jids: (changed, {job id: view}); error(key, ex) records what failed."""
    views: dict[str, dict] = {}
    changed = False
    reason = kill_reason(params)
    for jid in jids:
        try:
            if mode == "kill":
                if check_mode:
                    views[jid] = _control.status(store, jid, persist=False)
                    changed = changed or not views[jid]["finished"]
                    continue
                views[jid], killed = _control.kill(store, jid, reason=reason)
                changed = changed or killed
            else:
                view = _control.status(store, jid, persist=not check_mode)
                if not view["finished"]:
                    error(jid, ids.JobError(f"job {jid} is still running; its files are kept", ids.STILL_RUNNING))
                    continue
                stopped = None if check_mode else _stop_leftovers(store, jid)
                removed = store.files_of(jid) if check_mode else store.remove(jid)
                views[jid] = {"ansible_job_id": jid, "removed": removed}
                if stopped:
                    views[jid]["stopped"] = stopped
                changed = changed or bool(removed)
        except ids.JobError as ex:
            error(jid, ex)
    return changed, views


OPERATIONS = {"start": start, "status": status, "wait": wait}


def run(op: str, params: dict, check_mode: bool = False) -> dict:
    """Entry point of the lean runner and of the modules: one operation, its result as a dict.

    An error of the host code that escapes the operation becomes its failed result here (ids.failure).
    """
    try:
        if op in ("job_info", "prune"):
            # Imported here: starting and waiting, the frequent operations, do not need it.
            from ansible_collections.detached.jobs.plugins.module_utils import _query

            return _query.job_info(params, check_mode) if op == "job_info" else _query.prune(params, check_mode)
        if op not in OPERATIONS:
            raise ids.Error(f"unknown operation {op!r}", ids.INVALID)
        return OPERATIONS[op](params, check_mode)
    except ids.Error as ex:
        return ids.failure(ex)
