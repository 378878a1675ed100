# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""Turn what users pass as ``jobs`` into job references. Private to the detached.jobs collection.

Accepted: job ids; registered results of detached.jobs.start (one job, or a batch with ``jobs``);
registered results of tasks with the ``async`` keyword; registered loop results (``results``);
and lists of any of these, nested.
"""

from __future__ import annotations

import typing as t
from collections.abc import Mapping

from ansible_collections.detached.jobs.plugins.module_utils import _ids as ids


class JobRef:
    """One job the user asked about."""

    def __init__(self, jid: str | None, label: str | None = None, async_dir: str | None = None, error: str | None = None) -> None:
        self.jid = jid
        self.label = label
        self.async_dir = async_dir
        self.error = error

    def __repr__(self) -> str:
        return f"JobRef({self.jid!r}, label={self.label!r}, error={self.error!r})"


def _short(value: t.Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _loop_label(result: Mapping) -> str | None:
    """The loop_control.label of a loop item's result, when the result has it (ansible-core's default label is the item itself).

    ansible-core puts it in the result as ``_ansible_item_label``, for its callbacks, and removes it
    (with every ``_ansible_`` key) from what ``register`` keeps: 2.16 to 2.20 strip the internal keys
    of a registered result, 2.21 exports the label to callbacks only. So detached.jobs.start puts
    it in its result as ``loop_label`` (templated as ansible-core does); the keyword's results (an
    ``async:`` loop) have none.
    """
    label = result.get("loop_label")
    if label is None:
        label = result.get("_ansible_item_label")
    if label is None or isinstance(label, (Mapping, list)) or label == result.get(result.get("ansible_loop_var", "item")):
        return None
    return _short(label)


# The keys of a mapping loop item that name it, in this order.
_ITEM_NAME_KEYS = ("name", "label", "cmd", "module")


def _item_label(result: Mapping) -> str | None:
    """A short label from a loop item's result, never a whole mapping.

    A plain item as it is (shortened); a mapping item's name (or label, cmd, module), else its plain
    values as ``key=value, ...`` (shortened); none for a list item, or a mapping of nothing plain.
    """
    loop_var = result.get("ansible_loop_var", "item")
    if loop_var not in result:
        return None
    item = result[loop_var]
    if isinstance(item, Mapping):
        for key in _ITEM_NAME_KEYS:
            if item.get(key) is not None:
                return _short(item[key])
        pairs = [f"{key}={value}" for key, value in item.items() if isinstance(value, (str, int, float))]
        return _short(", ".join(pairs)) if pairs else None
    if isinstance(item, (list, tuple)):
        return None
    return _short(item)


def _from_mapping(value: Mapping, where: str, label: str | None, fallback: str | None = None) -> list[JobRef]:
    """Job references of a mapping; label (loop_control.label) wins over the job's name, which wins over fallback (the loop item)."""
    if isinstance(value.get("results"), list) and "ansible_job_id" not in value:
        refs: list[JobRef] = []
        for i, item in enumerate(value["results"]):
            if isinstance(item, Mapping):
                refs.extend(_from_mapping(item, f"{where}.results[{i}]", _loop_label(item), _item_label(item)))
            else:
                refs.extend(_collect(item, f"{where}.results[{i}]", None))
        return refs
    if isinstance(value.get("jobs"), list) and "ansible_job_id" not in value:
        refs = []
        for i, item in enumerate(value["jobs"]):
            if isinstance(item, Mapping):
                refs.extend(_from_mapping(item, f"{where}.jobs[{i}]", label, fallback))
            else:
                refs.extend(_collect(item, f"{where}.jobs[{i}]", label if label is not None else fallback))
        return refs
    if (value.get("skipped") and "ansible_job_id" not in value) or (value.get("would_start") and not value.get("ansible_job_id")):
        # A skipped task, or a check-mode start that started nothing: no job to wait for.
        return []
    jid = value.get("ansible_job_id")
    meta = value.get("detached")
    if label is None and isinstance(meta, Mapping) and meta.get("name"):
        label = str(meta["name"])
    if label is None:
        label = fallback
    if jid is None:
        if value.get("failed"):
            return [JobRef(None, label, error=f"{where} ({label or 'no label'}) did not start a job: {_short(value.get('msg', 'failed'), 300)}")]
        keys = ", ".join(sorted(str(k) for k in value)[:8])
        return [JobRef(None, label, error=f"{where} is not a job: a mapping without ansible_job_id (keys: {keys})")]
    return _collect(jid, where, label, async_dir=_job_dir(value))


def _job_dir(value: Mapping) -> str | None:
    """The job's directory on the host: that of its status file (expanded by the host), else as configured."""
    results_file = value.get("results_file")
    if isinstance(results_file, str) and results_file.startswith("/"):
        return results_file.rsplit("/", 1)[0] or "/"
    async_dir = value.get("async_dir")
    return str(async_dir) if async_dir else None


def _collect(value: t.Any, where: str, label: str | None, async_dir: str | None = None) -> list[JobRef]:
    if isinstance(value, Mapping):
        return _from_mapping(value, where, label)
    if isinstance(value, (list, tuple)):
        refs: list[JobRef] = []
        for i, item in enumerate(value):
            refs.extend(_collect(item, f"{where}[{i}]", label))
        return refs
    if isinstance(value, str):
        try:
            return [JobRef(ids.validate_jid(value.strip()), label, async_dir)]
        except ids.InvalidJobId as ex:
            return [JobRef(None, label, error=f"{where}: {ex}")]
    return [JobRef(None, label, error=f"{where}: expected a job id, a registered result or a list, got {_kind(value)} {_short(value)}")]


def _kind(value: t.Any) -> str:
    """The plain type name of a value (ansible-core 2.19 wraps templated values in private subclasses)."""
    for base in (bool, int, float, bytes):
        if isinstance(value, base):
            return base.__name__
    return type(value).__name__.lstrip("_")


def collect(jobs: t.Any) -> list[JobRef]:
    """Job references in the order given, without duplicates (the first occurrence wins)."""
    refs = _collect(jobs, "jobs", None)
    seen: set[str] = set()
    unique: list[JobRef] = []
    for ref in refs:
        if ref.jid is not None:
            if ref.jid in seen:
                continue
            seen.add(ref.jid)
        unique.append(ref)
    return unique
