# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""Unit tests of the modules' main(): argument specs wired to the host operations, results and failures.

A small fake stands in for AnsibleModule (defaults from the module's own argument spec, exit_json
and fail_json captured); the jobs themselves are real processes in a private job directory.
"""

from __future__ import annotations

import os
import stat
import time
import typing as t
from types import ModuleType

import pytest

from ansible_collections.detached.jobs.plugins.modules import async_wrapper, host_operation

# The host sides of these actions are operations of the internal module host_operation.
async_status, wait, job_info, prune = "status", "wait", "job_info", "prune"


class _Exit(Exception):
    def __init__(self, failed: bool, result: dict) -> None:
        super().__init__(result.get("msg"))
        self.failed = failed
        self.result = result


def _defaults(spec: dict, given: dict) -> dict:
    params = {}
    for key, opt in spec.items():
        value = given.get(key, opt.get("default"))
        if opt.get("options") and isinstance(value, list):
            value = [_defaults(opt["options"], item) for item in value]
        params[key] = value
    unknown = set(given) - set(spec)
    assert not unknown, f"options the module does not take: {unknown}"
    return params


def _run(monkeypatch: pytest.MonkeyPatch, module: ModuleType | str, check_mode: bool = False, **given: t.Any) -> _Exit:
    """Run module.main() with the given options (for an operation name: host_operation's main() with
    that operation and the given options as its params); the _Exit it ends with."""
    if isinstance(module, str):
        module, given = host_operation, {"operation": module, "params": given}

    class FakeModule:
        def __init__(self, argument_spec: dict, supports_check_mode: bool = False, **kwargs: t.Any) -> None:
            assert supports_check_mode
            self.params = _defaults(argument_spec, given)
            self.check_mode = check_mode

        def exit_json(self, **result: t.Any) -> None:
            raise _Exit(False, result)

        def fail_json(self, **result: t.Any) -> None:
            assert result.get("msg"), "fail_json without msg"
            raise _Exit(True, result)

    monkeypatch.setattr(module, "AnsibleModule", FakeModule)
    with pytest.raises(_Exit) as ended:
        module.main()
    return ended.value


def _start(monkeypatch: pytest.MonkeyPatch, async_dir: str, **job: t.Any) -> str:
    ended = _run(monkeypatch, async_wrapper, jobs=[job], async_dir=async_dir)
    assert not ended.failed, ended.result
    return str(ended.result["jobs"][0]["ansible_job_id"])


def _wait_finished(monkeypatch: pytest.MonkeyPatch, async_dir: str, jid: str) -> dict:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        ended = _run(monkeypatch, wait, _jids=[jid], _block=5, _async_dir=async_dir)
        view = ended.result["jobs"][jid]
        if view.get("finished"):
            return dict(view)
    raise AssertionError(f"job {jid} did not finish")


def test_start_then_wait_then_status_then_cleanup(monkeypatch: pytest.MonkeyPatch, tmp_path: t.Any) -> None:
    async_dir = str(tmp_path / "jobs")
    jid = _start(monkeypatch, async_dir, argv=["sh", "-c", "echo from-the-job"])
    assert stat.S_IMODE(os.stat(async_dir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(os.path.join(async_dir, jid)).st_mode) == 0o600
    view = _wait_finished(monkeypatch, async_dir, jid)
    assert view["detached"]["state"] == "succeeded"

    status = _run(monkeypatch, async_status, jid=jid, _async_dir=async_dir)
    assert not status.failed
    job = status.result.get("job", status.result)
    assert job["finished"] and job["rc"] == 0 and job["stdout"] == "from-the-job"

    cleanup = _run(monkeypatch, async_status, jid=jid, mode="cleanup", _async_dir=async_dir)
    assert not cleanup.failed and cleanup.result["changed"]
    assert not os.path.exists(os.path.join(async_dir, jid))


def test_async_status_of_a_missing_job_names_the_file_and_become(monkeypatch: pytest.MonkeyPatch, tmp_path: t.Any) -> None:
    async_dir = str(tmp_path / "jobs")
    os.mkdir(async_dir, 0o700)
    ended = _run(monkeypatch, async_status, jid="j1.2", _async_dir=async_dir)
    assert ended.failed
    assert os.path.join(async_dir, "j1.2") in ended.result["msg"]
    assert "become" in ended.result["msg"]


@pytest.mark.parametrize("jid", ["../etc/passwd", "/etc/passwd", "j1.2/../../x", "not-a-job"])
def test_async_status_refuses_bad_ids_before_any_path(monkeypatch: pytest.MonkeyPatch, tmp_path: t.Any, jid: str) -> None:
    async_dir = str(tmp_path / "jobs")
    ended = _run(monkeypatch, async_status, jid=jid, _async_dir=async_dir)
    assert ended.failed
    assert repr(jid) in ended.result["msg"] or jid in ended.result["msg"]
    assert not os.path.exists(async_dir)


def test_kill_through_the_module(monkeypatch: pytest.MonkeyPatch, tmp_path: t.Any) -> None:
    async_dir = str(tmp_path / "jobs")
    jid = _start(monkeypatch, async_dir, argv=["sleep", "6301"])
    check = _run(monkeypatch, async_status, check_mode=True, jid=jid, mode="kill", _async_dir=async_dir)
    assert not check.failed and check.result["changed"]
    running = _run(monkeypatch, async_status, jid=jid, _async_dir=async_dir)
    assert not running.result.get("job", running.result)["finished"]  # check mode killed nothing
    killed = _run(monkeypatch, async_status, jid=jid, mode="kill", _async_dir=async_dir)
    assert not killed.failed and killed.result["changed"]
    assert killed.result.get("job", killed.result)["detached"]["state"] == "killed"


def test_wait_module_reports_bad_ids_and_unknown_names(monkeypatch: pytest.MonkeyPatch, tmp_path: t.Any) -> None:
    async_dir = str(tmp_path / "jobs")
    os.mkdir(async_dir, 0o700)
    ended = _run(monkeypatch, wait, _jids=["../x"], names=["nobody"], _async_dir=async_dir)
    assert not ended.failed
    assert set(ended.result["errors"]) == {"../x", "nobody"}
    assert "no job named 'nobody'" in ended.result["errors"]["nobody"]


def test_job_info_and_prune_modules(monkeypatch: pytest.MonkeyPatch, tmp_path: t.Any) -> None:
    async_dir = str(tmp_path / "jobs")
    done = _start(monkeypatch, async_dir, argv=["true"], name="mod-done")
    _wait_finished(monkeypatch, async_dir, done)
    running = _start(monkeypatch, async_dir, argv=["sleep", "6302"])
    try:
        info = _run(monkeypatch, job_info, _async_dir=async_dir)
        assert not info.failed and info.result["count"] == 2
        by_name = _run(monkeypatch, job_info, names=["mod-done"], _async_dir=async_dir)
        assert [j["ansible_job_id"] for j in by_name.result["jobs"]] == [done]
        bad = _run(monkeypatch, job_info, older_than="yesterday-ish", _async_dir=async_dir)
        assert bad.failed and "yesterday-ish" in bad.result["msg"]

        check = _run(monkeypatch, prune, check_mode=True, older_than=0, _async_dir=async_dir)
        assert not check.failed and check.result["removed"] == [done]
        assert os.path.exists(os.path.join(async_dir, done))  # check mode removes nothing
        pruned = _run(monkeypatch, prune, older_than=0, _async_dir=async_dir)
        assert pruned.result["removed"] == [done] and pruned.result["kept_running"] == 1
        assert not os.path.exists(os.path.join(async_dir, done))
        assert os.path.exists(os.path.join(async_dir, running))
    finally:
        _run(monkeypatch, async_status, jid=running, mode="kill", _async_dir=async_dir)


def test_host_operation_checks_the_params_against_the_operations_spec(monkeypatch: pytest.MonkeyPatch, tmp_path: t.Any) -> None:
    async_dir = str(tmp_path / "jobs")
    unknown = _run(monkeypatch, host_operation, operation="wait", params={"_jids": [], "bogus": 1, "_async_dir": async_dir})
    assert unknown.failed and "bogus" in unknown.result["msg"] and "wait" in unknown.result["msg"]
    wrong = _run(monkeypatch, host_operation, operation="status", params={"jid": "j1.2", "tail": "many", "_async_dir": async_dir})
    assert wrong.failed and "tail" in wrong.result["msg"]
    assert not os.path.exists(async_dir)
