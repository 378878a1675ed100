# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""The start action refuses, before anything starts, module arguments the module does not document,
and a job option of a bad value (its type, its bounds, its choices, what it needs: module_utils/_options),
naming the option and the value."""

from __future__ import annotations

import os
import time
import types
import typing as t
from unittest import mock

import pytest
from ansible.errors import AnsibleActionFail

from ansible_collections.detached.jobs.plugins.action import start
from ansible_collections.detached.jobs.plugins.module_utils import _options as opts


@pytest.fixture(autouse=True)
def _fresh_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty cache, and ansible-core's own modules found as the plugin loader of a run finds them
    (a unit test has no collection loader: ansible.builtin is not importable as a collection here)."""
    import ansible.modules
    from ansible.plugins.loader import module_loader

    def find(name: str, collection_list: object = None) -> object:
        path = os.path.join(os.path.dirname(ansible.modules.__file__), name.rsplit(".", 1)[-1] + ".py")
        found = name.startswith("ansible.builtin.") or "." not in name
        return types.SimpleNamespace(resolved=found and os.path.exists(path), plugin_resolved_path=path if found else None)

    monkeypatch.setattr(module_loader, "find_plugin_with_context", find)
    start._DOCUMENTED.clear()


def test_a_misspelt_option_is_refused_naming_it_and_the_closest() -> None:
    with pytest.raises(AnsibleActionFail) as err:
        start._check_module_args("jobs[1]", "ansible.builtin.command", {"cmdd": "echo hi"}, None)
    msg = str(err.value)
    assert msg.startswith("jobs[1]: unsupported parameter for module ansible.builtin.command: cmdd (did you mean cmd?); nothing was started. ")
    assert "Supported parameters, as the module documents them: argv, chdir, cmd, creates" in msg


def test_several_unknown_options_are_all_named() -> None:
    with pytest.raises(
        AnsibleActionFail, match=r"^the task: unsupported parameters for module ansible.builtin.file: bogus, pathh \(did you mean path\?\); nothing was started"
    ):
        start._check_module_args("the task", "ansible.builtin.file", {"pathh": "/x", "bogus": 1, "state": "touch"}, None)


@pytest.mark.parametrize(
    ("module", "args"),
    [
        ("ansible.builtin.command", {"cmd": "echo hi", "chdir": "/tmp"}),
        ("command", {"_raw_params": "echo hi", "_uses_shell": True}),  # internal keys pass
        ("ansible.builtin.shell", {"cmd": "echo hi", "executable": "/bin/bash"}),
        ("ansible.builtin.file", {"dest": "/tmp/x", "state": "touch", "mode": "0600"}),  # an alias, options of a doc fragment
        ("ansible.builtin.get_url", {"url": "http://x", "dest": "/tmp/x", "timeout": 3}),
        ("ansible.builtin.command", {}),
    ],
)
def test_documented_options_and_aliases_pass(module: str, args: dict) -> None:
    start._check_module_args("the task", module, args, None)


def test_a_module_whose_options_cannot_be_known_is_not_checked() -> None:
    # Not found here: the build of its payload says so; its arguments are not judged.
    start._check_module_args("the task", "no.such.module_at_all", {"anything": 1}, None)
    with mock.patch.object(start, "_read_doc", return_value=None), mock.patch("ansible.utils.plugin_docs.get_docstring", side_effect=ValueError("bad")):
        start._check_module_args("the task", "ansible.builtin.file", {"pathh": 1}, None)
    start._DOCUMENTED.clear()
    with mock.patch.object(start, "_read_doc", return_value={"short_description": "no options section"}):
        start._check_module_args("the task", "ansible.builtin.file", {"pathh": 1}, None)


def test_the_quick_read_falls_back_to_ansible_cores() -> None:
    with mock.patch.object(start, "_read_doc", side_effect=ValueError("odd YAML")):
        with pytest.raises(AnsibleActionFail, match="pathh"):
            start._check_module_args("the task", "ansible.builtin.file", {"pathh": 1}, None)


def test_the_quick_read_finds_what_ansible_core_finds() -> None:
    import ansible.modules
    from ansible.plugins.loader import fragment_loader
    from ansible.utils.plugin_docs import get_docstring

    base = os.path.dirname(ansible.modules.__file__)
    for name in ("command", "shell", "file", "copy", "get_url", "uri", "pip", "apt", "service", "lineinfile"):
        path = os.path.join(base, name + ".py")
        quick = start._read_doc(path, fragment_loader)
        assert quick is not None
        assert quick["options"] == get_docstring(path, fragment_loader, is_module=True)[0]["options"], name


def test_the_documentation_is_read_once_per_module() -> None:
    with mock.patch.object(start, "_read_doc", wraps=start._read_doc) as read:
        for _attempt in range(5):
            start._check_module_args("the task", "ansible.builtin.file", {"path": "/x"}, None)
    assert read.call_count == 1


def test_cost_of_the_check(capsys: pytest.CaptureFixture) -> None:
    """Not an assertion on speed: prints what the first check of a module costs (its documentation read), for the record."""
    for module, args in (("ansible.builtin.command", {"cmd": "true"}), ("ansible.builtin.file", {"path": "/x"})):
        began = time.perf_counter()
        start._check_module_args("the task", module, args, None)
        first = time.perf_counter() - began
        began = time.perf_counter()
        start._check_module_args("the task", module, args, None)
        again = time.perf_counter() - began
        with capsys.disabled():
            print(f"\n{module}: first check {first * 1000:.1f} ms, cached {again * 1000:.3f} ms")


# --- the options of a job, checked against their table (module_utils/_options) before anything is sent ---
def _action(**args: t.Any) -> start.ActionModule:
    task = mock.MagicMock(args=args, async_val=0, check_mode=False, diff=False)
    return start.ActionModule(task, mock.MagicMock(), mock.MagicMock(), loader=None, templar=None, shared_loader_obj=None)


def _refusal(**args: t.Any) -> str:
    """The message the action refuses args with; nothing may have been sent to the host."""
    with mock.patch.object(start, "run_host") as run_host, mock.patch.object(start, "async_dir", return_value="/x"):
        with pytest.raises(AnsibleActionFail) as caught:
            _action(**args).run(task_vars={})
    run_host.assert_not_called()
    return str(caught.value)


def _sent(**args: t.Any) -> list[dict]:
    """The jobs the action hands to the host for args."""
    answer = {"jobs": [{"ansible_job_id": "j1.1", "changed": True}]}
    with mock.patch.object(start, "run_host", return_value=answer) as run_host, mock.patch.object(start, "async_dir", return_value="/x"):
        result = _action(**args).run(task_vars={})
    assert not result.get("failed"), result
    return list(run_host.call_args.args[2]["jobs"])


def _needed(row: opts.Option) -> dict[str, t.Any]:
    """What row needs beside it to be taken at all (a slot, retries)."""
    return {row.needs: {"int": 1, "str": "s1"}[opts.OPTIONS[row.needs].type]} if row.needs else {}


_NUMBERS = [row for row in opts.JOB_OPTIONS + opts.TASK_OPTIONS if row.name in opts.LIMITS]
# (option, a bad value, what the message says besides the option and the value)
_BAD: list[tuple[opts.Option, t.Any, str]] = []
for _row in _NUMBERS:
    _unit, _least, _most, _note = opts.LIMITS[_row.name]
    _BAD.append((_row, _least - (1 if _least else 0.5 if _row.type == "float" else 1), f"must be {_least} or more"))
    _BAD.append((_row, _most + 1, f"at most {_most}"))
    _BAD.append((_row, "many", f"invalid {_row.name} 'many': a {'whole ' if _row.type == 'int' else ''}number"))
for _row in opts.JOB_OPTIONS + opts.TASK_OPTIONS:
    if _row.role == opts.HOST:
        continue
    if _row.type == "bool":
        _BAD.append((_row, "maybe", f"invalid {_row.name} 'maybe': a boolean (true or false)"))
    if _row.choices:
        _BAD.append((_row, "sometimes", "must be one of: " + ", ".join(_row.choices)))


@pytest.mark.parametrize(("row", "value", "words"), _BAD, ids=[f"{row.name}={value!r}" for row, value, words in _BAD])
def test_a_bad_value_is_refused_naming_the_option_and_the_value(row: opts.Option, value: t.Any, words: str) -> None:
    msg = _refusal(cmd="true", **dict(_needed(row), **{row.name: value}))
    assert row.name in msg and str(value) in msg and words in msg, msg
    if row.name in opts.LIMITS and not isinstance(value, str):
        assert msg.startswith(f"the task: {row.name} must be") or msg.startswith(f"the task: invalid {row.name} {value}: "), msg


@pytest.mark.parametrize(("row", "value", "words"), [bad for bad in _BAD if bad[0].role == opts.SETTING], ids=lambda x: getattr(x, "name", repr(x)))
def test_a_bad_value_of_a_batch_job_is_refused_naming_it(row: opts.Option, value: t.Any, words: str) -> None:
    msg = _refusal(jobs=[{"cmd": "true"}, dict({"cmd": "true", row.name: value}, **_needed(row))])
    assert row.name in msg and str(value) in msg and words in msg, msg
    if not isinstance(value, str):
        assert msg.startswith(f"jobs[1]: {row.name} must be") or msg.startswith(f"jobs[1]: invalid {row.name} {value}: "), msg


def test_a_value_of_the_wrong_type_is_refused_with_no_exception_behind_it() -> None:
    # ansible-core before 2.19 puts the traceback of the exception being handled when an action
    # fails into its result ("exception"), as for a crash: the refusal must come from no except block.
    with pytest.raises(AnsibleActionFail) as refused:
        start._check_types({"cmd": "true", "timeout": "many"})
    assert "invalid timeout 'many'" in str(refused.value)
    assert refused.value.__context__ is None


_NEEDY = [row for row in opts.JOB_OPTIONS if row.needs]


def _asking(row: opts.Option) -> t.Any:
    """A value of row that asks for something (not its default of nothing)."""
    return True if row.type == "bool" else row.least + 1 if row.least is not None else "x"


@pytest.mark.parametrize("row", _NEEDY, ids=lambda row: row.name)
def test_an_option_without_what_it_needs_is_refused(row: opts.Option) -> None:
    assert row.needs
    needed = opts.OPTIONS[row.needs]
    words = f"{row.name} needs {row.needs} ({needed.about})"
    assert _refusal(cmd="true", **{row.name: _asking(row)}) == f"the task: {words}"
    assert _refusal(jobs=[{"cmd": "true"}, {"cmd": "true", row.name: _asking(row)}]) == f"jobs[1]: {words}"
    assert _refusal(jobs=[{"cmd": "true"}], **{row.name: _asking(row)}) == f"jobs[0]: {words}"  # the task's, every job's default
    # With what it needs (the job's own or the task's), or left at nothing (false, 0), it is taken.
    assert _sent(cmd="true", **dict(_needed(row), **{row.name: _asking(row)}))[0][row.name] == _asking(row)
    assert _sent(jobs=[{"cmd": "true", row.name: _asking(row)}], **_needed(row))[0][row.name] == _asking(row)
    if row.type == "bool" or row.least == 0:
        _sent(cmd="true", **{row.name: False if row.type == "bool" else 0})


def test_the_defaults_sent_are_the_tables() -> None:
    (job,) = _sent(cmd="true")
    assert {key: job[key] for key in opts.SETTINGS} == {row.name: row.default for row in opts.JOB_OPTIONS if row.role == opts.SETTING}
    assert job["argv"] == ["true"] and "cmd" not in job
    # A batch job takes the task's value where it gives none of its own.
    jobs = _sent(grace=9, jobs=[{"cmd": "true"}, {"cmd": "true", "grace": 2}])
    assert [job["grace"] for job in jobs] == [9, 2]


@pytest.mark.parametrize(("key", "value", "words"), [("argv", {"a": 1}, "a list"), ("args", 5, "a dictionary"), ("args", "not=a=dict x", "a dictionary")])
def test_a_value_of_another_kind_is_refused_naming_it(key: str, value: t.Any, words: str) -> None:
    what = {"argv": {}, "args": {"module": "ansible.builtin.command"}}[key]
    assert _refusal(**dict(what, **{key: value})) == f"the task: invalid {key} {value!r}: {words}"
    assert _refusal(jobs=[{"cmd": "true"}, dict(what, **{key: value})]) == f"jobs[1]: invalid {key} {value!r}: {words}"
