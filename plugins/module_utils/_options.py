# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""The options of a job, each declared once. Private to detached.jobs.

One row per option: its name, type, defaults, bounds, choices and what it needs. Everything else
is derived from this table: the start action's argument spec, defaults and checks
(plugins/action/start.py), the argument spec of the host side (_specs.JOB_SPEC, the
async_wrapper module's), the defaults of a job on the host (_control.JobSpec) and of its
supervisor (_supervisor.Supervisor). A unit test holds the DOCUMENTATION of start and
async_wrapper to it. Adding an option is a row here, its docs and its behaviour.

Shared by the controller and the host code (the supervisor imports it: it stays lean, typing is
not imported at run time). Standard library only, Python 3.8+.
"""

from __future__ import annotations

import math

from ansible_collections.detached.jobs.plugins.module_utils import _ids as ids

TYPE_CHECKING = False  # typing is not imported at run time: the supervisor stays lean
if TYPE_CHECKING:
    import typing as t

# Who gives an option (a row's role).
SETTING = "setting"  # a task gives it (start), and the action hands it to the host as it is
TASK = "task"  # only a task gives it: the action turns it into what the host takes (args, cmd)
HOST = "host"  # only the host takes it: the action makes it (the module's payload...)
WHAT = "what"  # both have it, but the action turns the task's into the host's (module, argv)

_SAME = object()  # a row's host default when it is its default


class Option:
    """One option of a job.

    default: what a task gets when it leaves the option out (start's documentation and action).
    host_default: what a job handed to the host without it gets (async_wrapper's argument spec and
    documentation, _control.JobSpec), where that differs; None there leaves a number option to the
    supervisor, which applies default (see supervised). least, most, unit, note: the bounds of a
    number option and how a refusal words them. needs: the option without which this one means
    nothing (given alone, the start action refuses it); about: how such a refusal names this one.
    """

    __slots__ = ("name", "type", "default", "host_default", "least", "most", "unit", "note", "choices", "elements", "needs", "about", "role", "no_log")

    def __init__(
        self,
        name: str,
        kind: str,
        default: t.Any = None,
        host_default: t.Any = _SAME,
        least: float | None = None,
        most: float | None = None,
        unit: str = "",
        note: str = "",
        choices: tuple[str, ...] = (),
        elements: str | None = None,
        needs: str | None = None,
        about: str = "",
        role: str = SETTING,
        no_log: bool = False,
    ) -> None:
        self.name = name
        self.type = kind  # the argument spec's type: str, int, float, bool, path, list, dict
        self.default = default
        self.host_default = default if host_default is _SAME else host_default
        self.least = least
        self.most = most
        self.unit = unit
        self.note = note
        self.choices = choices
        self.elements = elements
        self.needs = needs
        self.about = about
        self.role = role
        self.no_log = no_log

    def arg_spec(self, default: t.Any = None) -> dict[str, t.Any]:
        """This option in an argument spec (AnsibleModule's, an action's validate_argument_spec)."""
        spec: dict[str, t.Any] = {"type": self.type}
        if self.elements:
            spec["elements"] = self.elements
        if self.choices:
            spec["choices"] = list(self.choices)
        if self.no_log:
            spec["no_log"] = True
        if default is not None:
            spec["default"] = default
        return spec


_S = ids.MAX_SECONDS
_N = ids.MAX_COUNT
_B = ids.MAX_OUTPUT_LIMIT

# The options of one job, in the order the argument specs list them.
JOB_OPTIONS = (
    Option("module", "str", role=WHAT),
    Option("args", "dict", role=TASK),
    Option("cmd", "str", role=TASK),
    Option("payload", "str", role=HOST, no_log=True),
    Option("interpreter", "list", elements="str", role=HOST),
    Option("style", "str", "new", choices=("new", "old", "non_native_want_json", "binary"), role=HOST),
    Option("args_data", "str", role=HOST, no_log=True),
    Option("argv", "list", elements="str", role=WHAT),
    Option("chdir", "path"),
    Option("name", "str"),
    Option("if_running", "str", "attach", choices=("attach", "fail", "restart")),
    # On the host, no limit by default: for a job handed to it straight (keyword mode gives its own).
    Option("timeout", "int", 3600, host_default=0, least=0, most=_S, unit="seconds", note="0 means no limit"),
    Option("grace", "int", 5, least=0, most=_S, unit="seconds"),
    # On the host, none by default: the supervisor applies the default (the host's argument spec has none).
    Option("output_limit", "int", 16 * 1024 * 1024, host_default=None, least=1, most=_B, unit="bytes", note="leave it out for the default (16 MiB)"),
    Option("retries", "int", 0, least=0, most=_N, about="how many times a failed job is run again"),
    Option("retry_delay", "float", 5, least=0, most=_S, unit="seconds", needs="retries"),
    Option("backoff", "float", 1, least=1, most=_N, needs="retries"),
    Option("retry_max_delay", "float", 0, least=0, most=_S, unit="seconds", note="0 means no maximum", needs="retries"),
    Option("retry_on_timeout", "bool", False, needs="retries"),
    Option("total_timeout", "int", 0, least=0, most=_S, unit="seconds", note="0 means no limit", needs="retries"),
    Option("slot", "str", about="the name of the slot to queue for"),
    Option("slot_limit", "int", 1, least=1, most=_N, needs="slot"),
    Option("queue_timeout", "int", 0, least=0, most=_S, unit="seconds", note="0 means no limit", needs="slot"),
)
OPTIONS = {row.name: row for row in JOB_OPTIONS}

# The options of a start task itself, beside its jobs' (and jobs, the list of them).
TASK_OPTIONS = (
    Option("poll", "int", 0, least=0, most=_S, unit="seconds", note="0 means the task does not wait", role=TASK),
    Option("cleanup", "bool", False, role=TASK),
)

# The options a task gives and the action hands to the host as they are.
SETTINGS = tuple(row.name for row in JOB_OPTIONS if row.role == SETTING)

# The number options (a job's and the start task's poll): (unit, least, most, a note). Checked by
# the start action before anything is sent, by the host again (_control.JobSpec: the
# async_wrapper module can be called directly), both with limit_problem.
LIMITS: dict[str, tuple[str, float, float, str]] = {
    row.name: (row.unit, row.least, row.most, row.note) for row in JOB_OPTIONS + TASK_OPTIONS if row.least is not None and row.most is not None
}
_SPANS = {"seconds": " (10 years)", "bytes": " (1 GiB)"}


def task_spec() -> dict[str, dict[str, t.Any]]:
    """The argument spec of one job of a start task (no defaults: a job's option left out takes the task's)."""
    return {row.name: row.arg_spec() for row in JOB_OPTIONS if row.role != HOST}


def task_defaults() -> dict[str, t.Any]:
    """What a start task's job gets for a setting it leaves out."""
    return {row.name: row.default for row in JOB_OPTIONS if row.role == SETTING and row.default is not None}


def host_spec() -> dict[str, dict[str, t.Any]]:
    """The argument spec of one job handed to the host (the async_wrapper module's jobs)."""
    return {row.name: row.arg_spec(row.host_default) for row in JOB_OPTIONS if row.role != TASK}


def on_host(spec: dict, key: str) -> t.Any:
    """Option key of a job handed to the host: as spec gives it, else the host's default."""
    value = spec.get(key)
    return OPTIONS[key].host_default if value is None else value


def supervised(spec: dict, key: str) -> t.Any:
    """Option key of a job as its supervisor runs it: as spec gives it, else the host's default, else the task's."""
    value = on_host(spec, key)
    return OPTIONS[key].default if value is None else value


def is_set(value: object) -> bool:
    """Whether an option's value asks for something: not left out, not false, not 0."""
    return value not in (None, False)


def limit_problem(key: str, value: object) -> str | None:
    """What is wrong with value as the number option key (see LIMITS), or None: booleans, inf and
    nan, and values out of bounds are refused."""
    unit, least, most, note = LIMITS[key]
    of, units = (f" of {unit}", f" {unit}") if unit else ("", "")
    if isinstance(value, bool):
        return f"a number{of}, not a boolean"
    if not isinstance(value, (int, float)):
        return f"a number{of}"
    if math.isnan(value) or math.isinf(value):
        return f"a finite number{of}"
    if least <= value <= most:
        return None
    bound = f"{least} or more{units}" if value < least else f"at most {most}{units}{_SPANS.get(unit, '')}"
    return f"{bound}; {note}" if note else bound


# The back-off of retries (retry_delay, backoff, retry_max_delay): the supervisor waits this long
# (_results.retry_wait), and the start action adds it up for the longest a poll may take.
def retry_delay(attempt: int, delay: float, backoff: float, max_delay: float) -> float:
    """Seconds to wait after failed attempt number attempt (1-based): delay * backoff ** (attempt - 1), at most max_delay."""
    try:
        wait = float(delay) * float(backoff) ** (attempt - 1)
    except OverflowError:
        wait = float("inf")
    return max(0.0, min(wait, float(max_delay)) if max_delay else wait)
