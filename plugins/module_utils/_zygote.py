# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""Module jobs that share their imports: the zygote and the in-process module runner. Private to detached.jobs.

A batch's module jobs whose payloads carry the same module zip are started from one process, the
zygote (run by the module interpreter as a module would be, not -I -S): it imports
ansible.module_utils.basic from that zip once (preload), then forks each job's supervisor, handing
it what it imported (Shared), and each supervisor forks the job's process, which runs the
AnsiballZ payload in-process (Shared.runner, run_inproc) instead of executing a new interpreter. The imported
code stays shared, copy-on-write, by every process of the batch: a module job then costs about
half the memory (docs/performance.md).
Linux only (the zip is read through /proc/self/fd); elsewhere, or when the import fails, every job
runs as a new interpreter, as a lone module job does. Standard library only, Python 3.8+.
"""

from __future__ import annotations

import json
import os
import signal
import sys

from ansible_collections.detached.jobs.plugins.module_utils import _ids as ids
from ansible_collections.detached.jobs.plugins.module_utils import _jobstore as js
from ansible_collections.detached.jobs.plugins.module_utils import _slots as slots

TYPE_CHECKING = False  # typing is not imported at run time: the supervisor stays lean
if TYPE_CHECKING:
    import typing as t

_PRELOAD = "ansible.module_utils.basic"


class Shared:
    """What the zygote imported once, as every process of its batch holds it.

    zip: the module zip the imports came from (an unlinked file, open in every process of the
    batch and read through /proc/self/fd/N, so it is never left behind); script: the supervisor's
    own zip on sys.path, which the job's process must not see.
    """

    def __init__(self, zip_file: t.BinaryIO, script: str) -> None:
        self.zip = zip_file
        self.script = script

    def runner(self, payload: str, keep: set) -> t.Callable[[], None]:
        """What the job's process calls to run the module payload in-process (see run_inproc); it never returns."""

        def run() -> None:
            run_inproc(self, payload, keep)

        return run


def zygote(spec: dict, supervise: t.Callable[[dict, Shared | None], int]) -> int:
    """Import the batch's module code once, then fork every job's supervisor (each acknowledges on stdout).

    spec: {"jobs": [the spec of each job's supervisor], "modlib": the module zip, base64};
    supervise(job, shared): run one job's supervisor, in its forked process, and return its exit code.
    """
    jobs = spec["jobs"]
    script = sys.path[0] if sys.path else ""
    found = preload(str(spec.pop("modlib", "")), str(jobs[0]["async_dir"]))
    shared = Shared(found, script) if found is not None else None
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
                code = supervise(job, shared)
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


def preload(modlib: str, where: str) -> t.BinaryIO | None:
    """Import ansible.module_utils.basic from the module zip modlib (base64), kept in an unlinked
    file in the directory where; that file, or None when it is not done."""
    if not modlib or not os.path.isdir("/proc/self/fd") or "ansible" in sys.modules:
        return None
    import base64
    import gc
    import importlib
    import tempfile

    try:
        f = tempfile.TemporaryFile(dir=where)
        f.write(base64.b64decode(modlib))
        f.flush()
    except (OSError, ValueError):
        return None
    path = f"/proc/self/fd/{f.fileno()}"
    sys.path.insert(0, path)
    try:
        importlib.import_module(_PRELOAD)
    except BaseException:  # noqa: B036 - whatever the module code does, the jobs then run as new interpreters
        for name in [n for n in sys.modules if n == "ansible" or n.startswith("ansible.")]:
            del sys.modules[name]
        f.close()
        return None
    finally:
        sys.path.remove(path)
        sys.path_importer_cache.pop(path, None)
    # What was imported is never collected again: the collector, walking it, would write to
    # (and so copy) every page of it in every process.
    gc.collect()
    gc.freeze()
    return f


def _forget_supervisor(shared: Shared) -> None:
    """What the supervisor's interpreter holds and a module's would not: the supervisor's package
    (a collection's module must import its own ansible_collections), its zip on the path, its
    exit handlers, signal dispositions, a temporary directory chosen before TMPDIR was set."""
    import atexit

    for name in [n for n in sys.modules if n == "ansible_collections" or n.startswith("ansible_collections.")]:
        del sys.modules[name]
    sys.path[:] = [p for p in sys.path if p != shared.script]
    sys.path_importer_cache.pop(shared.script, None)
    if "tempfile" in sys.modules:
        setattr(sys.modules["tempfile"], "tempdir", None)  # noqa: B010 - the module is not imported here
    atexit._clear()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in ("SIGPIPE", "SIGXFSZ"):
        if hasattr(signal, sig):
            signal.signal(getattr(signal, sig), signal.SIG_IGN)


def run_inproc(shared: Shared, payload: str, keep: set) -> None:
    """In the job's process (forked from its supervisor): run the module payload as the interpreter
    would run the script, then exit with its status. keep: the descriptors it keeps open, besides
    0, 1, 2 and the module zip (the others are the supervisor's). Never returns."""
    import atexit
    import traceback

    code = 1
    try:
        _forget_supervisor(shared)
        sys.argv[:] = [payload]
        keep = set(keep) | {0, 1, 2, shared.zip.fileno()}
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
