# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""A job's output files read into its result, and its final record written. Private to detached.jobs.

The supervisor's reads and writes around _results' pure shaping: the last output_limit bytes of
each output file, which files the finished job keeps (cut or not UTF-8: their paths go in the
record), the tail of an attempt's output, and the final record, written with its fallbacks when
the disk is full. Standard library only, Python 3.8+.
"""

from __future__ import annotations

import os

from ansible_collections.detached.jobs.plugins.module_utils import _ids as ids
from ansible_collections.detached.jobs.plugins.module_utils import _jobstore as js
from ansible_collections.detached.jobs.plugins.module_utils import _records as rec
from ansible_collections.detached.jobs.plugins.module_utils import _results as res


def read_output(store: js.JobStore, jid: str, suffix: str, limit: int) -> tuple[bytes, int]:
    """The last limit bytes of one of the job's output files, and its size (nothing when it cannot be read)."""
    path = store.extra_path(jid, suffix)
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            if size > limit:
                f.seek(size - limit)
            return f.read(limit), size
    except OSError:
        return b"", 0


def output_text(store: js.JobStore, jid: str, suffix: str, limit: int, keep: dict) -> str:
    """An output stream as the result carries it; its file goes in keep (suffix: path) when it must stay."""
    path = store.extra_path(jid, suffix)
    data, size = read_output(store, jid, suffix, limit)
    text, kept = res.output_text(data, size, path)
    if kept:
        keep[suffix] = path
    return text


def module_result(store: js.JobStore, jid: str, limit: int, rc: int | None, keep: dict) -> dict:
    """A module attempt's result, from its output files (see _results.module_result)."""
    out, size = read_output(store, jid, "stdout", limit)
    path = store.extra_path(jid, "stdout")
    result, kept = res.module_result(out, size, output_text(store, jid, "stderr", limit, keep), rc, limit, path)
    if kept:
        keep["stdout"] = path
    return result


def command_result(store: js.JobStore, jid: str, limit: int, cmd: object, rc: int | None, started: float, ended: float, keep: dict) -> dict:
    """A command attempt's result, from its output files (see _results.command_result)."""
    stdout = output_text(store, jid, "stdout", limit, keep)
    return res.command_result(cmd, rc, stdout, output_text(store, jid, "stderr", limit, keep), started, ended)


def attempt_tail(store: js.JobStore, jid: str, mode: str, result: dict) -> dict:
    """The last lines of an attempt's output, for its record: from the files for a command, from the result for a module."""
    tail = {}
    for suffix in res.STREAMS:
        if mode == "command":
            found = store.output_tail(jid, suffix, res.ATTEMPT_TAIL_LINES, res.ATTEMPT_TAIL_BYTES)
            tail[suffix] = found[0] if found else []
        else:
            text = result.get(suffix)
            tail[suffix] = js.text_tail(text, res.ATTEMPT_TAIL_LINES, res.ATTEMPT_TAIL_BYTES)[0] if isinstance(text, str) else []
    return tail


def write_final(store: js.JobStore, jid: str, path: str, result: dict, state: str, meta: dict, keep: dict) -> None:
    """Record the job's end, then remove its files but the output files kept (keep: suffix -> path)."""
    record = rec.final_record(jid, path, result, meta, state)
    try:
        store.write(jid, record)
    except ids.JobError as ex:
        # (A full disk, most often.) Free what the job no longer needs and try again, then try a
        # small record; if even that fails, readers will see the supervisor gone without a
        # result (vanished). The output files are kept either way.
        store.remove_extra(jid, ("payload", "args", "pyz"))
        try:
            store.write(jid, record)
        except ids.JobError:
            kept = {s: p for s in res.STREAMS for p in [store.extra_path(jid, s)] if os.path.exists(p)}
            small = rec.final_record(jid, path, {"msg": f"could not record the job's result: {ex}"}, dict(meta, files=kept), ids.FAILED)
            try:
                store.write(jid, small)
            except ids.JobError:
                pass
            return
    drop = [s for s in res.STREAMS if s not in keep]
    store.remove_extra(jid, ["payload", "args", "pyz", "kill"] + drop)
