# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""The names of things, shared by the host code and the controller. Private to detached.jobs.

Job ids, job names and job states, how a status read from a job is classified, the errors of a
job, and the one list of the host files and of the bundles that carry them. The controller
(plugin_utils) needs these rules too; it imports this module and never the job store, which
stays host-only. Standard library only, Python 3.8+.
"""

from __future__ import annotations

import re

TYPE_CHECKING = False  # typing is not imported at run time: the supervisor stays lean
if TYPE_CHECKING:
    import typing as t

    Record = t.Dict[str, t.Any]

# The package of the collection's host code, and its files (plugins/module_utils/<name>.py) that
# run on managed hosts, each with the bundles that carry it:
# - supervisor: the zip application a job's supervisor runs from (python -I -S, see
#   _control.supervisor_pyz): exactly what _supervisor imports, nothing more (each running job
#   costs what the supervisor holds in memory);
# - runner: what the lean runner sends on stdin (plugin_utils/_remote.py): _ops, _query and what
#   they import, the supervisor's files among them (a start builds the zip application from them);
# - keyword: what keyword mode's wrapper carries (keyword/async_wrapper.py, written by
#   hack/keyword_wrapper.py): _keyword and what it imports, the supervisor's files among them.
# The one list of them: a new host file is added here (a unit test checks each bundle against the imports).
HOST_PACKAGE = "ansible_collections.detached.jobs.plugins.module_utils"
HOST_FILES = (
    ("_ids", "supervisor runner keyword"),
    ("_options", "supervisor runner keyword"),
    ("_safepath", "supervisor runner keyword"),
    ("_records", "supervisor runner keyword"),
    ("_jobstore", "supervisor runner keyword"),
    ("_slots", "supervisor runner keyword"),
    ("_tmpdirs", "supervisor runner keyword"),
    ("_process", "supervisor runner keyword"),
    ("_results", "supervisor runner keyword"),
    ("_outputs", "supervisor runner keyword"),
    ("_zygote", "supervisor runner keyword"),
    ("_supervisor", "supervisor runner keyword"),
    ("_pyzcache", "runner keyword"),
    ("_control", "runner keyword"),
    ("_launch", "runner keyword"),
    ("_ops", "runner"),
    ("_query", "runner"),
    ("_specs", "runner"),
    ("_keyword", "keyword"),
)


def host_files(bundle: str) -> tuple[str, ...]:
    """The host files (module names, without the package) that a bundle carries (see HOST_FILES)."""
    return tuple(name for name, bundles in HOST_FILES if bundle in bundles.split())


# Where job directories are when the task does not say (ansible-core's async_dir default).
DEFAULT_ASYNC_DIR = "~/.ansible_async"
# Bytes read from the end of an output file for its tail, unless the reader asks otherwise
# (async_status and job_info tail_bytes, the store's output_tail).
TAIL_BYTES = 4096

RUNNING = "running"
# Waiting for a host-side slot (start's slot/slot_limit): not finished, not yet running.
QUEUED = "queued"
SUCCEEDED = "succeeded"
FAILED = "failed"
TIMEOUT = "timeout"
KILLED = "killed"
VANISHED = "vanished"
STATES = (RUNNING, QUEUED, SUCCEEDED, FAILED, TIMEOUT, KILLED, VANISHED)
FINAL_STATES = (SUCCEEDED, FAILED, TIMEOUT, KILLED, VANISHED)

# ansible-core: j<digits>.<pid>; Mitogen: 16 hex digits.
JID_PATTERN = r"(?:j[0-9]{1,20}\.[0-9]{1,10}|[0-9a-f]{16})"
_JID_RE = re.compile(r"\A" + JID_PATTERN + r"\Z")
_MITOGEN_JID_RE = re.compile(r"\A[0-9a-f]{16}\Z")
_NAME_RE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_.@+-]{0,127}\Z")


# Why an operation or a job failed, as a short fixed word: a failed result carries it as "reason"
# (and wait's per-job errors in "reasons"), so that callers decide by it, never by a message's words.
NOT_FOUND = "not_found"  # no such job (no status file), no job of that name, no job directory
CORRUPT = "corrupt"  # a job file that cannot be read as this collection wrote it
UNSAFE = "unsafe"  # a job directory or file another user could change (refused)
NOT_KILLABLE = "not_killable"  # a running job this collection cannot stop safely
INVALID = "invalid"  # a bad value given: a job id, a name, an option, a filter, a command line
LAUNCH = "launch"  # a job that could not be started
SPAWN = "spawn"  # a job's program that could not be executed
STILL_RUNNING = "still_running"  # an operation refused because the job still runs (a cleanup)
IO = "io"  # a file operation of the host that failed (a full disk, a permission)
ERROR = "error"  # anything else
REASONS = (NOT_FOUND, CORRUPT, UNSAFE, NOT_KILLABLE, INVALID, LAUNCH, SPAWN, STILL_RUNNING, IO, ERROR)


class Error(Exception):
    """An error of the collection's host code: the message says what and names the thing involved,
    `reason` says which kind (one of REASONS): a class attribute, which an instance may override."""

    reason = ERROR

    def __init__(self, msg: str = "", reason: str | None = None) -> None:
        super().__init__(msg)
        if reason is not None:
            self.reason = reason


class JobError(Error):
    """A problem with a job or its files; the message names the thing involved."""


class InvalidJobId(JobError):
    reason = INVALID


class InvalidName(JobError):
    reason = INVALID


class JobNotFound(JobError):
    reason = NOT_FOUND


class CorruptJob(JobError):
    reason = CORRUPT


class UnsafePath(CorruptJob):
    """A job directory, or a file or directory in it, that another user could change (see
    _safepath.private_problem); the message names it and why. (A job whose file is refused reads as corrupt.)"""

    reason = UNSAFE


class NotKillable(JobError):
    """A running job this collection cannot stop safely (started by another engine); it goes on."""

    reason = NOT_KILLABLE


class LaunchError(JobError):
    """A job that could not be started (a bad option, no payload, its supervisor failed)."""

    reason = LAUNCH


class SpawnError(Error):
    """A job's process could not start: its program could not be executed (the message says why).
    (Not a JobError: the supervisor reports it as the job's own failure, see _supervisor.)"""

    reason = SPAWN


class QueryError(Error, ValueError):
    """A bad filter value of job_info or prune; the message names it."""

    reason = INVALID


class KeywordError(Error):
    """Keyword mode's wrapper could not start the job (its command line, the module to run)."""

    reason = INVALID


def reason_of(ex: BaseException) -> str:
    """The reason of an error: its own for the collection's errors, IO for an OSError, else ERROR."""
    reason = getattr(ex, "reason", None)
    if isinstance(reason, str) and reason:
        return reason
    return IO if isinstance(ex, OSError) else ERROR


def failure(ex: BaseException, **extra: t.Any) -> dict:
    """The one place an escaped error becomes a failed result: extra, then failed, msg and reason."""
    return dict(extra, failed=True, msg=str(ex), reason=reason_of(ex))


def is_jid(value: object) -> bool:
    return isinstance(value, str) and _JID_RE.match(value) is not None


def is_mitogen_jid(value: object) -> bool:
    """Whether value is a job id of Mitogen's async (ansible-core's start with 'j')."""
    return isinstance(value, str) and _MITOGEN_JID_RE.match(value) is not None


def is_name(value: object) -> bool:
    return isinstance(value, str) and _NAME_RE.match(value) is not None


def validate_jid(jid: object) -> str:
    """Return jid if it is a job id this collection accepts, else raise InvalidJobId."""
    if not isinstance(jid, str) or not is_jid(jid):
        raise InvalidJobId(f"invalid job id {jid!r}: expected an ansible-core id like 'j123456789012.4242' or a 16-hex-digit Mitogen id")
    return jid


def validate_name(name: object, what: str = "job name") -> str:
    if not isinstance(name, str) or not is_name(name):
        raise InvalidName(f"invalid {what} {name!r}: use 1 to 128 letters, digits and '_.@+-', starting with a letter or digit")
    return name


def new_jid(rand: int, pid: int) -> str:
    """A job id in ansible-core's form."""
    return f"j{rand}.{pid}"


def is_finished(record: Record) -> bool:
    """ansible-core's rule: a record without 'started' is a finished module result."""
    if "started" not in record:
        return True
    return bool(record.get("finished", False))


def state_of(record: Record) -> str:
    """The detached state of any status, ours or one written by ansible-core's async_wrapper."""
    meta = record.get("detached")
    if isinstance(meta, dict) and meta.get("state") in STATES:
        return str(meta["state"])
    if not is_finished(record):
        return RUNNING
    if record.get("failed"):
        if str(record.get("msg", "")).startswith("Timeout exceeded"):
            return TIMEOUT
        return FAILED
    return SUCCEEDED


# The largest number of seconds any limit of a job may have (timeout, grace, total_timeout,
# queue_timeout, retry_delay, retry_max_delay; the start action's poll): 10 years. Checked by the
# start action and again on the host (_control.JobSpec, keyword mode's async), before anything
# starts: signal.setitimer and the supervisor's time arithmetic must not overflow (a larger value
# used to crash the supervisor after the job had started, leaving it running unsupervised), and
# no record may hold an infinite or meaningless time.
MAX_SECONDS = 10 * 365 * 24 * 3600
# The largest output_limit, in bytes (1 GiB): the supervisor loads that much output, and holds it
# a few times over while it builds the result (docs/reliability.md); beyond what a read can take
# at once, it would crash after the job ended, without recording a result.
MAX_OUTPUT_LIMIT = 1024 * 1024 * 1024
# The largest retries, slot_limit and backoff: every attempt's record stays in the status file
# (rewritten at each change), a slot of more jobs at once than that limits nothing, and a delay
# that grows faster than that per attempt reaches MAX_SECONDS within a few attempts anyway.
MAX_COUNT = 1000
# (_options.LIMITS: the bounds of each option, with these.)

# Why a job has no status file, as far as the host can tell: it cannot tell a job that was removed
# from one that was never there (nothing is kept of a removed job).
REMOVED_HINT = "it was removed (async_status mode=cleanup, cleanup of wait or start, prune) or never started on this host"
# Said only when where the job was started is not known (a bare job id, a name): a job lives in the
# job directory of the user it was started as.
BECOME_HINT = ", or started as another user (then query it with the become and become_user of the task that started it)"


def missing_msg(jid: str, path: str, hint: str | None = None) -> str:
    """The message for a job id with no status file at path; hint: why (default: removed, never started here, or another user)."""
    return f"could not find job: job {jid}: no status file {path}: {hint or REMOVED_HINT + BECOME_HINT}"
