# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""Keyword mode's wrapper: ansible-core's command lines (2.16 to 2.20, and 2.21) become one real job."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import stat
import subprocess
import sys
import time
import typing as t
from pathlib import Path

import pytest

from ansible_collections.detached.jobs.plugins.module_utils import _control as ctl
from ansible_collections.detached.jobs.plugins.module_utils import _ids as ids
from ansible_collections.detached.jobs.plugins.module_utils import _jobstore as js
from ansible_collections.detached.jobs.plugins.module_utils import _keyword as kw
from ansible_collections.detached.jobs.plugins.module_utils import _launch, _ops
from ansible_collections.detached.jobs.tests.unit.plugins.module_utils._jobs import kill_leftovers, wait_done

MODULE = (
    "#!{python}\n"
    "import json, sys\n"
    'args = open(sys.argv[1]).read() if len(sys.argv) > 1 else ""\n'
    'print(json.dumps({{"changed": True, "args": args, "argv0": sys.argv[0]}}))\n'
)


@pytest.fixture
def task_tmp(tmp_path: Path) -> Path:
    """A task's remote tmp dir as ansible-core leaves it: the module file and its arguments file."""
    d = tmp_path / "ansible-tmp-1"
    d.mkdir()
    (d / "AnsiballZ_ping.py").write_text(MODULE.format(python=sys.executable))
    (d / "args").write_text("data=pong")
    return d


def test_old_command_line(task_tmp: Path) -> None:
    inv = kw.Invocation(["j1", "30", str(task_tmp / "AnsiballZ_ping.py"), str(task_tmp / "args"), "-preserve_tmp"])
    assert (inv.limit, inv.preserve_tmp, inv.interpreter, inv.module) == (30, True, None, "ping")
    assert inv.args_path == str(task_tmp / "args")
    assert inv.jid == f"j1.{os.getpid()}"
    spec = inv.job_spec()
    assert spec.interpreter == [sys.executable] and spec.style == "new" and spec.args_data == "data=pong" and spec.timeout == 30


@pytest.mark.parametrize(("limit", "deadline"), [(0, 0), (1, 1), (3, 3), (5, 5), (6, 10), (10, 10), (11, 15), (60, 60), (3600, 3600)])
def test_builtin_deadline(limit: int, deadline: int) -> None:
    assert kw.builtin_deadline(limit) == deadline


def test_old_command_line_without_args() -> None:
    inv = kw.Invocation(["j1", "0", "/tmp/x/AnsiballZ_ping.py", "_"])
    assert (inv.args_path, inv.preserve_tmp, inv.limit) == (None, False, 0)


def test_new_command_line(task_tmp: Path) -> None:
    module = str(task_tmp / "AnsiballZ_ping.py")
    inv = kw.Invocation(["j2", "10", "false", module, "/usr/bin/env", "python3", module])
    assert (inv.preserve_tmp, inv.interpreter, inv.args_path) == (False, ["/usr/bin/env", "python3"], None)
    inv = kw.Invocation(["j2", "10", "true", module, "/usr/bin/python3", module, str(task_tmp / "args")])
    assert (inv.preserve_tmp, inv.args_path) == (True, str(task_tmp / "args"))


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["j1", "30"], "usage: async_wrapper"),
        (["j1", "soon", "/tmp/m", "_"], "got 'soon'"),
        (["j1", "3", "true", "/tmp/m", "python3", "/tmp/other"], "is not in its command line"),
        (["j1", "3", "true", "/tmp/m", "python3", "/tmp/m", "a", "b"], "more than one argument"),
        (["x;rm", "3", "/tmp/m", "_"], "x;rm"),
    ],
)
def test_bad_command_lines(argv: list[str], words: str) -> None:
    with pytest.raises(ids.JobError if argv[0] == "x;rm" else ids.KeywordError, match=words.replace(";", ".")):
        kw.Invocation(argv)


def test_binary_module_has_no_interpreter(tmp_path: Path) -> None:
    path = tmp_path / "AnsiballZ_bin"
    path.write_bytes(b"\x7fELF...")
    spec = kw.Invocation(["j1", "5", str(path), "_"]).job_spec()
    assert (spec.style, spec.interpreter) == ("binary", [])


def test_launch_runs_the_module_as_a_job_and_removes_the_task_tmp(task_tmp: Path, live_store: js.JobStore) -> None:
    answer = kw.launch(["j7", "60", str(task_tmp / "AnsiballZ_ping.py"), str(task_tmp / "args")], {"ANSIBLE_ASYNC_DIR": live_store.path})
    jid = answer["ansible_job_id"]
    started = answer.pop("detached")
    assert answer == {
        "failed": False,
        "started": True,
        "finished": False,
        "ansible_job_id": jid,
        "results_file": live_store.job_path(jid),
        "_ansible_suppress_tmpdir_delete": True,
    }
    # A poll: 0 task returns this answer: it carries the job's record as it started, as every keyword-mode result does.
    assert started["state"] in (ids.RUNNING, ids.SUCCEEDED) and started["module"] == "ping" and started["timeout"] == 60
    assert isinstance(started["pid"], int) and started["started_at"] > 0
    view = wait_done(live_store, jid)
    assert not task_tmp.exists(), "the task's tmp dir goes when the job has ended"
    assert view["detached"]["state"] == ids.SUCCEEDED and view["args"] == "data=pong"
    assert view["detached"]["module"] == "ping" and view["detached"]["timeout"] == 60
    assert stat.S_IMODE(os.stat(live_store.job_path(jid)).st_mode) == 0o600


def test_launch_keeps_the_task_tmp_when_asked(task_tmp: Path, live_store: js.JobStore) -> None:
    answer = kw.launch(["j8", "60", str(task_tmp / "AnsiballZ_ping.py"), "_", "-preserve_tmp"], {"ANSIBLE_ASYNC_DIR": live_store.path})
    assert answer["_ansible_suppress_tmpdir_delete"] is False
    wait_done(live_store, answer["ansible_job_id"])
    assert task_tmp.exists()


def test_the_task_tmp_stays_while_the_job_runs(tmp_path: Path, live_store: js.JobStore) -> None:
    """A module may use it while it runs (get_url downloads into it)."""
    task_tmp = tmp_path / "ansible-tmp-2"
    task_tmp.mkdir()
    go = tmp_path / "go"
    (task_tmp / "AnsiballZ_wait.py").write_text(f"#!/bin/sh\nwhile [ ! -f {go} ]; do sleep 0.05; done\nls {task_tmp} >/dev/null && echo '{{}}'\n")
    answer = kw.launch(["j9", "60", str(task_tmp / "AnsiballZ_wait.py"), "_"], {"ANSIBLE_ASYNC_DIR": live_store.path})
    assert task_tmp.exists()
    go.write_text("")
    view = wait_done(live_store, answer["ansible_job_id"])
    assert view["detached"]["state"] == ids.SUCCEEDED, view
    assert not task_tmp.exists()


class _Inv:
    jid = "j1.2"
    preserve_tmp = True


def test_start_answer_without_a_record_is_ansible_cores() -> None:
    answer = kw.start_answer(t.cast(kw.Invocation, _Inv()), "/jobs/j1.2", None)
    assert "detached" not in answer and answer["results_file"] == "/jobs/j1.2" and answer["_ansible_suppress_tmpdir_delete"] is False
    assert kw.start_answer(t.cast(kw.Invocation, _Inv()), "/jobs/j1.2", {"state": "running"})["detached"] == {"state": "running"}


def test_launch_of_a_missing_module_names_it(tmp_path: Path, live_store: js.JobStore) -> None:
    with pytest.raises(ids.KeywordError, match="cannot read the module to run: .*nowhere"):
        kw.launch(["j9", "5", str(tmp_path / "nowhere" / "AnsiballZ_x.py"), "_"], {"ANSIBLE_ASYNC_DIR": live_store.path})


def _until(predicate: t.Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_cleanup_of_a_vanished_job_stops_its_process(live_store: js.JobStore) -> None:
    """ansible-core cleans up after every poll: a vanished job's process must not be left unfindable."""
    [view] = _launch.launch(live_store, [ctl.JobSpec({"argv": ["sleep", "7301"]})])
    jid = view["ansible_job_id"]
    meta = ctl.status(live_store, jid)["detached"]
    os.kill(meta["pid"], 9)
    _until(lambda: bool(ctl.status(live_store, jid)["finished"]), "the job never read finished")
    assert ctl.status(live_store, jid)["detached"]["state"] == ids.VANISHED
    child = meta["child_pid"]
    assert not _gone(child)
    result = _ops.status({"jid": jid, "mode": "cleanup", "_async_dir": live_store.path})
    assert result["stopped"] == f"its process {child} (still running unsupervised)"
    assert live_store.files_of(jid) == []
    _until(lambda: _gone(child), f"process {child} still runs")


def test_records_written_without_the_supervisor_have_its_keys(live_store: js.JobStore) -> None:
    """Vanished and killed-without-supervisor records carry rc and signal too (readers use them)."""
    [view] = _launch.launch(live_store, [ctl.JobSpec({"argv": ["sleep", "7302"]})])
    jid = view["ansible_job_id"]
    os.kill(ctl.status(live_store, jid)["detached"]["pid"], 9)
    _until(lambda: bool(ctl.status(live_store, jid)["finished"]), "the job never read finished")
    vanished = ctl.status(live_store, jid)["detached"]
    assert vanished["state"] == ids.VANISHED and vanished["rc"] is None and vanished["signal"] is None
    killed, changed = ctl.kill(live_store, jid)
    assert changed and killed["detached"]["state"] == ids.KILLED
    assert {"rc", "signal", "files"} <= set(killed["detached"])


# --- keyword/async_wrapper.py itself: a file ansible-core ships as it is ----------------------

ROOT = Path(__file__).resolve().parents[4]
WRAPPER = ROOT / "keyword" / "async_wrapper.py"
STATUS = ROOT / "keyword" / "async_status.py"


def test_wrapper_and_status_files_are_generated_from_the_current_module_utils() -> None:
    res = subprocess.run([sys.executable, str(ROOT / "hack" / "keyword_wrapper.py"), "--check"], capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr


@pytest.fixture
def generator(monkeypatch: pytest.MonkeyPatch) -> t.Any:
    """hack/keyword_wrapper.py as a module (the sys.path entry it adds goes at the test's end)."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    spec = importlib.util.spec_from_file_location("keyword_wrapper_under_test", ROOT / "hack" / "keyword_wrapper.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["async_wrapper.py", "async_status.py"])
def test_check_fails_when_either_file_is_behind(tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str], generator: t.Any) -> None:
    gen = generator
    copies = {}
    for path in (gen.WRAPPER, gen.STATUS):
        copy = tmp_path / os.path.basename(path)
        text = Path(path).read_text(encoding="utf-8")
        if copy.name == name:
            text = text.replace('    "', '    "X', 1)  # a stale blob
        copy.write_text(text, encoding="utf-8")
        copies[path] = str(copy)
    gen.WRAPPER, gen.STATUS = copies[gen.WRAPPER], copies[gen.STATUS]
    assert gen.main(["keyword_wrapper.py", "--check"]) == 1
    assert f"{tmp_path / name} is not up to date" in capsys.readouterr().err
    assert gen.main(["keyword_wrapper.py"]) == 0
    assert gen.main(["keyword_wrapper.py", "--check"]) == 0
    assert (tmp_path / name).read_text(encoding="utf-8") == (ROOT / "keyword" / name).read_text(encoding="utf-8")


def test_status_module_carries_every_module_utils_module_status_main_imports(generator: t.Any) -> None:
    names = generator.imported_by(("_keyword",))
    assert {"_keyword", "_ops", "_specs", "_query", "_control", "_jobstore", "_ids"} <= set(names)


def test_status_module_imports_nothing_of_the_collection_by_name() -> None:
    """AnsiballZ looks up every ansible_collections import of a module on the controller's collections path."""
    import ast

    from ansible.executor.module_common import NEW_STYLE_PYTHON_MODULE_RE

    data = STATUS.read_bytes()
    assert NEW_STYLE_PYTHON_MODULE_RE.search(data) is not None, "it stays an AnsiballZ module (it takes module arguments)"
    imported = set()
    for node in ast.walk(ast.parse(data)):
        if isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    assert not [name for name in imported if name.startswith("ansible_collections")]
    assert [name for name in imported if name.startswith("ansible")] == ["ansible.module_utils.basic"]


def test_status_module_runs_from_its_own_file_alone(tmp_path: Path, task_tmp: Path, live_store: js.JobStore) -> None:
    """As AnsiballZ runs it (ansible-core beside it, no collection on any path): it reads a keyword job."""
    answer = kw.launch(["j10", "60", str(task_tmp / "AnsiballZ_ping.py"), str(task_tmp / "args")], {"ANSIBLE_ASYNC_DIR": live_store.path})
    jid = answer["ansible_job_id"]
    wait_done(live_store, jid)
    module = tmp_path / "alone" / "async_status.py"
    module.parent.mkdir()
    shutil.copy(STATUS, module)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}

    def run(args: dict) -> tuple[int, dict]:
        params = tmp_path / "params.json"
        params.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": dict(args, _async_dir=live_store.path)}))
        # -I: neither PYTHONPATH nor the checkout (the unit tests' path to the collection) is on sys.path.
        res = subprocess.run([sys.executable, "-I", str(module), str(params)], capture_output=True, text=True, env=env, check=False, cwd=str(tmp_path))
        return res.returncode, json.loads(res.stdout)

    probe = subprocess.run([sys.executable, "-I", "-c", "import ansible_collections.detached"], capture_output=True, env=env, cwd=str(tmp_path), check=False)
    assert probe.returncode != 0, "the collection must not be importable here, else this proves nothing"
    rc, status = run({"jid": jid})
    assert rc == 0, status
    assert status["finished"] and status["detached"]["state"] == ids.SUCCEEDED and status["args"] == "data=pong"
    rc, missing = run({"jid": "j1.1"})
    assert rc == 1 and missing["failed"] and missing["msg"] == kw.NOT_FOUND
    rc, cleaned = run({"jid": jid, "mode": "cleanup"})
    assert rc == 0 and live_store.files_of(jid) == []


def test_wrapper_imports_nothing_ansible_core_would_build_into_ansiballz() -> None:
    # ansible-core's own test (module_common.NEW_STYLE_PYTHON_MODULE_RE): a match would make it an AnsiballZ module again.
    from ansible.executor.module_common import NEW_STYLE_PYTHON_MODULE_RE

    data = WRAPPER.read_bytes()
    assert NEW_STYLE_PYTHON_MODULE_RE.search(data) is None
    assert data.startswith(b"#!/bin/sh\n")


@pytest.mark.parametrize("form", ["2.16-2.20", "2.21"])
def test_wrapper_runs_from_its_own_file_alone(tmp_path: Path, task_tmp: Path, form: str) -> None:
    """As ansible-core runs it: /bin/sh, a copy in the task's tmp dir, no collection on any path."""
    wrapper = task_tmp / "async_wrapper.py"
    shutil.copy(WRAPPER, wrapper)
    module = str(task_tmp / "AnsiballZ_ping.py")
    args = str(task_tmp / "args")
    if form == "2.21":
        argv = ["j123456789", "30", "true", module, sys.executable, module, args]
    else:
        argv = ["j123456789", "30", module, args, "-preserve_tmp"]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "ANSIBLE_ASYNC_DIR": str(tmp_path / "jobs")}
    res = subprocess.run(["/bin/sh", str(wrapper)] + argv, capture_output=True, text=True, env=env, check=False, cwd=str(tmp_path))
    assert res.returncode == 0, res.stderr
    answer = json.loads(res.stdout)
    assert answer["started"] and not answer["finished"] and answer["ansible_job_id"].startswith("j123456789.")
    assert answer["detached"]["version"] == 1 and answer["detached"]["timeout"] == 30
    live_store = js.JobStore(str(tmp_path / "jobs"), create=False)
    try:
        done = wait_done(live_store, answer["ansible_job_id"])
    finally:
        kill_leftovers(live_store)
    assert done["detached"]["state"] == "succeeded"
    assert done["args"] == "data=pong" and done["changed"] is True
    # The supervisor's zip application was built from the sources inside the wrapper, and kept.
    assert [p.name for p in (tmp_path / ".cache" / "detached.jobs").iterdir() if p.suffix == ".pyz"]


def test_wrapper_says_what_is_wrong_with_its_command_line(tmp_path: Path) -> None:
    missing = str(tmp_path / "AnsiballZ_gone.py")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "ANSIBLE_ASYNC_DIR": str(tmp_path / "jobs")}
    res = subprocess.run(["/bin/sh", str(WRAPPER), "j1", "30", missing, "_"], capture_output=True, text=True, env=env, check=False)
    answer = json.loads(res.stdout)
    assert res.returncode == 1 and answer["failed"]
    assert "cannot read the module to run" in answer["msg"] and missing in answer["msg"]
