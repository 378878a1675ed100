# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""Unit tests of the modules' documentation as a user reads it: what `ansible-doc --json` returns
(DOCUMENTATION with its doc fragments merged, EXAMPLES), for every module of the collection.

- an option that has a default documents it as `default:` (ansible-doc prints `default: null` for an
  option without one, right under a description that would say "Default 3600");
- the defaults of detached.jobs.start (an action-only module, which validate-modules cannot compare
  with an argument spec) are those its action applies;
- the options a task cannot set (`_async_dir`, `_jids`...) say so;
- every option a user sets has an example, and the notes do not say that keyword jobs cannot be
  killed without keyword mode's exception.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import typing as t

import pytest
import yaml

from ansible_collections.detached.jobs.plugins.action import start as start_action

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
_MODULES = sorted(f[:-3] for f in os.listdir(os.path.join(_ROOT, "plugins", "modules")) if f.endswith(".py") and not f.startswith("_"))
# Modules only the collection's own actions call: their options are not set by tasks.
_INTERNAL_MODULES = {"async_wrapper", "host_operation"}
# A description that states a default in words ("Default V(3600).", "Defaults to 5", "default is 0").
_DEFAULT_IN_WORDS = re.compile(r"\bdefaults?( is| to)?\s*:?\s*V\(|\bDefault V\(|\bdefaults to\b", re.IGNORECASE)


@pytest.fixture(scope="module")
def docs() -> dict[str, dict[str, t.Any]]:
    """`ansible-doc --json` of every module, by short name."""
    ansible_doc = os.path.join(os.path.dirname(sys.executable), "ansible-doc")
    if not os.path.exists(ansible_doc):
        ansible_doc = shutil.which("ansible-doc") or "ansible-doc"
    collections = os.path.join(_ROOT, ".build", "unit-collections")  # made by tests/unit/conftest.py
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections, ANSIBLE_NOCOLOR="1")
    run = subprocess.run(
        [ansible_doc, "--json", *(f"detached.jobs.{name}" for name in _MODULES)], capture_output=True, text=True, env=env, check=False, timeout=300
    )
    assert run.returncode == 0, run.stderr
    found = json.loads(run.stdout)
    assert sorted(found) == [f"detached.jobs.{name}" for name in _MODULES], run.stderr
    return {name.rsplit(".", 1)[1]: entry for name, entry in found.items()}


def _options(options: dict[str, t.Any] | None, prefix: str = "") -> t.Iterator[tuple[str, dict[str, t.Any]]]:
    """Every option and suboption, with its dotted path."""
    for name, option in (options or {}).items():
        yield prefix + name, option
        yield from _options(option.get("suboptions"), f"{prefix}{name}.")


def _text(option: dict[str, t.Any]) -> str:
    description = option.get("description") or []
    return " ".join(description if isinstance(description, list) else [description])


def test_every_module_is_documented(docs: dict[str, dict[str, t.Any]]) -> None:
    assert {"start", "wait", "async_status", "job_info", "prune", "async_wrapper"} <= set(docs)
    for name, entry in docs.items():
        assert entry["doc"].get("options"), name


def test_no_default_only_in_words(docs: dict[str, dict[str, t.Any]]) -> None:
    """An option whose text gives a default documents it as `default:`, so ansible-doc does not print `default: null`."""
    problems = [
        f"{module}: {path}"
        for module, entry in docs.items()
        for path, option in _options(entry["doc"]["options"])
        if option.get("default") is None and _DEFAULT_IN_WORDS.search(_text(option))
    ]
    assert not problems, f"options that give their default in words only (ansible-doc shows default: null): {problems}"


def test_start_defaults_are_the_actions(docs: dict[str, dict[str, t.Any]]) -> None:
    """detached.jobs.start documents the defaults its action applies (validate-modules cannot: it has no argument spec)."""
    options = docs["start"]["doc"]["options"]
    applied = dict(start_action._DEFAULTS, slot_limit=1)  # slot_limit: 1 when a slot is given, as the action sets it
    applied.update({key: spec["default"] for key, spec in start_action.ARGUMENT_SPEC.items() if "default" in spec})
    for key, value in applied.items():
        assert key in options, key
        assert options[key].get("default") == value, f"start option {key}: documented default {options[key].get('default')!r}, applied {value!r}"
    # Every other option has no default of its own (the action passes nothing for it).
    for key in set(start_action.ARGUMENT_SPEC) - set(applied):
        assert options[key].get("default") is None, key


def test_start_batch_suboptions_default_to_the_task_level(docs: dict[str, dict[str, t.Any]]) -> None:
    """A jobs[] element without an option takes the task-level one: that is what its text says, not a default of its own."""
    options = docs["start"]["doc"]["options"]
    for key, option in options["jobs"]["suboptions"].items():
        if key in start_action._PASSED:
            assert option.get("default") is None, key
            assert f"the task-level O({key}) applies" in _text(option), key


def test_output_limit_says_the_last_bytes_are_kept(docs: dict[str, dict[str, t.Any]]) -> None:
    text = _text(docs["start"]["doc"]["options"]["output_limit"])
    assert "The last O(output_limit) bytes are kept" in text
    assert docs["start"]["doc"]["options"]["output_limit"]["default"] == 16 * 1024 * 1024


def test_internal_options_say_so(docs: dict[str, dict[str, t.Any]]) -> None:
    """An option a task cannot set (its name starts with _) says it is internal and that setting it fails."""
    for module, entry in docs.items():
        for path, option in _options(entry["doc"]["options"]):
            if path.startswith("_"):
                text = _text(option)
                assert text.startswith("Internal, not an option of the task ("), f"{module}: {path}: {text}"
                assert "a task that sets it fails" in text, f"{module}: {path}"


def test_no_internal_option_shown(docs: dict[str, dict[str, t.Any]]) -> None:
    """No module documents an option a task cannot set: the internal ones travel in host_operation's params."""
    shown = [f"{module}: {path}" for module, entry in docs.items() for path, dummy in _options(entry["doc"]["options"]) if path.startswith("_")]
    assert not shown


def _example_args(examples: str, module: str) -> set[str]:
    used: set[str] = set()
    for task in yaml.safe_load(examples) or []:
        for sub in task.get("block", [task]):
            args = sub.get(f"detached.jobs.{module}")
            if isinstance(args, dict):
                used |= set(args)
    return used


def test_every_user_option_has_an_example(docs: dict[str, dict[str, t.Any]]) -> None:
    missing = {}
    for module, entry in docs.items():
        if module in _INTERNAL_MODULES:
            continue
        options = {name for name in entry["doc"]["options"] if not name.startswith("_")}
        unused = options - _example_args(entry["examples"], module)
        if unused:
            missing[module] = sorted(unused)
    assert not missing, f"options without an example: {missing}"


def test_examples_of_the_issue(docs: dict[str, dict[str, t.Any]]) -> None:
    """A batch started with poll, and wait with fail_fast and poll."""
    tasks = yaml.safe_load(docs["start"]["examples"])
    assert any(isinstance(task.get("detached.jobs.start"), dict) and {"jobs", "poll"} <= set(task["detached.jobs.start"]) for task in tasks)
    tasks = yaml.safe_load(docs["wait"]["examples"])
    assert any(isinstance(task.get("detached.jobs.wait"), dict) and {"fail_fast", "poll"} <= set(task["detached.jobs.wait"]) for task in tasks)


def test_notes_on_killing_keyword_jobs_name_keyword_mode(docs: dict[str, dict[str, t.Any]]) -> None:
    for module, entry in docs.items():
        for note in entry["doc"].get("notes") or []:
            if "cannot be killed" in note and "C(async) keyword" in note:
                assert "keyword mode" in note and "can be killed" in note, f"{module}: {note}"
