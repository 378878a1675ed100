# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""Checks what `ansible-runner run` left in a private data directory's artifacts/IDENT.

    python check_artifacts.py ARTIFACTS_DIR CASE INSTALLED_COLLECTION_DIR

The run's status must be `successful` and its rc 0, and the job results must be in the events:
CASE names what a playbook's wait task must have collected (see EXPECT). The wait task must come
from the installed copy of the collection. Exits 1 naming each problem.
"""

from __future__ import annotations

import glob
import json
import os
import sys

# case -> (the wait task's name, job count, the jobs' stdout in order, or None where not checked)
EXPECT: dict[str, tuple[str, int, list[str | None]]] = {
    "demo": ("1. Wait for all four in one task", 4, ["app downloaded", "data downloaded", "compiled", "42 tests passed"]),
    "jobs_on_one_host": ("Wait for all three in one task", 3, [None, None, "compiled"]),
}


def events(artifacts: str) -> list[dict]:
    found = []
    for path in sorted(glob.glob(os.path.join(artifacts, "job_events", "*.json"))):
        with open(path, encoding="utf-8") as f:
            found.append(json.load(f))
    return sorted(found, key=lambda e: e.get("counter", 0))


def read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read().strip()


def check(artifacts: str, case: str, installed: str) -> list[str]:
    problems: list[str] = []
    status = read(os.path.join(artifacts, "status"))
    rc = read(os.path.join(artifacts, "rc"))
    if status != "successful":
        problems.append(f"runner status is {status!r}, not 'successful'")
    if rc != "0":
        problems.append(f"runner rc is {rc}, not 0")
    evs = events(artifacts)
    if not evs:
        return problems + ["no job events"]
    failed = [e for e in evs if e.get("event") in ("runner_on_failed", "runner_on_unreachable") and not e["event_data"].get("ignore_errors")]
    for e in failed:
        problems.append(f"task {e['event_data'].get('task')!r}: {e['event']}")
    stats = [e for e in evs if e.get("event") == "playbook_on_stats"]
    if not stats or stats[-1]["event_data"].get("failures") or stats[-1]["event_data"].get("dark"):
        problems.append(f"the play's stats are not clean: {stats[-1]['event_data'] if stats else 'no playbook_on_stats event'}")

    task, count, stdouts = EXPECT[case]
    waits = [e for e in evs if e.get("event") == "runner_on_ok" and e["event_data"].get("task") == task]
    if len(waits) != 1:
        return problems + [f"expected one runner_on_ok event of task {task!r}, found {len(waits)}"]
    task_path = str(waits[0]["event_data"].get("task_path", ""))
    if not task_path.startswith(os.path.join(installed, "playbooks") + os.sep):
        problems.append(f"{task}: ran from {task_path!r}, not from the installed collection {installed}")
    res = waits[0]["event_data"].get("res") or {}
    jobs = res.get("jobs") or []
    if res.get("counts") != {"succeeded": count}:
        problems.append(f"{task}: counts {res.get('counts')!r}, expected {{'succeeded': {count}}}")
    if len(jobs) != count:
        problems.append(f"{task}: {len(jobs)} job results, expected {count}")
    for i, (job, want) in enumerate(zip(jobs, stdouts)):
        if not str(job.get("ansible_job_id", "")).startswith("j"):
            problems.append(f"{task}: jobs[{i}] has no job id of the collection: {job.get('ansible_job_id')!r}")
        if (job.get("detached") or {}).get("state") != "succeeded" or not job.get("finished"):
            problems.append(f"{task}: jobs[{i}] is not a finished, succeeded job: {job.get('detached')!r}")
        if want is not None and job.get("stdout") != want:
            problems.append(f"{task}: jobs[{i}].stdout is {job.get('stdout')!r}, expected {want!r}")
    stdout = read(os.path.join(artifacts, "stdout"))
    if "PLAY RECAP" not in stdout or f"TASK [{task}]" not in stdout:
        problems.append("the artifacts' stdout lacks the play recap or the wait task")
    return problems


def main() -> int:
    artifacts, case, installed = sys.argv[1], sys.argv[2], os.path.realpath(sys.argv[3])
    problems = check(artifacts, case, installed)
    for p in problems:
        print(f"check_artifacts: {case}: {p}")
    if not problems:
        print(f"check_artifacts: {case}: status successful, rc 0, the wait task's results are in the events")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
