# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""Records when each task started and when its final result arrived (benchmarks only).

Private to benchmarks/run.py, which enables it with ANSIBLE_CALLBACKS_ENABLED=bench_timer and
reads the JSON lines it appends to the file named by BENCH_TIMINGS. The start is taken when the
strategy announces the task (before any worker runs it), the end when the task's final result
(after every loop item and every retry) reaches the controller, so a task's figure holds all of
its own work and none of the playbook's start-up.
"""

from __future__ import annotations

import json
import os
import time
import typing as t

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: bench_timer
type: aggregate
short_description: Task start and end times for the detached.jobs benchmark
description:
  - Appends one JSON line per finished task to the file named by the E(BENCH_TIMINGS) environment variable.
requirements:
  - enabled in callbacks_enabled
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bench_timer"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self._path = os.environ.get("BENCH_TIMINGS", "")
        self._started: dict[str, float] = {}

    def v2_playbook_on_task_start(self, task: t.Any, is_conditional: bool) -> None:
        self._started[task._uuid] = time.time()

    def _record(self, result: t.Any, status: str) -> None:
        end = time.time()
        task = result._task
        if not self._path:
            return
        line = {
            "task": task.get_name(),
            "start": self._started.get(task._uuid),
            "end": end,
            "status": status,
            "host": result._host.get_name(),
        }
        if isinstance(result._result, dict) and "remote_calls" in result._result:
            line["remote_calls"] = result._result["remote_calls"]  # detached.jobs.wait: one per round
        with open(self._path, "a", encoding="utf-8") as stream:
            stream.write(json.dumps(line) + "\n")

    def v2_runner_on_ok(self, result: t.Any) -> None:
        self._record(result, "ok")

    def v2_runner_on_failed(self, result: t.Any, ignore_errors: bool = False) -> None:
        self._record(result, "failed")

    def v2_runner_on_skipped(self, result: t.Any) -> None:
        self._record(result, "skipped")

    def v2_runner_on_unreachable(self, result: t.Any) -> None:
        self._record(result, "unreachable")
