# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""The shapes of a job's status record (format version 1). Private to the detached.jobs collection.

What a status file holds (see docs/architecture.md, "Status file"): the record of a job that has
not ended (running or queued), the final record (the job's result with its metadata), whether a
record is this collection's, and a record as readers return it (a view). The store (_jobstore)
reads and writes the files; the rules for states are in _ids. Standard library only, Python 3.8+.
"""

from __future__ import annotations

from ansible_collections.detached.jobs.plugins.module_utils._ids import FINAL_STATES, QUEUED, RUNNING, SUCCEEDED, is_finished, state_of

TYPE_CHECKING = False  # typing is not imported at run time: the supervisor stays lean
if TYPE_CHECKING:
    import typing as t

    Record = t.Dict[str, t.Any]

FORMAT_VERSION = 1


def running_record(jid: str, results_file: str, meta: Record, state: str = RUNNING) -> Record:
    """The status of a job that has not ended: running, or queued for a slot."""
    if state not in (RUNNING, QUEUED):
        raise ValueError(f"not a state of an unfinished job: {state!r}")
    meta = dict(meta, version=FORMAT_VERSION, state=state)
    return {"started": True, "finished": False, "ansible_job_id": jid, "results_file": results_file, "detached": meta}


def final_record(jid: str, results_file: str, result: Record, meta: Record, state: str) -> Record:
    if state not in FINAL_STATES:
        raise ValueError(f"not a final state: {state!r}")
    record = dict(result)
    for key in ("started", "finished", "ansible_job_id", "results_file", "detached"):
        record.pop(key, None)
    if state != SUCCEEDED:
        record["failed"] = True
    record.update(
        started=True,
        finished=True,
        ansible_job_id=jid,
        results_file=results_file,
        detached=dict(meta, version=FORMAT_VERSION, state=state),
    )
    return record


def is_ours(record: Record) -> bool:
    """Whether a record (or a view of one) was written by this collection: the one test of it. A
    record of ansible-core's async_wrapper or Mitogen's has no "detached" object with a version."""
    meta = record.get("detached")
    return isinstance(meta, dict) and meta.get("version") is not None and not meta.get("foreign")


def view(jid: str, path: str, record: Record) -> Record:
    """A status as readers return it: builtin-compatible keys always present, a 'detached' object always present.

    Records written by ansible-core's async_wrapper get a synthesized 'detached' object (liveness unknown).
    """
    out = dict(record)
    out.setdefault("ansible_job_id", jid)
    out.setdefault("results_file", path)
    finished = is_finished(record)
    out["started"] = True
    out["finished"] = finished
    meta = record.get("detached")
    if not isinstance(meta, dict):
        meta = {"version": None, "state": state_of(record), "name": None, "module": None, "foreign": True}
        out["detached"] = meta
    return out
