# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""The table of a job's options (module_utils/_options.py) is the one declaration of each option:
the DOCUMENTATION of start and async_wrapper (their YAML, with the collection's doc fragments)
agrees with it (names, types, elements, defaults, choices), and the argument specs, the host's
and the supervisor's defaults are the table's."""

from __future__ import annotations

import importlib
import importlib.util
import typing as t
from pathlib import Path

import pytest
import yaml

from ansible_collections.detached.jobs.plugins.action import start as start_action
from ansible_collections.detached.jobs.plugins.module_utils import _control as ctl
from ansible_collections.detached.jobs.plugins.module_utils import _jobstore as js
from ansible_collections.detached.jobs.plugins.module_utils import _options as opts
from ansible_collections.detached.jobs.plugins.module_utils import _pyzcache, _specs
from ansible_collections.detached.jobs.plugins.module_utils import _supervisor as sup
from ansible_collections.detached.jobs.plugins.plugin_utils import _remote

ROOT = Path(__file__).resolve().parents[4]
PKG = "ansible_collections.detached.jobs.plugins"
JID = "j123456789012.4242"
# The options of a start task that are not a job's: the list of jobs (its elements are checked as jobs).
START_ONLY = {"jobs"}


def _documentation(module: str) -> dict[str, t.Any]:
    """A module's DOCUMENTATION, with the options of the collection's own doc fragments it extends."""
    doc = yaml.safe_load(importlib.import_module(f"{PKG}.modules.{module}").DOCUMENTATION)
    for fragment in doc.get("extends_documentation_fragment") or []:
        if fragment.startswith("detached.jobs."):
            extra = yaml.safe_load(importlib.import_module(f"{PKG}.doc_fragments.{fragment.split('.')[2]}").ModuleDocFragment.DOCUMENTATION)
            for name, option in (extra.get("options") or {}).items():
                doc["options"].setdefault(name, option)
    return doc


def _disagreements(documented: dict[str, dict], rows: t.Iterable[opts.Option], default: t.Callable[[opts.Option], t.Any]) -> list[str]:
    """What a module's documented options say otherwise than the table's rows (default: a row's documented default)."""
    rows = list(rows)
    problems = []
    names = {row.name for row in rows}
    problems += [f"{name}: documented, not in the table" for name in sorted(set(documented) - names)]
    problems += [f"{name}: in the table, not documented" for name in sorted(names - set(documented))]
    for row in rows:
        doc = documented.get(row.name)
        if doc is None:
            continue
        said = {
            "type": (doc.get("type", "str"), row.type),
            "elements": (doc.get("elements"), row.elements),
            "default": (doc.get("default"), default(row)),
            "choices": (doc.get("choices"), list(row.choices) or None),
        }
        for what, (doc_value, table_value) in said.items():
            if doc_value != table_value:
                problems.append(f"{row.name}: {what} {doc_value!r} documented, {table_value!r} in the table")
    return problems


def _task_rows() -> list[opts.Option]:
    return [row for row in opts.JOB_OPTIONS if row.role != opts.HOST]


def _host_rows() -> list[opts.Option]:
    return [row for row in opts.JOB_OPTIONS if row.role != opts.TASK]


def test_start_documents_the_table() -> None:
    options = dict(_documentation("start")["options"])
    for name in START_ONLY:
        options.pop(name)
    assert _disagreements(options, _task_rows() + list(opts.TASK_OPTIONS), lambda row: row.default) == []


def test_start_documents_each_job_of_a_batch_as_the_table() -> None:
    """jobs[] elements take the same options, without defaults of their own (left out, the task's applies)."""
    suboptions = _documentation("start")["options"]["jobs"]["suboptions"]
    assert _disagreements(suboptions, _task_rows(), lambda row: None) == []


def test_async_wrapper_documents_the_table() -> None:
    """The host side documents the host's defaults (timeout 0, output_limit none: the supervisor's)."""
    suboptions = _documentation("async_wrapper")["options"]["jobs"]["suboptions"]
    assert _disagreements(suboptions, _host_rows(), lambda row: row.host_default) == []


def test_a_disagreement_is_found() -> None:
    """The comparison above fails on each kind of difference."""
    rows = _task_rows()
    good = {row.name: {"type": row.type, "default": row.default, **({"elements": row.elements} if row.elements else {})} for row in rows}
    for row in rows:
        if row.choices:
            good[row.name]["choices"] = list(row.choices)
    assert _disagreements(good, rows, lambda row: row.default) == []
    bad = {name: dict(option) for name, option in good.items()}
    bad["grace"]["default"] = 6
    bad["timeout"]["type"] = "float"
    bad["if_running"]["choices"] = ["attach", "fail"]
    bad["argv"]["elements"] = "raw"
    bad["extra"] = {"type": "str"}
    del bad["slot"]
    assert _disagreements(bad, rows, lambda row: row.default) == [
        "extra: documented, not in the table",
        "slot: in the table, not documented",
        "argv: elements 'raw' documented, 'str' in the table",
        "if_running: choices ['attach', 'fail'] documented, ['attach', 'fail', 'restart'] in the table",
        "timeout: type 'float' documented, 'int' in the table",
        "grace: default 6 documented, 5 in the table",
    ]


def test_the_argument_specs_are_the_tables() -> None:
    assert _specs.JOB_SPEC == opts.host_spec()
    assert _specs.SPECS["start"]["jobs"]["options"] is _specs.JOB_SPEC
    assert start_action._JOB_OPTIONS == opts.task_spec()
    assert start_action.ARGUMENT_SPEC["jobs"]["options"] == opts.task_spec()
    assert {key: start_action.ARGUMENT_SPEC[key].get("default") for key in ("poll", "cleanup")} == {"poll": 0, "cleanup": False}
    # Every option the action passes on is one the host takes.
    assert set(start_action._PASSED) <= set(_specs.JOB_SPEC)
    assert opts.host_spec()["timeout"] == {"type": "int", "default": 0}
    assert opts.host_spec()["output_limit"] == {"type": "int"}  # none: the supervisor's default
    assert opts.host_spec()["payload"] == {"type": "str", "no_log": True}
    assert opts.task_spec()["if_running"] == {"type": "str", "choices": ["attach", "fail", "restart"]}


def test_every_row_is_whole() -> None:
    for row in opts.JOB_OPTIONS + opts.TASK_OPTIONS:
        assert row.role in (opts.SETTING, opts.TASK, opts.HOST, opts.WHAT), row.name
        assert row.type in ("str", "int", "float", "bool", "path", "list", "dict"), row.name
        assert (row.least is None) == (row.most is None), row.name
        if row.least is not None:
            assert row.type in ("int", "float") and row.least <= row.default <= row.most, row.name
        if row.needs:
            assert row.needs in opts.OPTIONS and opts.OPTIONS[row.needs].about, f"{row.name} needs {row.needs}: say what that is (about)"
        if row.choices:
            assert row.host_default in row.choices + (None,), row.name
    assert len(opts.OPTIONS) == len(opts.JOB_OPTIONS)


def test_the_host_defaults_are_the_tables() -> None:
    spec = ctl.JobSpec({"argv": ["true"]})
    for key in opts.SETTINGS:
        assert getattr(spec, key) == opts.OPTIONS[key].host_default, key
    assert ctl.JobSpec({"argv": ["true"], "grace": None, "timeout": None}).grace == 5


def test_the_supervisors_defaults_are_the_tables(tmp_path: Path) -> None:
    s = sup.Supervisor({"async_dir": str(js.JobStore(str(tmp_path / "jobs"), create=True).path), "jid": JID, "argv": ["true"]})
    seen = {
        "timeout": s.timeout,
        "grace": s.grace,
        "output_limit": s.limit,
        "retries": s.retries,
        "retry_delay": s.delay,
        "backoff": s.backoff,
        "retry_max_delay": s.max_delay,
        "retry_on_timeout": s.retry_on_timeout,
        "total_timeout": s.total_timeout,
        "slot": s.slot,
        "slot_limit": s.slot_limit,
        "queue_timeout": s.queue_timeout,
    }
    assert seen == {key: opts.supervised({}, key) for key in seen}
    assert (s.timeout, s.grace, s.limit) == (0, 5, 16 * 1024 * 1024)  # the host's timeout (none), the task's output_limit


@pytest.mark.parametrize(("given", "host", "supervised"), [(None, 0, 0), (0, 0, 0), (7, 7, 7)])
def test_a_value_left_out_is_the_default(given: t.Any, host: t.Any, supervised: t.Any) -> None:
    """None is left out; 0 and false are values (a retry_delay of 0 is no delay, not the default)."""
    assert opts.on_host({"timeout": given}, "timeout") == host
    assert opts.supervised({"timeout": given}, "timeout") == supervised
    assert opts.on_host({"retry_delay": 0}, "retry_delay") == 0 and opts.on_host({}, "retry_delay") == 5
    assert opts.on_host({}, "output_limit") is None and opts.supervised({}, "output_limit") == 16 * 1024 * 1024


def test_the_host_code_lists_ship_the_table() -> None:
    """The supervisor imports _options: its zip, the lean runner and keyword mode's wrapper carry it."""
    spec = importlib.util.spec_from_file_location("keyword_wrapper", ROOT / "hack" / "keyword_wrapper.py")
    assert spec is not None and spec.loader is not None
    wrapper = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(wrapper)
    for listed in (_pyzcache._PYZ_MODULES, _remote._HOST_CODE, wrapper.MODULES):
        assert "_options" in listed
