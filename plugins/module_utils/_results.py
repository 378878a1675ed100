# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""What a job's attempts come to: results, attempt records, retry delays, messages. Private to detached.jobs.

Pure functions: from what the supervisor saw (the exit status of the job's process, its output as
read from the files, why it was stopped, the job's options) to the result its record carries, the
record of each attempt, the wait before the next attempt and the words that say how the job ended.
None of them touches a file, a process or a clock, so each is tested with plain values
(tests/unit/plugins/module_utils/test__results.py); _supervisor reads and writes, then calls them.
Standard library and _ids only, Python 3.8+: the controller may import it (the back-off formula).
"""

from __future__ import annotations

import json
import signal

from ansible_collections.detached.jobs.plugins.module_utils import _ids as ids
from ansible_collections.detached.jobs.plugins.module_utils import _options as opts_

# Why an attempt (or the job) was stopped, besides ids.TIMEOUT (the attempt's own timeout) and
# ids.KILLED (a kill request): the job's total_timeout, its queue_timeout, or its time limit could
# not be armed (see Supervisor._arm).
QUEUE_TIMEOUT = "queue_timeout"
TOTAL_TIMEOUT = "total_timeout"
UNARMED = "unarmed"
# Lines and bytes of each stream kept in an attempt's record.
ATTEMPT_TAIL_LINES = 10
ATTEMPT_TAIL_BYTES = 2048
STREAMS = ("stdout", "stderr")  # the output streams, in the order results and records list them


def retry_wait(state: str, stopped: str | None, killed: bool, done: int, opts: dict, first_started: float | None, now: float) -> float | None:
    """Seconds to wait before the next attempt, or None when the job is not run again.

    state: how the attempt that just ended ended; stopped: what stopped it (None: it ended by
    itself); killed: a kill request came; done: the attempts so far, that one included; opts: the
    job's retries, retry_delay, backoff, retry_max_delay, retry_on_timeout and total_timeout;
    first_started: when the first attempt started; now: the time.
    """
    if done > opts["retries"] or killed or stopped == UNARMED:
        return None
    if state == ids.TIMEOUT and not (opts["retry_on_timeout"] and stopped == ids.TIMEOUT):
        return None
    if state not in (ids.FAILED, ids.VANISHED, ids.TIMEOUT):
        return None
    # At most MAX_SECONDS: a delay that grew beyond any bound (backoff) is no infinite retry_at in the record.
    wait = min(opts_.retry_delay(done, opts["retry_delay"], opts["backoff"], opts["retry_max_delay"]), ids.MAX_SECONDS)
    total = opts["total_timeout"]
    if total and first_started is not None and now + wait >= first_started + total:
        return None
    return wait


# --- the result of an attempt -------------------------------------------------------------
def output_text(data: bytes, size: int, path: str) -> tuple[str, bool]:
    """An output stream as a result carries it, and whether its file must be kept.

    data: the last bytes of the stream (at most output_limit), size: its whole length, path: its
    file. The file is kept when the text is not all of it (a first line then says where the rest
    is) or was not UTF-8 (the text has replacement characters where the file has the bytes).
    """
    keep = False
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("utf-8", errors="replace")
        keep = True
    if size > len(data):
        keep = True
        text = f"[detached.jobs: first {size - len(data)} of {size} bytes omitted; full output in {path}]\n" + text
    return text, keep


def module_result(out: bytes, out_size: int, stderr: str, rc: int | None, limit: int, stdout_path: str) -> tuple[dict, bool]:
    """A module attempt's result from its stdout (out: the last limit bytes, out_size: all of it) and
    its stderr text; and whether its stdout file must be kept (more than limit, or no JSON in it)."""
    if out_size > len(out):
        msg = f"the module printed {out_size} bytes, more than output_limit ({limit}); its raw output is kept in {stdout_path}"
        return {"failed": True, "msg": msg, "rc": rc, "module_stderr": stderr}, True
    text = out.decode("utf-8", errors="replace")
    result = parse_module_json(text)
    if result is None:
        return {
            "failed": True,
            "msg": f"the module did not return a JSON result (rc={rc}); see module_stdout and module_stderr",
            "rc": rc,
            "module_stdout": text,
            "module_stderr": stderr,
        }, bool(text)
    if stderr:
        result.setdefault("stderr", stderr)
    if result.get("failed") and not result.get("msg"):
        result["msg"] = failure_msg(result, rc)
    return result, False


def command_result(cmd: object, rc: int | None, stdout: str, stderr: str, started: float, ended: float) -> dict:
    """A command attempt's result, as ansible.builtin.command gives it (times in local time)."""
    import datetime

    fmt = "%Y-%m-%d %H:%M:%S.%f"
    start = datetime.datetime.fromtimestamp(started)
    end = datetime.datetime.fromtimestamp(ended)
    result = {
        "cmd": cmd,
        "rc": rc,
        "stdout": stdout.rstrip("\r\n"),
        "stderr": stderr.rstrip("\r\n"),
        "start": start.strftime(fmt),
        "end": end.strftime(fmt),
        "delta": str(end - start),
        "changed": True,
        "msg": "",
    }
    if rc:
        result["failed"] = True
        result["msg"] = "non-zero return code"
    return result


def failure_msg(result: dict, rc: int | None) -> str:
    """A message for a failed module result that has none.

    ansible-core 2.19 reports a module's unhandled exception as {"failed": true, "exception":
    {"event": {"msg": ...}, ...}} without "msg" (its controller derives one); older versions
    give the traceback as a string.
    """
    exc = result.get("exception")
    event = exc.get("event") if isinstance(exc, dict) else None
    text = event.get("msg") if isinstance(event, dict) else None
    if not text and isinstance(exc, str) and exc.strip():
        text = exc.strip().splitlines()[-1]
    return f"the module failed: {text}" if text else f"the module failed without a message (rc={rc})"


def parse_module_json(text: str) -> dict | None:
    """The module's JSON result, ignoring junk lines before and after it (as ansible-core does).

    Junk after it (uncommon, and worth a look) is reported in the result's warnings, in the words
    of ansible-core's async_wrapper.
    """
    lines = text.splitlines()
    first = next((i for i, line in enumerate(lines) if line.lstrip().startswith("{")), None)
    last = next((i for i in range(len(lines) - 1, -1, -1) if lines[i].rstrip().endswith("}")), None)
    if first is None or last is None or last < first:
        return None
    try:
        result = json.loads("\n".join(lines[first : last + 1]))
    except ValueError:
        return None
    if not isinstance(result, dict):
        return None
    junk = lines[last + 1 :]
    if any(line.strip() for line in junk):
        warnings = result.get("warnings", [])
        warnings = list(warnings) if isinstance(warnings, list) else [warnings]
        warnings.append("Module invocation had junk after the JSON data: " + "\n".join(junk))
        result["warnings"] = warnings
    return result


def attempt_end(result: dict, stopped: str | None, sig: int | None, why: dict) -> tuple[str, str | None]:
    """The state an attempt ended in, and the message that says why (None: the result's own stands).

    stopped: what stopped it (ids.TIMEOUT, TOTAL_TIMEOUT, ids.KILLED, UNARMED) or None; sig: the
    signal that ended its process, if one did. why: what the messages name: timeout, total_timeout,
    grace, attempt (its number), child (its pid), killed_how (see _supervisor.killed_how),
    unarmed (why its limit could not be armed), signal_name.
    """
    kill = f"SIGTERM, then SIGKILL after {why['grace']:g}s"
    if stopped == ids.TIMEOUT:
        return ids.TIMEOUT, f"Timeout exceeded: the job ran longer than its {why['timeout']:g}s limit and was killed ({kill})"
    if stopped == TOTAL_TIMEOUT:
        return ids.TIMEOUT, (
            f"Timeout exceeded: the job ran longer than its total_timeout of {why['total_timeout']:g}s and attempt {why['attempt']} was killed ({kill})"
        )
    if stopped == ids.KILLED:
        return ids.KILLED, f"the job was killed {why['killed_how']}"
    if stopped == UNARMED:
        return ids.FAILED, f"{why['unarmed']}; it was stopped ({kill}) rather than left running without a limit"
    if sig is not None:
        killed_by = f"the job's process (pid {why['child']}) was killed by {why['signal_name']}"
        if sig == signal.SIGKILL:
            return ids.VANISHED, f"{killed_by} (out of memory, or kill -9) before it returned a result"
        return ids.FAILED, killed_by
    return (ids.FAILED if result.get("failed") else ids.SUCCEEDED), None


def attempt_record(number: int, started: float, ended: float, state: str, result: dict, exit_rc: int | None, sig: int | None, tail: dict) -> dict:
    """What is kept of one attempt: when it ran, how it ended, and the tail of its output (tail: lines of each stream)."""
    rc = exit_rc if exit_rc is not None else result.get("rc") if isinstance(result.get("rc"), int) else None
    return {
        "attempt": number,
        "started_at": started,
        "ended_at": ended,
        "elapsed": round(ended - started, 3),
        "state": state,
        "rc": rc,
        "signal": sig,
        "msg": str(result.get("msg") or "")[:500],
        "tail": {suffix: list(tail.get(suffix) or []) for suffix in STREAMS},
    }


# --- the job's end ------------------------------------------------------------------------
def final_meta(meta: dict, ended: float, first_started: float | None, rc: int | None, sig: int | None, keep: dict, attempts: list | None) -> dict:
    """The detached keys of a finished job's record: its running ones, when it ended, how, the files
    kept (keep: suffix -> path) and, for a job with retries (attempts not None), its attempts."""
    started = first_started if first_started is not None else ended
    meta = dict(meta, ended_at=ended, elapsed=round(ended - started, 3), rc=rc, signal=sig, files=keep)
    meta.pop("retry_at", None)
    if attempts is not None:
        meta.update(attempt=len(attempts), attempts=attempts)
    return meta


def killed_in_delay_msg(how: str, done: int, last: str) -> str:
    """A job killed while it waited to run its next attempt (done: the attempts so far, last: how the last one ended)."""
    return f"the job was killed {how} in the delay before attempt {done + 1}; no more attempts (attempt {done}: {last})"


def last_of_msg(msg: str, attempts: int) -> str:
    """The message of a job that failed after several attempts."""
    return f"{msg} (the last of {attempts} attempts)"


def early_end(why: str, killed_how: str, slot: object, slot_limit: int, queue_timeout: float) -> tuple[str, str]:
    """The state and message of a job that ended before an attempt ran: ids.KILLED or QUEUE_TIMEOUT
    in its slot's queue, else why is the message of a job that could not start."""
    if why == ids.KILLED:
        return ids.KILLED, f"the job was killed {killed_how} while queued for slot {slot!r}; it never ran"
    if why == QUEUE_TIMEOUT:
        return ids.TIMEOUT, (
            f"Timeout exceeded: the job waited longer than its queue_timeout of {queue_timeout:g}s for slot {slot!r} (limit {slot_limit}); it never ran"
        )
    return ids.FAILED, why
