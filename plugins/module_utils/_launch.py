# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""Launching jobs on the managed host: their files, their supervisors, their names. Private to detached.jobs.

start claims the jobs' names (attach to, refuse or restart a running job of the same name, under
the directory lock) and launch starts each job: its payload files, its place in its slot's queue,
its supervisor (from the zip application of _pyzcache, or a zygote for module jobs that share
their imports, see _zygote), whose acknowledgement it waits for. Status and kill come from
_control. Standard library only, Python 3.8+.
"""

from __future__ import annotations

import base64
import json
import os
import random
import re
import sys
import time

from ansible_collections.detached.jobs.plugins.module_utils import _control, _pyzcache
from ansible_collections.detached.jobs.plugins.module_utils import _ids as ids
from ansible_collections.detached.jobs.plugins.module_utils import _jobstore as js
from ansible_collections.detached.jobs.plugins.module_utils import _process as proc
from ansible_collections.detached.jobs.plugins.module_utils import _safepath as sp
from ansible_collections.detached.jobs.plugins.module_utils import _slots as slots

_ACK_TIMEOUT = 60.0


def _new_jid(store: js.JobStore) -> str:
    rng = random.SystemRandom()
    while True:
        jid = ids.new_jid(rng.randrange(10**11, 10**12), os.getpid())
        if not store.exists(jid):
            return jid


class _Pending:
    """A job whose supervisor is being started: its files, its spec for the supervisor, its answer."""

    def __init__(self, jid: str, spec: _control.JobSpec, sup_spec: dict, written: list[str], ticket: slots.SlotTicket | None, modlib: str | None) -> None:
        self.jid = jid
        self.spec = spec
        self.sup_spec = sup_spec
        self.written = written
        self.ticket = ticket
        # The module zip of a job whose module can run in-process, sharing its imports (see _modlib).
        self.modlib = modlib
        self.spawned: proc.Spawned | None = None
        self.error: str | None = None


def _prepare(store: js.JobStore, spec: _control.JobSpec, jid: str) -> tuple[list[str], list[str], bytes | None]:
    """Write the job's payload files; return the argv of the job's process, the files written and the payload."""
    written: list[str] = []
    try:
        if spec.mode == "command":
            return list(spec.argv or []), written, None
        if not spec.payload:
            raise ids.LaunchError(f"job {spec.label}: neither a module payload nor a command was given")
        payload_path = store.extra_path(jid, "payload")
        mode = 0o700 if spec.style == "binary" else 0o600
        payload = base64.b64decode(spec.payload)
        store.create_private(payload_path, payload, mode)
        written.append(payload_path)
        argv = [payload_path] if spec.style == "binary" else list(spec.interpreter) + [payload_path]
        if spec.args_data is not None:
            args_path = store.extra_path(jid, "args")
            store.create_private(args_path, spec.args_data.encode("utf-8"))
            written.append(args_path)
            argv.append(args_path)
        return argv, written, payload
    except ids.JobError:
        for path in written:
            sp.unlink_quiet(path)
        raise


# The module zip in an AnsiballZ payload: ZIPDATA = '...' (ansible-core before 2.19), zip_data='...' (2.19 on).
_ZIPDATA = re.compile(rb"^\s*(?:ZIPDATA = |zip_data=)b?(['\"])([A-Za-z0-9+/=]+)\1", re.M)


def _modlib(spec: _control.JobSpec, payload: bytes | None, python: str) -> str | None:
    """The module zip (base64) of a module job that can run in-process from a process that has
    imported its module_utils (see _zygote), or None.

    That is an AnsiballZ payload for the launcher's own interpreter, on a host with /proc/self/fd.
    """
    if payload is None or spec.style != "new" or spec.args_data is not None or len(spec.interpreter) != 1:
        return None
    if b"_ANSIBALLZ_WRAPPER = True" not in payload or not os.path.isdir("/proc/self/fd"):
        return None
    try:
        if os.path.realpath(spec.interpreter[0]) != os.path.realpath(python):
            return None
    except (OSError, ValueError):
        return None
    found = _ZIPDATA.search(payload)
    return found.group(2).decode("ascii") if found else None


def _prepare_supervisor(store: js.JobStore, spec: _control.JobSpec, python: str) -> _Pending:
    """Write a job's files and take its place in its slot's queue; the supervisor is started by _spawn."""
    jid = spec.jid or _new_jid(store)
    if spec.jid and store.exists(jid):
        raise ids.LaunchError(f"job {jid} ({spec.label}): a job of this id exists already in {store.path}; it is left as it is")
    argv, written, payload = _prepare(store, spec, jid)
    pyz = store.extra_path(jid, "pyz")
    ticket = None
    try:
        store.create_private(pyz, _pyzcache.supervisor_pyz(compiled=python == sys.executable))
        written.append(pyz)
        if spec.slot:
            # The job's place in the slot's queue is taken here, in the order of the starts (and of
            # a batch's jobs); the supervisor inherits the ticket and holds it from then on.
            ticket = slots.SlotQueue(store, spec.slot).join(jid, {"limit": spec.slot_limit, "queued_at": time.time()})
    except (OSError, ids.JobError) as ex:
        for path in written:
            sp.unlink_quiet(path)
        raise ids.LaunchError(f"job {jid} ({spec.label}): cannot start its supervisor: {ex}") from ex
    sup_spec = {
        "async_dir": store.path,
        "jid": jid,
        "mode": spec.mode,
        "name": spec.name,
        "module": spec.module,
        "argv": argv,
        "cmd": spec.argv,
        "chdir": spec.chdir,
        "timeout": spec.timeout,
        "grace": spec.grace,
        "output_limit": spec.output_limit,
        "remove_after": spec.remove_after,
        "retries": spec.retries,
        "retry_delay": spec.retry_delay,
        "backoff": spec.backoff,
        "retry_max_delay": spec.retry_max_delay,
        "retry_on_timeout": spec.retry_on_timeout,
        "total_timeout": spec.total_timeout,
        "slot": spec.slot,
        "slot_limit": spec.slot_limit,
        "queue_timeout": spec.queue_timeout,
    }
    if ticket is not None:
        sup_spec.update(ticket_path=ticket.path, ticket_fd=ticket.fd)
    modlib = _modlib(spec, payload, python)
    if modlib is not None:
        sup_spec["inproc"] = argv[-1]
    return _Pending(jid, spec, sup_spec, written, ticket, modlib)


def _spawn(store: js.JobStore, group: list[_Pending], python: str) -> None:
    """Start the supervisor of one job, or one process that forks the supervisors of a group of
    module jobs sharing one module zip (see _zygote). A job whose supervisor could
    not be started gets .error, and its files are removed."""
    tickets = tuple(p.ticket.fd for p in group if p.ticket is not None)
    first = group[0]
    pyz = store.extra_path(first.jid, "pyz")
    try:
        if first.modlib is None:
            spawned = proc.spawn_session([python, "-I", "-S", pyz], json.dumps(first.sup_spec).encode("utf-8"), tickets)
        else:
            # Run as a module is (not -I -S): the module's site-packages, user site and PYTHONPATH.
            data = {"jobs": [p.sup_spec for p in group], "modlib": first.modlib}
            spawned = proc.spawn_session([python, pyz], json.dumps(data).encode("utf-8"), tickets)
    except OSError as ex:
        for p in group:
            if p.ticket is not None:
                slots.SlotQueue(store, str(p.spec.slot)).leave(p.ticket)
            for path in p.written:
                sp.unlink_quiet(path)
            p.error = f"job {p.jid} ({p.spec.label}): cannot start its supervisor: {ex}"
        return
    for p in group:
        p.spawned = spawned
        if p.ticket is not None:
            os.close(p.ticket.fd)  # the supervisor has its own copy now


def _collect_acks(pending: list[_Pending]) -> None:
    """Read every supervisor's acknowledgement (it comes once the running status is recorded).

    Each is a JSON line naming its job; a line without a job id (a supervisor or zygote that
    failed before it knew its jobs) answers for every job of that process that has no line.
    """
    spawns: dict[int, proc.Spawned] = {id(p.spawned): p.spawned for p in pending if p.spawned is not None}
    proc.read_answers(list(spawns.values()), _ACK_TIMEOUT)
    for p in pending:
        spawned = p.spawned
        if spawned is None:
            continue
        if spawned.error is not None:
            p.error = f"job {p.jid}: its supervisor {spawned.error}"
            continue
        reply = None
        for line in reversed(spawned.answer.decode("utf-8", errors="replace").splitlines()):
            try:
                found = json.loads(line)
            except ValueError:
                continue
            if isinstance(found, dict) and found.get("jid") == p.jid:
                reply = found
                break
            if isinstance(found, dict) and "jid" not in found and reply is None:
                reply = found
        if reply is None:
            reply = {"failed": True, "msg": f"job {p.jid}: its supervisor exited without reporting (code {proc.exit_code(spawned)})"}
        if not reply.get("ok"):
            p.error = str(reply.get("msg", reply))


def launch(store: js.JobStore, specs: list[_control.JobSpec], python: str | None = None) -> list[dict]:
    """Start every job (each with its own supervisor, all at once) and return their running views.

    Two or more module jobs that carry the same module zip are started together, from one process
    that has imported their module code (see _zygote); every other job's supervisor
    is a new interpreter. Returns as soon as every supervisor has recorded its job. A job that
    could not start comes back as {"failed": True, "msg": ...} in its place.
    """
    python = python or sys.executable
    pending: list[_Pending | dict] = []
    groups: dict[str, list[_Pending]] = {}
    zips: dict[str, str] = {}
    for spec in specs:
        try:
            job = _prepare_supervisor(store, spec, python)
        except ids.JobError as ex:
            pending.append(ids.failure(ex, started=False, finished=True))
            continue
        pending.append(job)
        if job.modlib is not None:
            job.modlib = zips.setdefault(job.modlib, job.modlib)  # one copy of each zip (~300 KB), not one per job
        groups.setdefault(job.modlib if job.modlib is not None else job.jid, []).append(job)
    for group in groups.values():
        if len(group) == 1 and group[0].modlib is not None:
            # Alone, a job shares nothing: the zygote would only make its launch wait for the
            # module's imports, and its supervisor hold them as long as the job runs.
            group[0].modlib = None
            group[0].sup_spec.pop("inproc")
        _spawn(store, group, python)
    _collect_acks([p for p in pending if isinstance(p, _Pending)])
    results = []
    for p in pending:
        if isinstance(p, dict):
            results.append(p)
        elif p.error:
            results.append(ids.failure(ids.LaunchError(p.error), ansible_job_id=p.jid, started=False, finished=True))
        else:
            # Report the launch, not the job's outcome: a job that already ended (a fast failure)
            # must not fail the start; its result is read with status or wait.
            view = _control.status(store, p.jid)
            results.append({k: view[k] for k in ("started", "finished", "ansible_job_id", "results_file", "detached") if k in view})
    return results


def start(store: js.JobStore, specs: list[_control.JobSpec], python: str | None = None, check_mode: bool = False) -> list[dict]:
    """Start jobs, honouring names: a running job of the same name is attached to, refused or restarted.

    Each returned status carries "attached" (True when an existing job was returned) and
    "changed". Names are claimed under the directory lock, so two concurrent starts of one
    name start one job.
    """
    if check_mode and not os.path.isdir(store.path):
        return _mark([_would_start(s) for s in specs], False)
    if not any(spec.name for spec in specs):
        return _mark(launch(store, specs, python) if not check_mode else [_would_start(s) for s in specs], False)
    results: list[dict | None] = [None] * len(specs)
    with _NoLock() if check_mode else store.lock():
        to_launch: list[tuple[int, _control.JobSpec]] = []
        for i, spec in enumerate(specs):
            current = _running_by_name(store, spec.name) if spec.name else None
            if current is None:
                to_launch.append((i, spec))
            elif spec.if_running == "attach":
                results[i] = dict(current, attached=True, changed=False)
            elif spec.if_running == "fail":
                msg = (
                    f"job name {spec.name!r} is already {current['detached'].get('state') or 'running'} as {current['ansible_job_id']} "
                    f"(pid {current['detached'].get('pid')}); use if_running=attach to return it or if_running=restart to replace it"
                )
                results[i] = ids.failure(ids.LaunchError(msg, ids.STILL_RUNNING), started=False, finished=True, attached=False, changed=False)
            elif check_mode:
                results[i] = dict(_would_start(spec), restarted=current["ansible_job_id"], attached=False, changed=True)
            else:
                _control.kill(store, current["ansible_job_id"])
                to_launch.append((i, spec))
        if check_mode:
            launched = [_would_start(spec) for dummy, spec in to_launch]
        else:
            launched = launch(store, [spec for dummy, spec in to_launch], python)
        for (i, spec), result in zip(to_launch, launched):
            if spec.name and not result.get("failed") and not check_mode:
                try:
                    store.name_set(spec.name, result["ansible_job_id"])
                except ids.JobError as ex:
                    # (A full disk.) A job that its name cannot find would run on unseen while the
                    # task reports a failure: stop it, and say so.
                    result = _stop_unnamed(store, result["ansible_job_id"], ex)
            results[i] = dict(result, attached=False, changed=not result.get("failed"))
    return [r for r in results if r is not None]


def _stop_unnamed(store: js.JobStore, jid: str, ex: Exception) -> dict:
    try:
        job, dummy = _control.kill(store, jid)
        state = job.get("detached", {}).get("state")
    except ids.JobError as kill_ex:
        state = f"unknown ({kill_ex})"
    msg = f"{ex}; job {jid} was started but could not be named, so it was stopped (its final state: {state})"
    return ids.failure(ids.LaunchError(msg, ids.reason_of(ex)), ansible_job_id=jid, started=False, finished=True)


class _NoLock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _mark(results: list[dict], attached: bool) -> list[dict]:
    return [dict(r, attached=attached, changed=not r.get("failed")) for r in results]


def _would_start(spec: _control.JobSpec) -> dict:
    return {"started": False, "finished": False, "would_start": True, "detached": {"name": spec.name, "module": spec.module, "cmd": spec.argv}}


def _running_by_name(store: js.JobStore, name: str) -> dict | None:
    jid = store.name_get(name)
    if jid is None:
        return None
    try:
        current = _control.status(store, jid)
    except ids.JobNotFound:
        return None
    return None if current["finished"] else current
