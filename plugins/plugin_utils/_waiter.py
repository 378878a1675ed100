# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""Waiting for many jobs on one host: the controller side of detached.jobs.wait. Private to detached.jobs.

One remote call per round checks every pending job of the host and blocks until the wait has its
answer (every job ended; with fail_fast, one did not succeed; with return_when=any, one ended) or
a chunk of time (poll) passes; finished results are collected, progress is shown, and dropped
connections are retried until the deadline.
"""

from __future__ import annotations

import time
import typing as t

from ansible.errors import AnsibleActionFail
from ansible.utils.display import Display

from ansible_collections.detached.jobs.plugins.module_utils import _ids as ids
from ansible_collections.detached.jobs.plugins.module_utils._ids import REMOVED_HINT, missing_msg
from ansible_collections.detached.jobs.plugins.plugin_utils._jobrefs import JobRef
from ansible_collections.detached.jobs.plugins.plugin_utils._remote import async_dir, run_host

if t.TYPE_CHECKING:
    from ansible.plugins.action import ActionBase

display = Display()

MISSING = "missing"


# With no overall deadline (timeout 0), how long a dropped connection is retried before the host is unreachable.
RECONNECT_WINDOW = 600.0
# The progress lines a wait keeps in its result (the newest), and the longest line shown.
PROGRESS_KEPT = 100
_LINE_MAX = 200


class Waiter:
    def __init__(
        self,
        action: ActionBase,
        task_vars: dict,
        refs: list[JobRef],
        names: list[str],
        timeout: float,
        poll: float = 15,
        fail_fast: bool = False,
        on_timeout: str = "fail",
        cleanup: bool = False,
        return_when: str = "all",
        progress_interval: float = 0,
    ) -> None:
        self.action = action
        self.task_vars = task_vars
        self.refs = list(refs)
        self.names = list(names)
        self.timeout = timeout
        self.poll = max(float(poll), 1.0)
        self.fail_fast = fail_fast
        self.on_timeout = on_timeout
        self.cleanup = cleanup
        self.return_when = return_when
        # When a round's remote call returns before its block has passed: only when this wait has
        # something to do - every job ended, or (fail_fast) one did not succeed, or (return_when=any)
        # one ended. So a wait makes one remote call per host per poll seconds, whatever the jobs.
        self.until = "any" if return_when == "any" else "bad" if fail_fast else "all"
        # Show each running job's last line of output, at most once every progress_interval seconds (0: never).
        self.progress_interval = max(float(progress_interval), 0.0)
        self.progress: list[dict] = []
        self._progress_at: float | None = None
        # When the next progress lines are due (monotonic): a round's remote call returns then, whatever
        # poll is, so that lines come every progress_interval seconds (set when the wait starts).
        self._progress_next: float | None = None
        self._last_line: dict[str, str | None] = {}
        # Set when the wait returns on purpose before every job ended (return_when=any, check mode):
        # the jobs still running are then not problems.
        self.partial = False
        self.async_dir = async_dir(action)
        self.host = task_vars.get("inventory_hostname", "?")
        self.views: dict[str, dict] = {}
        self.errors: dict[str, str] = {}
        # Why, beside each error (see _ids.REASONS): what the wait decides by, never the message's words.
        self.reasons: dict[str, str] = {}
        self.remote_dir: str | None = None
        # The job ids the host found no status file for.
        self.missing: set[str] = set()
        self.changed = False
        # Remote calls made: one per round of the wait (plus one for a kill, one for a cleanup).
        self.calls = 0

    # --- remote calls ---------------------------------------------------------
    def _call(
        self, mode: str, jids: list[str], block: float, names: list[str] | None = None, deadline: float | None = None, tail: int = 0, **extra: t.Any
    ) -> dict:
        args = {"_jids": jids, "names": names or [], "_mode": mode, "_block": block, "_async_dir": self.async_dir, "_until": self.until}
        if tail:
            args["_tail"] = tail
        args.update(extra)
        self.calls += 1
        result = run_host(self.action, "wait", args, self.task_vars, deadline=deadline, what=self.host)
        if result.get("unreachable"):
            raise _Unreachable(str(result.get("msg", "unreachable")))
        if result.get("failed"):
            raise AnsibleActionFail(f"{self.host}: checking jobs failed: {result.get('msg', result)}")
        self.changed = self.changed or bool(result.get("changed"))
        return result

    # --- the wait ---------------------------------------------------------------
    def run(self) -> dict:
        started = time.monotonic()
        deadline = started + self.timeout if self.timeout else None
        for i, ref in enumerate(self.refs):
            if ref.error:
                self.errors[f"input {i}"] = ref.error
                self.reasons[f"input {i}"] = ids.INVALID
        state = _State(self.refs, self.names)
        if self.progress_interval:
            self._progress_next = started + self.progress_interval
        self._wait(state, deadline)
        still = list(state.pending)
        killed = self._kill(still, state.stopped) if still and self.on_timeout == "kill" and (state.timed_out or state.stopped) else []
        self._cleanup(state.order)
        return self._summary(state.order, state.labels, time.monotonic() - started, state.timed_out, state.stopped, state.unreachable, killed, still)

    def _wait(self, state: _State, deadline: float | None) -> None:
        """Rounds of remote calls until no job is pending, the deadline passes or a reason to stop early comes up."""
        while state.pending or state.names:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                state.timed_out = True
                return
            block = self._block(now, deadline)
            tail = self._progress_due(block)
            try:
                # With no overall deadline, a dropped connection is retried for up to RECONNECT_WINDOW.
                res = self._call(
                    "wait",
                    state.pending,
                    block,
                    state.names,
                    deadline=deadline if deadline is not None else time.monotonic() + RECONNECT_WINDOW,
                    tail=1 if tail else 0,
                )
            except _Unreachable as ex:
                state.unreachable = True
                self.errors["connection"] = f"{self.host}: connection lost and not back before the timeout: {ex}"
                return
            self._take(state, res)
            if tail:
                # The next lines are due progress_interval after these (or after this round, when no line changed).
                self._progress_next = time.monotonic() + self.progress_interval
            if self.fail_fast and self._any_bad():
                state.stopped = True
                return
            if state.pending and self.action._task.check_mode:
                self.partial = True  # check mode reads the jobs once
                return
            if state.pending and self.return_when == "any" and (state.done or self.errors):
                self.partial = True  # at least one job ended (or cannot be found)
                return

    def _take(self, state: _State, res: dict) -> None:
        """Take in one round's answer: the jobs the names found, errors, and the jobs read (finished ones leave pending)."""
        self.remote_dir = res.get("async_dir") or self.remote_dir
        self.missing.update(res.get("missing") or [])
        for name, jid in (res.get("names") or {}).items():
            if jid and jid not in state.order:
                state.order.append(jid)
                state.pending.append(jid)
                state.labels.setdefault(jid, name)
        state.names = []
        self.reasons.update(res.get("reasons") or {})
        for key, msg in (res.get("errors") or {}).items():
            self.errors[key] = msg
            if key in state.pending:
                state.pending.remove(key)
                state.done += 1
        shown = False
        for jid, view in (res.get("jobs") or {}).items():
            tail = view.pop("tail", None)
            if isinstance(tail, dict) and not view.get("finished"):
                shown = self._show_running(jid, state.labels.get(jid), view, tail) or shown
            self.views[jid] = with_lines(view)
            if view.get("finished") and jid in state.pending:
                state.pending.remove(jid)
                state.done += 1
                self._progress(jid, state.labels.get(jid), view, state.done, state.total)
        if shown:
            self._progress_at = time.monotonic()

    def _block(self, now: float, deadline: float | None) -> float:
        """How long a round may block on the host: poll, cut short by the deadline and by the moment the
        next progress lines are due (so a line comes every progress_interval seconds, not every poll)."""
        block = self.poll if deadline is None else min(self.poll, deadline - now)
        if self._progress_next is not None:
            block = min(block, max(self._progress_next - now, 0.0))
        return block

    def _progress_due(self, block: float) -> bool:
        """Whether this round's answer should carry the running jobs' last lines: they are due by the time it comes back."""
        if not self.progress_interval:
            return False
        if self._progress_next is None:
            return True
        return time.monotonic() + block >= self._progress_next

    def _show_running(self, jid: str, label: str | None, view: dict, tail: dict) -> bool:
        """Show a running (or queued) job's last line if it changed and the interval has passed; True if shown."""
        if self._progress_at is not None and time.monotonic() < self._progress_at + self.progress_interval:
            return False
        meta = view.get("detached") or {}
        state = ids.state_of(view)
        line: object = tail.get("last_line")
        if state == ids.QUEUED:
            line = f"queued for slot {meta.get('slot')!r}"
        elif meta.get("attempt") and meta.get("retries"):
            state = f"{state} (attempt {meta['attempt']} of {int(meta['retries']) + 1})"
        if not isinstance(line, str) or line == self._last_line.get(jid):
            return False
        self._last_line[jid] = line
        shown = line if len(line) <= _LINE_MAX else line[: _LINE_MAX - 3] + "..."
        display.display(f"{self.host}: job {jid}{f' ({label})' if label else ''} {state}: {shown}")
        self.progress.append({"at": round(time.time(), 3), "ansible_job_id": jid, "state": ids.state_of(view), "line": line})
        del self.progress[:-PROGRESS_KEPT]
        return True

    def _kill(self, jids: list[str], stopped: bool = False) -> list[str]:
        """Kill the jobs still running (not in check mode); returns the ids killed.

        Why goes with the call, for the jobs' records (see _ops.kill_reason): the wait's timeout
        passed, or (stopped) it stopped early with fail_fast."""
        if self.action._task.check_mode:
            return []
        killed: list[str] = []
        why: dict[str, t.Any] = {"on_timeout": "kill", "fail_fast": True} if stopped else {"on_timeout": "kill", "timeout": int(self.timeout)}
        res = self._call("kill", jids, 0, deadline=time.monotonic() + 60, **why)
        for jid, view in (res.get("jobs") or {}).items():
            self.views[jid] = view
            killed.append(jid)
        self.reasons.update(res.get("reasons") or {})
        for key, msg in (res.get("errors") or {}).items():
            self.errors[key] = msg
        return killed

    def _cleanup(self, order: list[str]) -> None:
        """With cleanup (not in check mode), remove the finished jobs."""
        if self.cleanup and not self.action._task.check_mode:
            finished = [jid for jid in order if self.views.get(jid, {}).get("finished")]
            if finished:
                self._call("cleanup", finished, 0, deadline=time.monotonic() + 60)

    def _any_bad(self) -> bool:
        return bool(self.errors) or any(v.get("finished") and ids.state_of(v) != ids.SUCCEEDED for v in self.views.values())

    def _progress(self, jid: str, label: str | None, view: dict, done: int, total: int) -> None:
        meta = view.get("detached") or {}
        elapsed = meta.get("elapsed")
        took = f" in {elapsed:.1f}s" if isinstance(elapsed, (int, float)) else ""
        display.display(f"{self.host}: job {jid}{f' ({label})' if label else ''} {ids.state_of(view)}{took} [{done}/{total}]")

    # --- the result ---------------------------------------------------------------
    def _summary(
        self, order: list[str], labels: dict, elapsed: float, timed_out: bool, stopped: bool, unreachable: bool, killed: list[str], still: list[str]
    ) -> dict:
        jobs: list[dict] = []
        counts: dict[str, int] = {}
        problems: list[str] = []
        for jid in order:
            view = self.views.get(jid)
            if view is not None and not view.get("finished") and jid in self.errors:
                view = None  # the last read failed (a damaged status file): report why, not the last state seen
            if view is None:
                msg = self._missing_msg(jid) or self.errors.get(jid, "no status was read before the wait ended") + self._dir_hint(jid)
                reason = ids.NOT_FOUND if jid in self.missing else self.reasons.get(jid, ids.ERROR)
                view = {"ansible_job_id": jid, "started": False, "finished": False, "failed": True, "msg": msg, "reason": reason,
                        "detached": {"state": MISSING}}
            else:
                view = dict(view)
            state = ids.state_of(view) if view.get("detached", {}).get("state") != MISSING else MISSING
            if labels.get(jid):
                view["label"] = labels[jid]
            counts[state] = counts.get(state, 0) + 1
            jobs.append(view)
            if state != ids.SUCCEEDED:
                what = f"{jid} ({labels[jid]})" if labels.get(jid) else jid
                if state in (ids.RUNNING, ids.QUEUED) and self.partial:
                    continue
                if state in (ids.RUNNING, ids.QUEUED):
                    problems.append(f"{what}: still {state}{' (killed)' if jid in killed else ' (left ' + state + ')'}")
                else:
                    # (A module's message can be long; a missing job's says why in full.)
                    problems.append(f"{what}: {state}: {str(view.get('msg') or '').strip()[: 600 if state == MISSING else 300]}")
        for key, msg in self.errors.items():
            if key not in order:
                msg += self._dir_hint(None) if self.reasons.get(key) == ids.NOT_FOUND else ""
                problems.append(msg)
                counts[MISSING] = counts.get(MISSING, 0) + (0 if key == "connection" else 1)
                if key in self.names:
                    # A name that names no job still gets its entry, in the order given.
                    jobs.append({"ansible_job_id": None, "label": key, "started": False, "finished": False, "failed": True,
                                 "msg": msg, "reason": self.reasons.get(key, ids.ERROR), "detached": {"state": MISSING, "name": key}})
        n = len(jobs)
        head = f"{n} job{'s' if n != 1 else ''}: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
        if timed_out:
            head += f"; the wait timed out after {self.timeout:g}s"
        if stopped:
            head += "; stopped early (fail_fast)"
        if self.partial:
            head += "; returned before every job ended (" + ("check mode" if self.action._task.check_mode else "return_when=any") + ")"
        failed = bool(problems) or timed_out or unreachable
        return {
            "jobs": jobs,
            "counts": counts,
            "ansible_job_ids": order,
            "unfinished": still,
            "elapsed": round(elapsed, 3),
            "progress": self.progress,
            "remote_calls": self.calls,
            "timed_out": timed_out,
            "changed": self.changed,
            "failed": failed,
            "msg": head + (". " + "; ".join(problems) if problems else ""),
        }

    def _started_in(self, jid: str | None) -> str | None:
        """The job directory jid was started in, when its reference says (a registered result), as the host expanded it."""
        for ref in self.refs:
            if ref.jid == jid and ref.async_dir and ref.async_dir.startswith("/"):
                return ref.async_dir.rstrip("/") or "/"
        return None

    def _dir_hint(self, jid: str | None) -> str:
        started_in = self._started_in(jid)
        if started_in and self.remote_dir and started_in != self.remote_dir:
            return (
                f" (it was started with job directory {started_in} but this task looks in {self.remote_dir}:"
                " use the same become and become_user as the task that started it)"
            )
        return ""

    def _missing_msg(self, jid: str) -> str | None:
        """Why the host found no status file for jid, with what the controller knows: the directory the
        job was started in (None: the host's own message stands, it says what can be said without it)."""
        started_in = self._started_in(jid)
        if jid not in self.missing or not started_in or not self.remote_dir:
            return None
        path = f"{self.remote_dir.rstrip('/')}/{jid}"
        if started_in == self.remote_dir:
            return missing_msg(jid, path, REMOVED_HINT)
        return missing_msg(
            jid,
            path,
            f"it was started in job directory {started_in} but this task looks in {self.remote_dir}:"
            " use the same become and become_user as the task that started it",
        )


def with_lines(view: dict) -> dict:
    """Add stdout_lines/stderr_lines as ansible-core does for module results."""
    for key in ("stdout", "stderr"):
        if isinstance(view.get(key), str) and f"{key}_lines" not in view:
            view[f"{key}_lines"] = view[key].splitlines()
    return view


class _State:
    """Where a wait stands: the jobs pending, every job in the order reported, labels, how many ended, and why it stopped."""

    def __init__(self, refs: list[JobRef], names: list[str]) -> None:
        self.pending: list[str] = [r.jid for r in refs if r.jid]
        self.labels: dict[str, str | None] = {r.jid: r.label for r in refs if r.jid}
        self.names = list(names)
        self.order: list[str] = list(self.pending)
        self.total = len(self.pending) + len(self.names)
        self.done = 0
        self.timed_out = self.stopped = self.unreachable = False


class _Unreachable(Exception):
    pass
