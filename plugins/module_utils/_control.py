# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""Job control on the managed host: launch, refresh (vanished detection), kill. Private to detached.jobs.

Used by the collection's modules; it puts _jobstore (the files) and _process (the processes)
together and holds no knowledge of its own about either. Standard library only, Python 3.8+.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import marshal
import os
import random
import sys
import time
import typing as t
import zipfile

from ansible_collections.detached.jobs.plugins.module_utils import _ids, _supervisor
from ansible_collections.detached.jobs.plugins.module_utils import _jobstore as js
from ansible_collections.detached.jobs.plugins.module_utils import _process as proc

_PKG = "ansible_collections/detached/jobs/plugins/module_utils"
_ACK_TIMEOUT = 60.0


class LaunchError(js.JobStoreError):
    pass


def _source(module: t.Any) -> str:
    loader = getattr(module, "__loader__", None)
    source = loader.get_source(module.__name__) if loader is not None else None
    if source is None:
        with open(module.__file__, encoding="utf-8") as f:
            source = f.read()
    return source


_PYZ: dict[bool, bytes] = {}


def supervisor_pyz(compiled: bool = True) -> bytes:
    """A zip application holding the supervisor and the module_utils it needs (stdlib only).

    compiled: ship bytecode for this interpreter instead of source (the supervisor then
    starts faster and stays about 1 MB smaller, as nothing is compiled in it).
    """
    if compiled not in _PYZ:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for pkg in (
                "ansible_collections",
                "ansible_collections/detached",
                "ansible_collections/detached/jobs",
                "ansible_collections/detached/jobs/plugins",
                _PKG,
            ):
                z.writestr(f"{pkg}/__init__.py", "")
            for mod in (_ids, js, proc, _supervisor):
                path = f"{_PKG}/{mod.__name__.rsplit('.', 1)[-1]}.py"
                if compiled:
                    code = compile(_source(mod), path, "exec", dont_inherit=True)
                    # an unchecked .pyc: magic, flags, mtime, size, code (PEP 552 layout)
                    z.writestr(path + "c", importlib.util.MAGIC_NUMBER + bytes(12) + marshal.dumps(code))
                else:
                    z.writestr(path, _source(mod))
            z.writestr("__main__.py", f"from {_PKG.replace('/', '.')}._supervisor import main\nmain()\n")
        _PYZ[compiled] = buf.getvalue()
    return _PYZ[compiled]


def _new_jid(store: js.JobStore) -> str:
    rng = random.SystemRandom()
    while True:
        jid = js.new_jid(rng.randrange(10**11, 10**12), os.getpid())
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
        self.timeout = spec.get("timeout") or 0
        self.grace = spec.get("grace", 5)
        self.output_limit = spec.get("output_limit")
        self.if_running = spec.get("if_running") or "attach"
        # Keyword mode: a directory the supervisor removes once the job has ended (the task's tmp dir).
        self.remove_after = spec.get("remove_after")
        # Set by the async keyword (ansible-core chose the id); else a new one is made at launch.
        self.jid = _ids.validate_jid(spec["jid"]) if spec.get("jid") else None
        if self.name is not None:
            js.validate_name(self.name)

    @property
    def label(self) -> str:
        return self.name or self.module or (" ".join(self.argv) if self.argv else "?")


class _Pending:
    def __init__(self, jid: str, spec: JobSpec, spawned: proc.Spawned) -> None:
        self.jid = jid
        self.spec = spec
        self.spawned = spawned
        self.error: str | None = None


def _prepare(store: js.JobStore, spec: JobSpec, jid: str) -> tuple[list[str], list[str]]:
    """Write the job's payload files; return the argv of the job's process and the files written."""
    written: list[str] = []
    try:
        if spec.mode == "command":
            return list(spec.argv or []), written
        if not spec.payload:
            raise LaunchError(f"job {spec.label}: neither a module payload nor a command was given")
        payload_path = store.extra_path(jid, "payload")
        mode = 0o700 if spec.style == "binary" else 0o600
        store.create_private(payload_path, base64.b64decode(spec.payload), mode)
        written.append(payload_path)
        argv = [payload_path] if spec.style == "binary" else list(spec.interpreter) + [payload_path]
        if spec.args_data is not None:
            args_path = store.extra_path(jid, "args")
            store.create_private(args_path, spec.args_data.encode("utf-8"))
            written.append(args_path)
            argv.append(args_path)
        return argv, written
    except js.JobStoreError:
        for path in written:
            _unlink(path)
        raise


def _start_supervisor(store: js.JobStore, spec: JobSpec, python: str) -> _Pending:
    jid = spec.jid or _new_jid(store)
    if spec.jid and store.exists(jid):
        raise LaunchError(f"job {jid} ({spec.label}): a job of this id exists already in {store.path}; it is left as it is")
    argv, written = _prepare(store, spec, jid)
    pyz = store.extra_path(jid, "pyz")
    try:
        store.create_private(pyz, supervisor_pyz(compiled=python == sys.executable))
        written.append(pyz)
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
        }
        spawned = proc.spawn_session([python, "-I", "-S", pyz], json.dumps(sup_spec).encode("utf-8"))
    except (OSError, js.JobStoreError) as ex:
        for path in written:
            _unlink(path)
        raise LaunchError(f"job {jid} ({spec.label}): cannot start its supervisor: {ex}") from ex
    return _Pending(jid, spec, spawned)


def _collect_acks(pending: list[_Pending]) -> None:
    """Read every supervisor's acknowledgement (it comes once the running status is recorded)."""
    proc.read_answers([p.spawned for p in pending], _ACK_TIMEOUT)
    for p in pending:
        if p.spawned.error is not None:
            p.error = f"job {p.jid}: its supervisor {p.spawned.error}"
            continue
        try:
            reply = json.loads(p.spawned.answer.decode("utf-8", errors="replace").strip().splitlines()[-1])
        except (ValueError, IndexError):
            reply = {"failed": True, "msg": f"job {p.jid}: its supervisor exited without reporting (code {proc.exit_code(p.spawned)})"}
        if not reply.get("ok"):
            p.error = str(reply.get("msg", reply))


def launch(store: js.JobStore, specs: list[JobSpec], python: str | None = None) -> list[dict]:
    """Start every job (each with its own supervisor, all at once) and return their running views.

    Returns as soon as every supervisor has recorded its job. A job that could not start
    comes back as {"failed": True, "msg": ...} in its place.
    """
    python = python or sys.executable
    pending: list[_Pending | dict] = []
    for spec in specs:
        try:
            pending.append(_start_supervisor(store, spec, python))
        except js.JobStoreError as ex:
            pending.append({"failed": True, "msg": str(ex), "started": False, "finished": True})
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
                    msg=f"job name {spec.name!r} is already running as {current['ansible_job_id']} "
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
                except js.JobStoreError as ex:
                    # (A full disk.) A job that its name cannot find would run on unseen while the
                    # task reports a failure: stop it, and say so.
                    result = _stop_unnamed(store, result["ansible_job_id"], ex)
            results[i] = dict(result, attached=False, changed=not result.get("failed"))
    return [r for r in results if r is not None]


def _stop_unnamed(store: js.JobStore, jid: str, ex: Exception) -> dict:
    try:
        job, dummy = kill(store, jid)
        state = job.get("detached", {}).get("state")
    except js.JobStoreError as kill_ex:
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
    except js.JobNotFound:
        return None
    return None if current["finished"] else current


def status(store: js.JobStore, jid: str, persist: bool = True) -> dict:
    """The job's status as readers return it. A running job whose supervisor is gone becomes vanished.

    Raises JobNotFound / CorruptJob / InvalidJobId from the store.
    """
    record = store.read(jid)
    if js.is_finished(record) or not _ours(record):
        return js.view(jid, store.job_path(jid), record)
    meta = record["detached"]
    if proc.is_alive(meta.get("pid"), meta.get("pid_start"), meta.get("boot_id")):
        return js.view(jid, store.job_path(jid), record)
    record = store.read(jid)  # it may have finished in the meantime
    if js.is_finished(record):
        return js.view(jid, store.job_path(jid), record)
    now = time.time()
    meta = dict(record["detached"])
    started = meta.get("started_at") or now
    meta.update(ended_at=now, elapsed=round(now - started, 3), rc=None, signal=None)
    msg = f"job {jid}: its supervisor (pid {meta.get('pid')}) is gone without recording a result (killed, out of memory, or the host rebooted)"
    if child_alive(meta):
        msg += f"; its process {meta.get('child_pid')} is still running unsupervised: kill it with mode=kill"
    record = js.final_record(jid, store.job_path(jid), {"msg": msg}, meta, js.VANISHED)
    if persist:
        try:
            store.write(jid, record)
        except js.JobStoreError as ex:
            # (A full disk.) The verdict stands; the next reader reaches it again and records it.
            record["msg"] = f"{msg}; this could not be recorded in its status file: {ex}"
    return js.view(jid, store.job_path(jid), record)


def _ours(record: dict) -> bool:
    return isinstance(record.get("detached"), dict) and record["detached"].get("version") is not None


def child_alive(meta: dict) -> bool:
    return proc.is_alive(meta.get("child_pid"), meta.get("child_start"), meta.get("boot_id"))


def kill(store: js.JobStore, jid: str, wait: float | None = None) -> tuple[dict, bool]:
    """Kill a job and its whole process tree. Returns (final status, changed)."""
    record = store.read(jid)
    if not _ours(record):
        if js.is_finished(record):
            return js.view(jid, store.job_path(jid), record), False
        raise js.JobStoreError(f"job {jid}: started by ansible-core's async keyword, which records no process id; it cannot be killed from here")
    meta = dict(record["detached"])
    grace = float(meta.get("grace") or 5)
    if js.is_finished(record) and not (meta.get("state") == js.VANISHED and (child_alive(meta) or proc.marked(jid))):
        return js.view(jid, store.job_path(jid), record), False
    pid = meta.get("pid")
    if isinstance(pid, int) and not js.is_finished(record) and proc.is_alive(pid, meta.get("pid_start"), meta.get("boot_id")):
        try:
            os.kill(pid, 15)
        except OSError as ex:
            raise js.JobStoreError(f"job {jid}: cannot signal its supervisor (pid {pid}): {ex.strerror}") from ex
        deadline = time.monotonic() + (wait if wait is not None else grace + 5)
        while time.monotonic() < deadline:
            record = store.read(jid)
            if js.is_finished(record):
                return js.view(jid, store.job_path(jid), record), True
            time.sleep(0.05)
        # The supervisor did not answer: stop it, then the job, here.
        try:
            os.kill(pid, 9)
        except OSError:
            pass
    # The supervisor (the subreaper) is gone: the job's group, and its processes found by their
    # marker, setsid escapees included.
    proc.kill_tree(meta["child_pid"] if child_alive(meta) else None, root=None, grace=grace, jid=jid)
    now = time.time()
    # The same keys as a record the supervisor writes; the exit code and signal are not known here.
    meta.update(ended_at=now, elapsed=round(now - (meta.get("started_at") or now), 3), rc=None, signal=None)
    meta.setdefault("files", {})
    record = js.final_record(jid, store.job_path(jid), {"msg": "the job was killed on request (its supervisor did not handle it)"}, meta, js.KILLED)
    store.write(jid, record)
    return js.view(jid, store.job_path(jid), record), True


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
