# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""Unit tests of _results: the pure shaping of a job's results, attempts, retry delays and messages.

No process, no file: each function is given the values the supervisor would have seen and its
answer is compared with the one expected.
"""

from __future__ import annotations

import ast
import time
import typing as t

import pytest

from ansible_collections.detached.jobs.plugins.module_utils import _ids as ids
from ansible_collections.detached.jobs.plugins.module_utils import _options
from ansible_collections.detached.jobs.plugins.module_utils import _results as res


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> t.Iterator[None]:
    """Local time is UTC for the test (command results give local times)."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_imports_only_the_standard_library_ids_and_options() -> None:
    """Pure functions: they pull nothing of the host's engine (no store, no processes)."""
    with open(res.__file__, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    ours = [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ansible_collections")
        for alias in node.names
    ]
    assert ours == ["_ids", "_options"]
    others = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert others <= {"datetime", "json", "signal"}


# --- retry delays ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("attempt", "delay", "backoff", "max_delay", "expected"),
    [
        (1, 5, 2, 0, 5.0),
        (2, 5, 2, 0, 10.0),
        (3, 5, 2, 0, 20.0),
        (3, 5, 2, 12, 12.0),
        (4, 1.5, 1, 0, 1.5),
        (2, 0, 3, 0, 0.0),
        (2000, 5, 1000, 0, float("inf")),
        (2000, 5, 1000, 60, 60.0),
    ],
)
def test_retry_delay(attempt: int, delay: float, backoff: float, max_delay: float, expected: float) -> None:
    assert _options.retry_delay(attempt, delay, backoff, max_delay) == expected


OPTS = {"retries": 3, "retry_delay": 5, "backoff": 2, "retry_max_delay": 0, "retry_on_timeout": False, "total_timeout": 0}


@pytest.mark.parametrize(
    ("state", "stopped", "killed", "done", "opts", "expected"),
    [
        (ids.FAILED, None, False, 1, {}, 5.0),
        (ids.FAILED, None, False, 3, {}, 20.0),
        (ids.FAILED, None, False, 4, {}, None),  # retries used up
        (ids.VANISHED, None, False, 1, {}, 5.0),
        (ids.SUCCEEDED, None, False, 1, {}, None),
        (ids.FAILED, None, True, 1, {}, None),  # a kill request came
        (ids.KILLED, ids.KILLED, True, 1, {}, None),
        (ids.FAILED, res.UNARMED, False, 1, {}, None),
        (ids.TIMEOUT, ids.TIMEOUT, False, 1, {}, None),  # a timeout is not retried...
        (ids.TIMEOUT, ids.TIMEOUT, False, 1, {"retry_on_timeout": True}, 5.0),  # ...unless retry_on_timeout
        (ids.TIMEOUT, res.TOTAL_TIMEOUT, False, 1, {"retry_on_timeout": True}, None),  # total_timeout never is
        (ids.FAILED, None, False, 2, {"retry_max_delay": 7}, 7.0),
        (ids.FAILED, None, False, 200, {"retries": 1000, "backoff": 1000}, ids.MAX_SECONDS),
    ],
)
def test_retry_wait(state: str, stopped: str | None, killed: bool, done: int, opts: dict, expected: float | None) -> None:
    assert res.retry_wait(state, stopped, killed, done, dict(OPTS, **opts), 1000.0, 1001.0) == expected


def test_retry_wait_never_runs_past_total_timeout() -> None:
    opts = dict(OPTS, total_timeout=100)
    assert res.retry_wait(ids.FAILED, None, False, 1, opts, 1000.0, 1094.0) == 5.0  # the attempt starts at 1099
    assert res.retry_wait(ids.FAILED, None, False, 1, opts, 1000.0, 1095.0) is None  # it would start at 1100
    assert res.retry_wait(ids.FAILED, None, False, 1, opts, None, 5000.0) == 5.0  # no attempt ran: no clock yet


# --- results -----------------------------------------------------------------------------
def test_output_text() -> None:
    assert res.output_text(b"hello\n", 6, "/o") == ("hello\n", False)
    assert res.output_text(b"", 0, "/o") == ("", False)
    assert res.output_text(b"caf\xe9", 4, "/o") == ("caf\ufffd", True)
    assert res.output_text(b"tail\n", 105, "/o") == ("[detached.jobs: first 100 of 105 bytes omitted; full output in /o]\ntail\n", True)


def test_module_result_as_the_module_returned_it() -> None:
    assert res.module_result(b'{"changed": true}\n', 18, "", 0, 1000, "/o") == ({"changed": True}, False)
    assert res.module_result(b'{"changed": true}', 17, "warn\n", 0, 1000, "/o") == ({"changed": True, "stderr": "warn\n"}, False)
    assert res.module_result(b'{"stderr": "own"}', 17, "warn\n", 0, 1000, "/o") == ({"stderr": "own"}, False)


def test_module_result_failed_without_a_message_gets_one() -> None:
    result, keep = res.module_result(b'{"failed": true}', 16, "", 1, 1000, "/o")
    assert result == {"failed": True, "msg": "the module failed without a message (rc=1)"}
    assert keep is False
    result, keep = res.module_result(b'{"failed": true, "msg": "mine"}', 31, "", 1, 1000, "/o")
    assert result == {"failed": True, "msg": "mine"}


def test_module_result_over_the_limit() -> None:
    result, keep = res.module_result(b"x" * 10, 50, "err", 0, 10, "/o")
    assert result == {
        "failed": True,
        "msg": "the module printed 50 bytes, more than output_limit (10); its raw output is kept in /o",
        "rc": 0,
        "module_stderr": "err",
    }
    assert keep is True


def test_module_result_without_json() -> None:
    result, keep = res.module_result(b"oops\n", 5, "e", 2, 1000, "/o")
    assert result == {
        "failed": True,
        "msg": "the module did not return a JSON result (rc=2); see module_stdout and module_stderr",
        "rc": 2,
        "module_stdout": "oops\n",
        "module_stderr": "e",
    }
    assert keep is True
    assert res.module_result(b"", 0, "", None, 1000, "/o")[1] is False  # nothing printed: no file worth keeping


def test_command_result(utc: None) -> None:
    assert res.command_result(["echo", "x"], 0, "out\r\n", "err\n\n", 1.0, 2.5) == {
        "cmd": ["echo", "x"],
        "rc": 0,
        "stdout": "out",
        "stderr": "err",
        "start": "1970-01-01 00:00:01.000000",
        "end": "1970-01-01 00:00:02.500000",
        "delta": "0:00:01.500000",
        "changed": True,
        "msg": "",
    }


@pytest.mark.parametrize("rc", [2, -9])
def test_command_result_failed(utc: None, rc: int) -> None:
    result = res.command_result("false", rc, "", "", 0.0, 0.0)
    assert (result["failed"], result["msg"], result["rc"], result["delta"]) == (True, "non-zero return code", rc, "0:00:00")


WHY: dict[str, t.Any] = {
    "timeout": 30,
    "total_timeout": 100,
    "grace": 5,
    "attempt": 2,
    "child": 4242,
    "killed_how": "because the wait timed out after 3s (wait on_timeout: kill)",
    "unarmed": "the supervisor could not arm the job's time limit (timeout 1e+30s: OverflowError: too large)",
    "signal_name": "SIGKILL",
}


@pytest.mark.parametrize(
    ("stopped", "sig", "result", "why", "expected"),
    [
        (ids.TIMEOUT, None, {}, {}, (ids.TIMEOUT, "Timeout exceeded: the job ran longer than its 30s limit and was killed (SIGTERM, then SIGKILL after 5s)")),
        (
            ids.TIMEOUT,
            15,
            {"failed": True},
            {"timeout": 0.25, "grace": 0.5},
            (ids.TIMEOUT, "Timeout exceeded: the job ran longer than its 0.25s limit and was killed (SIGTERM, then SIGKILL after 0.5s)"),
        ),
        (
            res.TOTAL_TIMEOUT,
            None,
            {},
            {},
            (ids.TIMEOUT, "Timeout exceeded: the job ran longer than its total_timeout of 100s and attempt 2 was killed (SIGTERM, then SIGKILL after 5s)"),
        ),
        (ids.KILLED, 15, {}, {}, (ids.KILLED, "the job was killed because the wait timed out after 3s (wait on_timeout: kill)")),
        (
            res.UNARMED,
            None,
            {},
            {},
            (ids.FAILED, WHY["unarmed"] + "; it was stopped (SIGTERM, then SIGKILL after 5s) rather than left running without a limit"),
        ),
        (None, 9, {}, {}, (ids.VANISHED, "the job's process (pid 4242) was killed by SIGKILL (out of memory, or kill -9) before it returned a result")),
        (None, 15, {}, {"signal_name": "SIGTERM"}, (ids.FAILED, "the job's process (pid 4242) was killed by SIGTERM")),
        (None, None, {"failed": True, "msg": "its own"}, {}, (ids.FAILED, None)),
        (None, None, {"changed": True}, {}, (ids.SUCCEEDED, None)),
    ],
)
def test_attempt_end(stopped: str | None, sig: int | None, result: dict, why: dict, expected: tuple) -> None:
    assert res.attempt_end(result, stopped, sig, dict(WHY, **why)) == expected


def test_attempt_record() -> None:
    record = res.attempt_record(2, 10.0, 12.3456, ids.FAILED, {"msg": "m" * 600, "rc": 3}, None, None, {"stdout": ["a", "b"]})
    assert record == {
        "attempt": 2,
        "started_at": 10.0,
        "ended_at": 12.3456,
        "elapsed": 2.346,
        "state": ids.FAILED,
        "rc": 3,
        "signal": None,
        "msg": "m" * 500,
        "tail": {"stdout": ["a", "b"], "stderr": []},
    }


@pytest.mark.parametrize(
    ("exit_rc", "result", "sig", "expected"),
    [
        (1, {"rc": 3}, None, 1),  # the process's exit code wins
        (None, {"rc": 3}, None, 3),  # a module's result says it
        (None, {"rc": "3"}, None, None),
        (None, {}, 9, None),
    ],
)
def test_attempt_record_rc(exit_rc: int | None, result: dict, sig: int | None, expected: int | None) -> None:
    record = res.attempt_record(1, 0.0, 0.0, ids.FAILED, result, exit_rc, sig, {})
    assert (record["rc"], record["signal"], record["msg"]) == (expected, sig, "")


# --- the job's end -----------------------------------------------------------------------
def test_final_meta() -> None:
    meta = {"pid": 1, "retry_at": 5.0, "deadline": None}
    assert res.final_meta(meta, 20.0, 10.0, 0, None, {"stdout": "/o"}, None) == {
        "pid": 1,
        "deadline": None,
        "ended_at": 20.0,
        "elapsed": 10.0,
        "rc": 0,
        "signal": None,
        "files": {"stdout": "/o"},
    }
    assert meta == {"pid": 1, "retry_at": 5.0, "deadline": None}  # the running record's keys are left as they are
    attempts = [{"attempt": 1}, {"attempt": 2}]
    done = res.final_meta(meta, 20.0, None, None, 9, {}, attempts)
    assert (done["elapsed"], done["signal"], done["attempt"], done["attempts"]) == (0.0, 9, 2, attempts)


@pytest.mark.parametrize(
    ("why", "expected"),
    [
        (ids.KILLED, (ids.KILLED, "the job was killed on request while queued for slot 'db'; it never ran")),
        (res.QUEUE_TIMEOUT, (ids.TIMEOUT, "Timeout exceeded: the job waited longer than its queue_timeout of 0.3s for slot 'db' (limit 2); it never ran")),
        ("job j1.1: disk full", (ids.FAILED, "job j1.1: disk full")),
    ],
)
def test_early_end(why: str, expected: tuple) -> None:
    assert res.early_end(why, "on request", "db", 2, 0.3) == expected


def test_messages_of_attempts() -> None:
    assert res.killed_in_delay_msg("on request", 2, "non-zero return code") == (
        "the job was killed on request in the delay before attempt 3; no more attempts (attempt 2: non-zero return code)"
    )
    assert res.last_of_msg("non-zero return code", 3) == "non-zero return code (the last of 3 attempts)"


# --- module output (moved from test__supervisor.py) ---------------------------------
JUNK = "Module invocation had junk after the JSON data: "


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": 1}', {"a": 1}),
        ('{"a": 1}\n', {"a": 1}),
        ('junk before\nmore junk\n{"a": 1}\n', {"a": 1}),
        ('{"a": 1}\njunk after\n', {"a": 1, "warnings": [JUNK + "junk after"]}),
        ('{"a": 1, "warnings": ["w"]}\n\njunk\n', {"a": 1, "warnings": ["w", JUNK + "\njunk"]}),
        ('motd line\n  {"a": {"b": [1, 2]},\n   "c": "}"}  \ntrailing noise\n', {"a": {"b": [1, 2]}, "c": "}", "warnings": [JUNK + "trailing noise"]}),
        ('warning: x\n{"changed": true, "msg": "caf\\u00e9"}\nbye', {"changed": True, "msg": "café", "warnings": [JUNK + "bye"]}),
    ],
)
def test_parse_module_json(text: str, expected: dict) -> None:
    assert res.parse_module_json(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "\n\n", "hello world", "Traceback (most recent call last):\n  File x\nZeroDivisionError: division by zero", "[1, 2]", '{"a": 1', "{not json}", "} {"],
)
def test_parse_module_json_none(text: str) -> None:
    assert res.parse_module_json(text) is None


def test_failure_msg() -> None:
    assert res.failure_msg({"failed": True, "exception": {"event": {"msg": "boom"}}}, 1) == "the module failed: boom"
    tb = "Traceback (most recent call last):\n  File x\nValueError: bad value\n"
    assert res.failure_msg({"failed": True, "exception": tb}, 1) == "the module failed: ValueError: bad value"
    assert res.failure_msg({"failed": True}, 2) == "the module failed without a message (rc=2)"
    assert res.failure_msg({"failed": True, "exception": {"event": "odd"}}, None) == "the module failed without a message (rc=None)"
