# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""Job control on the managed host: launch, refresh (vanished detection), kill. Private to detached.jobs.

Used by the collection's modules; it puts _jobstore (the files) and _process (the processes)
together and holds no knowledge of its own about either. It also builds the supervisor's zip
application and keeps it in the user's cache directory, outside the job directory (see
supervisor_pyz). Standard library only, Python 3.8+.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import importlib.util
import json
import os
import random
import re
import sys
import time

from ansible_collections.detached.jobs.plugins.module_utils import _ids
from ansible_collections.detached.jobs.plugins.module_utils import _jobstore as js
from ansible_collections.detached.jobs.plugins.module_utils import _options as opts
from ansible_collections.detached.jobs.plugins.module_utils import _process as proc
from ansible_collections.detached.jobs.plugins.module_utils import _safepath as sp
from ansible_collections.detached.jobs.plugins.module_utils import _slots as slots

_PKG = _ids.HOST_PACKAGE.replace(".", "/")
_ACK_TIMEOUT = 60.0


class LaunchError(_ids.JobError):
    pass


# The modules the supervisor's zip application holds (standard library only).
_PYZ_MODULES = _ids.host_files("supervisor")
# Where a built zip application is kept for the next launch, under the user's cache directory.
_CACHE_NAME = "detached.jobs"


def _module_source(name: str) -> str:
    """The source of one of this package's modules, without importing it (the supervisor is only shipped)."""
    fullname = f"{_ids.HOST_PACKAGE}.{name}"
    module = sys.modules.get(fullname)
    spec = getattr(module, "__spec__", None) or importlib.util.find_spec(fullname)
    get_source = getattr(getattr(spec, "loader", None), "get_source", None)
    source = get_source(fullname) if get_source is not None else None
    if source is None:
        # An importer that has the source only once the module is loaded (Mitogen's), or none at
        # all: import it, ask its loader again, else read its file. This import is also what has
        # ansible-core's AnsiballZ ship the supervisor with the modules that launch jobs (it finds
        # the module_utils to ship by reading their imports).
        from ansible_collections.detached.jobs.plugins.module_utils import _supervisor

        module = module or (_supervisor if name == "_supervisor" else importlib.import_module(fullname))
        get_source = getattr(getattr(module, "__loader__", None), "get_source", None)
        source = get_source(fullname) if get_source is not None else None
        if source is None:
            with open(str(module.__file__), encoding="utf-8") as f:
                source = f.read()
    return source


_PYZ: dict[bool, bytes] = {}


def _build_pyz(sources: dict[str, str], compiled: bool) -> bytes:
    # Here, not at the top: a launch that finds the zip in the cache needs none of them.
    import io
    import marshal
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:

        def add(path: str, data: str | bytes) -> None:
            # A fixed date: the same code gives the same bytes (a build is reproducible).
            z.writestr(zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0)), data, zipfile.ZIP_DEFLATED)

        for pkg in (
            "ansible_collections",
            "ansible_collections/detached",
            "ansible_collections/detached/jobs",
            "ansible_collections/detached/jobs/plugins",
            _PKG,
        ):
            add(f"{pkg}/__init__.py", "")
        for name, source in sources.items():
            path = f"{_PKG}/{name}.py"
            if compiled:
                code = compile(source, path, "exec", dont_inherit=True)
                # an unchecked .pyc: magic, flags, mtime, size, code (PEP 552 layout)
                add(path + "c", importlib.util.MAGIC_NUMBER + bytes(12) + marshal.dumps(code))
            else:
                add(path, source)
        add("__main__.py", f"from {_ids.HOST_PACKAGE}._supervisor import main\nmain()\n")
    return buf.getvalue()


def supervisor_pyz(compiled: bool = True) -> bytes:
    """A zip application holding the supervisor and the module_utils it needs (stdlib only).

    compiled: ship bytecode for this interpreter instead of source (the supervisor then
    starts faster and stays about 1 MB smaller, as nothing is compiled in it).
    Built once per host, user, interpreter and version of the code, and kept in the user's
    cache directory (see _cache_dir): every launch in a fresh process (each task of the async
    keyword, each start) then reads it instead of compiling five modules.
    """
    if compiled not in _PYZ:
        sources = {name: _module_source(name) for name in _PYZ_MODULES}
        digest = hashlib.sha256(importlib.util.MAGIC_NUMBER if compiled else b"source")
        for name, source in sources.items():
            digest.update(f"\0{name}\0{source}".encode())
        cache = _cache_dir()
        path = os.path.join(cache, f"supervisor-{digest.hexdigest()[:40]}.pyz") if cache else None
        data = _read_cached(path) if path else None
        if data is None:
            data = _build_pyz(sources, compiled)
            if cache and path:
                _write_cached(cache, path, data)
        _PYZ[compiled] = data
    return _PYZ[compiled]


def _cache_dir() -> str | None:
    """$XDG_CACHE_HOME/detached.jobs (default ~/.cache/detached.jobs), or None when there is no home."""
    base = os.environ.get("XDG_CACHE_HOME") or ""
    if not os.path.isabs(base):
        home = os.path.expanduser("~")
        if not os.path.isabs(home):
            return None
        base = os.path.join(home, ".cache")
    return os.path.join(base, _CACHE_NAME)


def _read_cached(path: str) -> bytes | None:
    """A cached zip application, or None when missing, not ours and private, or not a whole zip."""
    try:
        if sp.private_problem(os.lstat(os.path.dirname(path)), want_dir=True) is not None:
            return None
        fd = os.open(path, sp.READ_FLAGS)
    except OSError:
        return None
    try:
        if sp.private_problem(os.fstat(fd), want_dir=False) is not None:
            return None
        with os.fdopen(fd, "rb") as f:
            fd = -1
            data = f.read()
    except OSError:
        return None
    finally:
        if fd >= 0:
            os.close(fd)
    # A whole zip ends with its end-of-central-directory record (22 bytes, no comment).
    return data if data[-22:-18] == b"PK\x05\x06" else None


def _write_cached(cache: str, path: str, data: bytes) -> None:
    """Keep data at path (atomically, 0600, in a 0700 directory); a cache that cannot be written is skipped."""
    try:
        os.makedirs(cache, mode=0o700, exist_ok=True)
        if sp.private_problem(os.lstat(cache), want_dir=True) is None:
            sp.atomic_write(path, data, "the supervisor's cache")
    except (OSError, _ids.JobError):
        pass


def _new_jid(store: js.JobStore) -> str:
    rng = random.SystemRandom()
    while True:
        jid = _ids.new_jid(rng.randrange(10**11, 10**12), os.getpid())
        if not store.exists(jid):
            return jid


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
                raise LaunchError(f"job {self.label}: invalid {key} {value!r}: {problem}")

    @property
    def label(self) -> str:
        return self.name or self.module or (" ".join(self.argv) if self.argv else "?")


class _Pending:
    """A job whose supervisor is being started: its files, its spec for the supervisor, its answer."""

    def __init__(self, jid: str, spec: JobSpec, sup_spec: dict, written: list[str], ticket: slots.SlotTicket | None, modlib: str | None) -> None:
        self.jid = jid
        self.spec = spec
        self.sup_spec = sup_spec
        self.written = written
        self.ticket = ticket
        # The module zip of a job whose module can run in-process, sharing its imports (see _modlib).
        self.modlib = modlib
        self.spawned: proc.Spawned | None = None
        self.error: str | None = None


def _prepare(store: js.JobStore, spec: JobSpec, jid: str) -> tuple[list[str], list[str], bytes | None]:
    """Write the job's payload files; return the argv of the job's process, the files written and the payload."""
    written: list[str] = []
    try:
        if spec.mode == "command":
            return list(spec.argv or []), written, None
        if not spec.payload:
            raise LaunchError(f"job {spec.label}: neither a module payload nor a command was given")
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
    except _ids.JobError:
        for path in written:
            sp.unlink_quiet(path)
        raise


# The module zip in an AnsiballZ payload: ZIPDATA = '...' (ansible-core before 2.19), zip_data='...' (2.19 on).
_ZIPDATA = re.compile(rb"^\s*(?:ZIPDATA = |zip_data=)b?(['\"])([A-Za-z0-9+/=]+)\1", re.M)


def _modlib(spec: JobSpec, payload: bytes | None, python: str) -> str | None:
    """The module zip (base64) of a module job that can run in-process from a process that has
    imported its module_utils (see _supervisor._zygote), or None.

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


def _prepare_supervisor(store: js.JobStore, spec: JobSpec, python: str) -> _Pending:
    """Write a job's files and take its place in its slot's queue; the supervisor is started by _spawn."""
    jid = spec.jid or _new_jid(store)
    if spec.jid and store.exists(jid):
        raise LaunchError(f"job {jid} ({spec.label}): a job of this id exists already in {store.path}; it is left as it is")
    argv, written, payload = _prepare(store, spec, jid)
    pyz = store.extra_path(jid, "pyz")
    ticket = None
    try:
        store.create_private(pyz, supervisor_pyz(compiled=python == sys.executable))
        written.append(pyz)
        if spec.slot:
            # The job's place in the slot's queue is taken here, in the order of the starts (and of
            # a batch's jobs); the supervisor inherits the ticket and holds it from then on.
            ticket = slots.SlotQueue(store, spec.slot).join(jid, {"limit": spec.slot_limit, "queued_at": time.time()})
    except (OSError, _ids.JobError) as ex:
        for path in written:
            sp.unlink_quiet(path)
        raise LaunchError(f"job {jid} ({spec.label}): cannot start its supervisor: {ex}") from ex
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
    module jobs sharing one module zip (see _supervisor._zygote). A job whose supervisor could
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


def launch(store: js.JobStore, specs: list[JobSpec], python: str | None = None) -> list[dict]:
    """Start every job (each with its own supervisor, all at once) and return their running views.

    Two or more module jobs that carry the same module zip are started together, from one process
    that has imported their module code (see _supervisor._zygote); every other job's supervisor
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
        except _ids.JobError as ex:
            pending.append({"failed": True, "msg": str(ex), "started": False, "finished": True})
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
            results.append({"failed": True, "msg": p.error, "ansible_job_id": p.jid, "started": False, "finished": True})
        else:
            # Report the launch, not the job's outcome: a job that already ended (a fast failure)
            # must not fail the start; its result is read with status or wait.
            view = status(store, p.jid)
            results.append({k: view[k] for k in ("started", "finished", "ansible_job_id", "results_file", "detached") if k in view})
    return results


def start(store: js.JobStore, specs: list[JobSpec], python: str | None = None, check_mode: bool = False) -> list[dict]:
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
        to_launch: list[tuple[int, JobSpec]] = []
        for i, spec in enumerate(specs):
            current = _running_by_name(store, spec.name) if spec.name else None
            if current is None:
                to_launch.append((i, spec))
            elif spec.if_running == "attach":
                results[i] = dict(current, attached=True, changed=False)
            elif spec.if_running == "fail":
                results[i] = dict(
                    failed=True,
                    started=False,
                    finished=True,
                    attached=False,
                    changed=False,
                    msg=f"job name {spec.name!r} is already {current['detached'].get('state') or 'running'} as {current['ansible_job_id']} "
                    f"(pid {current['detached'].get('pid')}); use if_running=attach to return it or if_running=restart to replace it",
                )
            elif check_mode:
                results[i] = dict(_would_start(spec), restarted=current["ansible_job_id"], attached=False, changed=True)
            else:
                kill(store, current["ansible_job_id"])
                to_launch.append((i, spec))
        if check_mode:
            launched = [_would_start(spec) for dummy, spec in to_launch]
        else:
            launched = launch(store, [spec for dummy, spec in to_launch], python)
        for (i, spec), result in zip(to_launch, launched):
            if spec.name and not result.get("failed") and not check_mode:
                try:
                    store.name_set(spec.name, result["ansible_job_id"])
                except _ids.JobError as ex:
                    # (A full disk.) A job that its name cannot find would run on unseen while the
                    # task reports a failure: stop it, and say so.
                    result = _stop_unnamed(store, result["ansible_job_id"], ex)
            results[i] = dict(result, attached=False, changed=not result.get("failed"))
    return [r for r in results if r is not None]


def _stop_unnamed(store: js.JobStore, jid: str, ex: Exception) -> dict:
    try:
        job, dummy = kill(store, jid)
        state = job.get("detached", {}).get("state")
    except _ids.JobError as kill_ex:
        state = f"unknown ({kill_ex})"
    msg = f"{ex}; job {jid} was started but could not be named, so it was stopped (its final state: {state})"
    return {"failed": True, "msg": msg, "ansible_job_id": jid, "started": False, "finished": True}


class _NoLock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _mark(results: list[dict], attached: bool) -> list[dict]:
    return [dict(r, attached=attached, changed=not r.get("failed")) for r in results]


def _would_start(spec: JobSpec) -> dict:
    return {"started": False, "finished": False, "would_start": True, "detached": {"name": spec.name, "module": spec.module, "cmd": spec.argv}}


def _running_by_name(store: js.JobStore, name: str) -> dict | None:
    jid = store.name_get(name)
    if jid is None:
        return None
    try:
        current = status(store, jid)
    except _ids.JobNotFound:
        return None
    return None if current["finished"] else current


def status(store: js.JobStore, jid: str, persist: bool = True) -> dict:
    """The job's status as readers return it. A running job whose supervisor is gone becomes vanished.

    Raises JobNotFound / CorruptJob / InvalidJobId from the store.
    """
    record = store.read(jid)
    if _ids.is_finished(record) or not js.is_ours(record):
        return js.view(jid, store.job_path(jid), record)
    meta = record["detached"]
    if proc.is_alive(meta.get("pid"), meta.get("pid_start"), meta.get("boot_id")):
        return js.view(jid, store.job_path(jid), record)
    record = store.read(jid)  # it may have finished in the meantime
    if _ids.is_finished(record):
        return js.view(jid, store.job_path(jid), record)
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
    record = js.final_record(jid, store.job_path(jid), {"msg": msg}, meta, _ids.VANISHED)
    if persist:
        try:
            store.write(jid, record)
        except _ids.JobError as ex:
            # (A full disk.) The verdict stands; the next reader reaches it again and records it.
            record["msg"] = f"{msg}; this could not be recorded in its status file: {ex}"
    return js.view(jid, store.job_path(jid), record)


def tail(store: js.JobStore, jid: str, view: dict, lines: int, max_bytes: int = js.TAIL_BYTES) -> dict:
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
    if not js.is_ours(record):
        if _ids.is_finished(record):
            return js.view(jid, store.job_path(jid), record), False
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
        return js.view(jid, store.job_path(jid), record), False
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
                return js.view(jid, store.job_path(jid), record), True
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
    record = js.final_record(jid, store.job_path(jid), {"msg": msg}, meta, _ids.KILLED)
    store.write(jid, record)
    return js.view(jid, store.job_path(jid), record), True


def _refuse_unproven(jid: str, what: str, pid: object, start: object, boot: object) -> None:
    """Raise NotKillable unless pid is provably the process the record names (see proc.provable)."""
    if not proc.provable(pid, start, boot):
        raise _ids.NotKillable(
            f"job {jid}: {what} (pid {pid}) cannot be told apart from another process that has the same id: its record "
            f"{'has no start time for it' if start is None else 'names another start time'}; no signal was sent. Stop it on the "
            "host if it is yours"
        )
