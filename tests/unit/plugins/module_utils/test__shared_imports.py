# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""Unit tests of module jobs that share their imports: a batch's module jobs with one module zip
start from one process that imported ansible.module_utils.basic (_zygote.zygote), and each
runs its AnsiballZ payload in-process (_zygote.run_inproc). Real jobs, with a stand-in
AnsiballZ payload that does what ansible-core's does: write its zip to a temporary directory, put
it first on sys.path, import ansible.module_utils.basic, run the module."""

from __future__ import annotations

import base64
import errno
import io
import json
import os
import signal
import sys
import textwrap
import time
import typing as t
import zipfile

import pytest

from ansible_collections.detached.jobs.plugins.module_utils import _control as ctl
from ansible_collections.detached.jobs.plugins.module_utils import _ids as ids
from ansible_collections.detached.jobs.plugins.module_utils import _jobstore as js
from ansible_collections.detached.jobs.plugins.module_utils import _launch, _zygote
from ansible_collections.detached.jobs.plugins.module_utils import _process as proc
from ansible_collections.detached.jobs.plugins.module_utils import _slots as slots
from ansible_collections.detached.jobs.plugins.module_utils import _supervisor as sup
from ansible_collections.detached.jobs.tests.unit.plugins.module_utils._jobs import wait_done

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="jobs share their imports only where /proc/self/fd is (Linux)")

# The stand-in for ansible.module_utils.basic: it says which process imported it.
BASIC = "import os\nIMPORTED_BY = os.getpid()\n"
# The stand-in module: what the job's process looks like from inside.
MODULE = """
import json, os, sys, tempfile
import ansible.module_utils.basic as basic
fds = sorted(int(n) for n in os.listdir("/proc/self/fd"))
print(json.dumps({
    "pid": os.getpid(),
    "imported_by": basic.IMPORTED_BY,
    "basic_file": basic.__file__,
    "argv": sys.argv,
    "tempdir": tempfile.gettempdir(),
    "tmpdir_env": os.environ.get("TMPDIR"),
    "collections_loaded": sorted(n for n in sys.modules if n.startswith("ansible_collections")),
    "fds": fds,
    "cmdline": open("/proc/self/cmdline", "rb").read().decode().split("\\0"),
}))
sys.exit(int(os.environ.get("FAKE_EXIT", "0")))
"""
# The stand-in AnsiballZ wrapper (the parts of it that matter here), in ansible-core 2.19's
# layout (zip_data='...') or the older one (ZIPDATA = '...').
WRAPPER = """
_ANSIBALLZ_WRAPPER = True


def _ansiballz_main(zip_data):
    import base64, os, runpy, shutil, sys, tempfile
    tmp = tempfile.mkdtemp(prefix="ansible_fake_payload_")
    try:
        path = os.path.join(tmp, "payload.zip")
        with open(path, "wb") as f:
            f.write(base64.b64decode(zip_data))
        sys.path.insert(0, path)
        runpy.run_module("ansible.modules.fake", run_name="__main__", alter_sys=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
"""


def zip_b64(module: str = MODULE, basic: str = BASIC) -> str:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, text in {
            "ansible/__init__.py": "",
            "ansible/module_utils/__init__.py": "",
            "ansible/module_utils/basic.py": basic,
            "ansible/modules/__init__.py": "",
            "ansible/modules/fake.py": textwrap.dedent(module),
        }.items():
            z.writestr(name, text)
    return base64.b64encode(buf.getvalue()).decode()


def payload(zip_data: str, layout: str = "2.19") -> str:
    if layout == "2.19":
        main = f"\nif __name__ == '__main__':\n    _ansiballz_main(\nzip_data={zip_data!r},\n)\n"
        return WRAPPER + main
    # ansible-core 2.16 to 2.18: ZIPDATA = '...' inside _ansiballz_main
    return WRAPPER.replace("def _ansiballz_main(zip_data):", f"def _ansiballz_main():\n    ZIPDATA = {zip_data!r}\n    zip_data = ZIPDATA") + (
        "\nif __name__ == '__main__':\n    _ansiballz_main()\n"
    )


def module_spec(text: str, **extra: t.Any) -> ctl.JobSpec:
    encoded = base64.b64encode(text.encode()).decode()
    return ctl.JobSpec(dict({"module": "ansible.builtin.fake", "payload": encoded, "interpreter": [sys.executable], "style": "new"}, **extra))


def start(live_store: js.JobStore, specs: list[ctl.JobSpec]) -> list[str]:
    results = _launch.start(live_store, specs)
    assert not any(r.get("failed") for r in results), results
    return [r["ansible_job_id"] for r in results]


@pytest.mark.parametrize("layout", ["2.19", "2.16"])
def test_a_batch_of_module_jobs_shares_the_imports_and_runs_in_process(live_store: js.JobStore, layout: str) -> None:
    text = payload(zip_b64(), layout)
    jids = start(live_store, [module_spec(text), module_spec(text), module_spec(text)])
    views = [wait_done(live_store, jid) for jid in jids]
    for jid, view in zip(jids, views):
        assert view["detached"]["state"] == ids.SUCCEEDED, view
        # basic was imported once, by the process the supervisors were forked from, from the zip
        # it keeps open (and unlinked) for them
        assert view["imported_by"] != view["pid"]
        assert view["basic_file"].startswith("/proc/self/fd/")
        # the job's process was forked, not executed: its command line is the supervisor's
        assert view["cmdline"][1].endswith(".pyz")
        # and it looks to the module as a new interpreter would
        assert len(view["argv"]) == 1 and view["argv"][0].endswith("ansible/modules/fake.py")  # (runpy's argv[0])
        assert view["collections_loaded"] == []
        assert view["tmpdir_env"] and os.path.basename(view["tmpdir_env"]).startswith(f"detached.jobs-{jid}-")
        assert view["tempdir"] == view["tmpdir_env"]
        # open: the standard streams, the shared zip (/proc/self/fd/N/ansible/...), the listing's own
        extra = set(view["fds"]) - {0, 1, 2, int(view["basic_file"].split("/")[4])}
        assert len(extra) <= 1, view["fds"]
    assert len({v["imported_by"] for v in views}) == 1
    assert sorted(os.listdir(live_store.path)) == sorted(jids)  # payloads, supervisor zips, outputs and the shared zip: gone


def test_a_lone_module_job_runs_as_its_own_interpreter(live_store: js.JobStore) -> None:
    (jid,) = start(live_store, [module_spec(payload(zip_b64()))])
    view = wait_done(live_store, jid)
    assert view["detached"]["state"] == ids.SUCCEEDED, view
    assert view["imported_by"] == view["pid"]
    assert not view["basic_file"].startswith("/proc/")
    assert view["cmdline"][1] == live_store.extra_path(jid, "payload")


def test_jobs_with_other_module_zips_do_not_share(live_store: js.JobStore) -> None:
    one = payload(zip_b64())
    other = payload(zip_b64(module=MODULE + "\n# another module\n"))
    jids = start(live_store, [module_spec(one), module_spec(other)])
    for jid in jids:
        view = wait_done(live_store, jid)
        assert view["imported_by"] == view["pid"], view


def test_an_in_process_module_exits_as_an_interpreter_would(live_store: js.JobStore) -> None:
    boom = payload(zip_b64(module="raise RuntimeError('module blew up')\n"))
    three = payload(zip_b64(module='import sys\nprint(\'{"failed": true, "msg": "three"}\')\nsys.exit(3)\n'))
    jids = start(live_store, [module_spec(boom), module_spec(boom), module_spec(three), module_spec(three)])
    views = [wait_done(live_store, jid) for jid in jids]
    for view in views[:2]:
        assert view["detached"]["state"] == ids.FAILED and view["detached"]["rc"] == 1
        assert "Traceback" in view["module_stderr"] and "RuntimeError: module blew up" in view["module_stderr"]
    for view in views[2:]:
        assert view["detached"]["state"] == ids.FAILED and view["detached"]["rc"] == 3 and view["msg"] == "three"


def test_jobs_run_as_new_interpreters_when_the_shared_import_fails(live_store: js.JobStore) -> None:
    # This basic cannot be imported by a session leader: the process the supervisors are forked
    # from is one, the job's process (a process group leader) is not.
    basic = BASIC + "if os.getsid(0) == os.getpid():\n    raise ImportError('not here')\n"
    text = payload(zip_b64(basic=basic))
    jids = start(live_store, [module_spec(text), module_spec(text)])
    for jid in jids:
        view = wait_done(live_store, jid)
        assert view["detached"]["state"] == ids.SUCCEEDED, view
        assert view["imported_by"] == view["pid"] and view["cmdline"][1] == live_store.extra_path(jid, "payload")


def test_module_jobs_of_one_batch_keep_their_slot_order(live_store: js.JobStore, tmp_path: t.Any) -> None:
    release = tmp_path / "release"
    module = f"""
        import json, os, time
        while not os.path.exists({str(release)!r}):
            time.sleep(0.02)
        print(json.dumps({{"changed": False}}))
    """
    text = payload(zip_b64(module=module))
    jids = start(live_store, [module_spec(text, slot="one", slot_limit=1), module_spec(text, slot="one", slot_limit=1)])
    # The first one runs once its supervisor took the slot (a moment after the start on a starved
    # machine): wait for that, not for a time.
    deadline = time.monotonic() + 120
    while (first := ctl.status(live_store, jids[0]))["detached"]["state"] == ids.QUEUED:
        assert time.monotonic() < deadline, f"the first job never left the queue: {first}"
        time.sleep(0.05)
    second = ctl.status(live_store, jids[1])
    assert first["detached"]["state"] == ids.RUNNING and second["detached"]["state"] == ids.QUEUED
    # Each supervisor (and the job's process) holds its own place in the queue, not the other's.
    queue_dir = slots.SlotQueue(live_store, "one").dir
    for view in (first, second):
        for pid in (view["detached"]["pid"], view["detached"]["child_pid"]):
            if pid is None:
                continue
            held = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
            tickets = {path for path in held if path.startswith(queue_dir + "/")}
            assert len(tickets) == 1, (pid, tickets)
    release.write_text("go")
    for jid in jids:
        assert wait_done(live_store, jid)["detached"]["state"] == ids.SUCCEEDED


def test_zip_found_in_both_payload_layouts() -> None:
    data = zip_b64()
    for layout in ("2.19", "2.16"):
        spec = module_spec(payload(data, layout))
        found = _launch._modlib(spec, base64.b64decode(spec.payload or ""), sys.executable)
        assert found == data


@pytest.mark.parametrize(
    "change",
    [
        {"style": "old"},
        {"args_data": "{}"},
        {"interpreter": ["/bin/sh"]},
        {"interpreter": [sys.executable, "-E"]},
    ],
)
def test_jobs_that_cannot_share_are_not_offered(change: dict) -> None:
    spec = module_spec(payload(zip_b64()), **change)
    assert _launch._modlib(spec, base64.b64decode(spec.payload or ""), sys.executable) is None


def test_a_payload_that_is_not_ansiballz_is_not_offered() -> None:
    spec = module_spec("print('{}')\nzip_data='QUJD'\n")
    assert _launch._modlib(spec, base64.b64decode(spec.payload or ""), sys.executable) is None
    assert _launch._modlib(module_spec(payload(zip_b64())), None, sys.executable) is None


def test_launch_answers_for_each_job_of_a_batch(live_store: js.JobStore) -> None:
    """One zygote answers for all its jobs: one that cannot start fails alone, by its id."""
    text = payload(zip_b64())
    good = module_spec(text)
    bad = module_spec(text, chdir="/nonexistent/dir")
    results = _launch.start(live_store, [good, bad, module_spec(text)])
    assert not results[0].get("failed") and not results[2].get("failed"), results
    assert results[1]["failed"] and "/nonexistent/dir" in results[1]["msg"], results[1]
    for r in (results[0], results[2]):
        assert wait_done(live_store, r["ansible_job_id"])["detached"]["state"] == ids.SUCCEEDED
    assert json.loads(json.dumps(results))  # plain data


def test_jobs_whose_supervisor_cannot_be_forked_leave_nothing_behind(
    live_store: js.JobStore, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture
) -> None:
    """The zygote's fork fails (no more processes): each job it could not start is reported by its
    id, and its files and its place in its slot's queue go."""
    text = payload(zip_b64())
    jobs = [_launch._prepare_supervisor(live_store, module_spec(text, slot="s"), sys.executable) for dummy in range(2)]
    assert all(os.path.exists(live_store.extra_path(job.jid, "payload")) for job in jobs)
    assert len(slots.SlotQueue(live_store, "s")._tickets()) == 2

    def no_fork() -> int:
        raise OSError(errno.EAGAIN, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", no_fork)
    assert _zygote.zygote({"jobs": [job.sup_spec for job in jobs]}, sup.supervise) == 0  # (no zip: nothing is imported here)
    lines = [json.loads(line) for line in capfd.readouterr().out.splitlines()]
    assert [line["jid"] for line in lines] == [job.jid for job in jobs]
    assert all(line["failed"] and "cannot start its supervisor: [Errno 11]" in line["msg"] for line in lines)
    assert slots.SlotQueue(live_store, "s")._tickets() == []
    assert [name for name in os.listdir(live_store.path) if not name.startswith(".")] == []


def test_in_process_jobs_are_killed_with_their_tree_even_without_their_supervisor(live_store: js.JobStore, tmp_path: t.Any) -> None:
    """A kill request stops an in-process module job and what it started; so does a kill after its
    supervisor died of kill -9 (the job's process then runs unsupervised, found by its record)."""
    pids = tmp_path / "pids"
    module = f"""
        import os, subprocess, time
        child = subprocess.Popen(["sleep", "300"])
        with open({str(pids)!r} + str(os.getpid()), "w") as f:
            f.write(f"{{os.getpid()}} {{child.pid}}")
        time.sleep(300)
    """
    text = payload(zip_b64(module=module))
    jids = start(live_store, [module_spec(text, grace=1), module_spec(text, grace=1)])
    metas = [raw_meta(live_store, jid) for jid in jids]

    def tree(meta: dict) -> list[int]:
        path = f"{pids}{meta['child_pid']}"
        deadline = time.monotonic() + 10
        while not os.path.exists(path) or len(open(path).read().split()) < 2:
            assert time.monotonic() < deadline, "the module did not start"
            time.sleep(0.02)
        return [int(x) for x in open(path).read().split()]

    trees = [tree(meta) for meta in metas]
    starts = [{pid: proc.start_time(pid) for pid in pids_} for pids_ in trees]
    assert all(tree_[0] == meta["child_pid"] for tree_, meta in zip(trees, metas))
    for meta in metas:  # in-process: the job's process runs the supervisor's command line
        with open(f"/proc/{meta['child_pid']}/cmdline", "rb") as f:
            assert f.read().split(b"\0")[1].endswith(b".pyz")

    # the first: a kill request, handled by its supervisor
    job, changed = ctl.kill(live_store, jids[0], wait=60)
    assert changed and job["detached"]["state"] == ids.KILLED
    # the second: its supervisor is killed -9 first
    os.kill(metas[1]["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while proc.is_alive(metas[1]["pid"], metas[1]["pid_start"]):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    view = ctl.status(live_store, jids[1])
    assert view["detached"]["state"] == ids.VANISHED and "still running unsupervised" in view["msg"]
    job, changed = ctl.kill(live_store, jids[1])
    assert changed and job["detached"]["state"] == ids.KILLED
    for started in starts:
        for pid, start_time in started.items():
            deadline = time.monotonic() + 10
            while proc.is_alive(pid, start_time):
                assert time.monotonic() < deadline, f"process {pid} is still running"
                time.sleep(0.02)


def raw_meta(live_store: js.JobStore, jid: str) -> dict:
    with open(live_store.job_path(jid)) as f:
        return dict(json.load(f)["detached"])
