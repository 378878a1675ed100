# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""The job directory and its status files. Private to the detached.jobs collection.

This is the only code that knows the file format (see docs/architecture.md): paths and their
containment, atomic writes, reads, listing, the name index and the directory lock. The rules
for job ids, names and states are in _ids (the controller shares them). Standard library only, Python 3.8+.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import stat
import time

from ansible_collections.detached.jobs.plugins.module_utils._ids import (  # noqa: F401  # pylint: disable=unused-import  # the store's vocabulary, re-exported
    DEFAULT_ASYNC_DIR,
    FAILED,
    FINAL_STATES,
    JID_PATTERN,
    KILLED,
    QUEUED,
    RUNNING,
    STATES,
    SUCCEEDED,
    TIMEOUT,
    VANISHED,
    InvalidJobId,
    InvalidName,
    is_finished,
    is_jid,
    is_name,
    new_jid,
    state_of,
    validate_jid,
    validate_name,
)
from ansible_collections.detached.jobs.plugins.module_utils._ids import JobError as JobStoreError

TYPE_CHECKING = False  # typing is not imported at run time: the supervisor stays lean
if TYPE_CHECKING:
    import typing as t

    Record = t.Dict[str, t.Any]

FORMAT_VERSION = 1

# '<jid>.<anything>': a job's extra files; '.<jid or name>.<pid>.<ns>.tmp': an atomic write's temporary file.
_EXTRA_RE = re.compile(r"\A(" + JID_PATTERN + r")\.[^/]+\Z")
_TMP_RE = re.compile(r"\A\.[^/]+\.[0-9]+\.[0-9]+\.tmp\Z")
# A slot's ticket: '<12-digit sequence number>.<jid>'
_TICKET_RE = re.compile(r"\A[0-9]{12}\." + JID_PATTERN + r"\Z")
# Files that belong to a job: <jid>.<suffix>
SUFFIXES = ("payload", "args", "pyz", "stdout", "stderr", "kill")
# '<jid>.kill': why a kill was asked for, one short line ("because the wait timed out after 30s
# (wait on_timeout: kill)"), left by the kill before it signals the supervisor, which puts it in the
# job's record; without it, the record says "on request".
_KILL_REASON_MAX = 512
# A module attempt's temporary directory (its TMPDIR, outside the job directory), named in the
# job's running record as "tmpdir" while the attempt runs: '<TMPDIR>/detached.jobs-<jid>-<attempt>'.
TMPDIR_PREFIX = "detached.jobs-"
NAMES_DIR = ".names"
SLOTS_DIR = ".slots"
LOCK_FILE = ".lock"
# Bytes read from the end of an output file for its tail, unless the reader asks otherwise.
TAIL_BYTES = 4096
_MAX_STATUS_BYTES = 256 * 1024 * 1024


class JobNotFound(JobStoreError):
    pass


def tmpdir_name(jid: str, attempt: int) -> str:
    return f"{TMPDIR_PREFIX}{jid}-{attempt}"


def recorded_tmpdir(jid: str, meta: object) -> str | None:
    """The module temporary directory that a job's record names, if it is that job's and still
    there: an absolute path named for the job, a directory (not a symlink) of this user."""
    path = meta.get("tmpdir") if isinstance(meta, dict) else None
    if not isinstance(path, str) or not os.path.isabs(path):
        return None
    if not re.fullmatch(re.escape(f"{TMPDIR_PREFIX}{jid}-") + r"[0-9]+", os.path.basename(path)):
        return None
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return path if stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() else None


def remove_tmpdir(path: str) -> bool:
    """Remove a job's module temporary directory (see recorded_tmpdir); whether it is gone."""
    import shutil  # only here: the supervisor, which imports this module, stays small while its job runs

    shutil.rmtree(path, ignore_errors=True)
    return not os.path.lexists(path)


class NotKillable(JobStoreError):
    """A running job this collection cannot stop safely (started by another engine); it goes on."""


class CorruptJob(JobStoreError):
    pass


class UnsafePath(CorruptJob):
    """A job directory, or a file or directory in it, that another user could change (see
    private_problem); the message names it and why. (A job whose file is refused reads as corrupt.)"""


# How long a wait for a lock (the job directory's, a slot's) may take before it fails. A start
# holds the directory's lock while its jobs are launched (each supervisor has 60 s to report).
LOCK_WAIT = 120.0
_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISREG, "a regular file"), (stat.S_ISLNK, "a symlink"), (stat.S_ISFIFO, "a fifo"), (stat.S_ISSOCK, "a socket"))


def kind_of(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "a device")


def _owner(uid: int) -> str:
    try:
        import pwd  # only here: a refusal is rare

        return f"uid {uid} ({pwd.getpwuid(uid).pw_name})"
    except (ImportError, KeyError):
        return f"uid {uid}"


def private_problem(st: os.stat_result, want_dir: bool, others: int = 0o022) -> str | None:
    """Why a file or directory (its lstat) is not private to this user, or None: it must be of the
    kind wanted (never a symlink), owned by the effective user and without the write bits others."""
    if not (stat.S_ISDIR(st.st_mode) if want_dir else stat.S_ISREG(st.st_mode)):
        return f"it is not {'a directory' if want_dir else 'a regular file'} but {kind_of(st.st_mode)}"
    if st.st_uid != os.geteuid():
        return f"it is owned by {_owner(st.st_uid)}, not by you ({_owner(os.geteuid())})"
    if st.st_mode & others:
        return f"it is writable by others (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def check_private(path: str, st: os.stat_result, want_dir: bool) -> None:
    """Raise UnsafePath naming path and why, unless it is private to this user (see private_problem)."""
    why = private_problem(st, want_dir)
    if why is not None:
        raise UnsafePath(f"{path} is not safe to use: {why}; another user could replace what the collection reads, runs or deletes there")


def _ancestors(path: str) -> list[str]:
    """The existing directories above path, from / down."""
    found = []
    parent = os.path.dirname(path)
    while True:
        found.append(parent)
        up = os.path.dirname(parent)
        if up == parent:
            return [p for p in reversed(found) if os.path.isdir(p)]
        parent = up


def ancestor_problem(path: str) -> str | None:
    """Why another user could swap path by changing a directory above it, or None.

    Each directory above it (as written and as resolved) must belong to this user or root, and be
    writable by nobody else unless it has the sticky bit (as /tmp has: others cannot rename what
    is ours in it). This is OpenSSH's StrictModes rule; it makes the path itself trustworthy, so
    that what is run from it by path (a job's payload) cannot be swapped after the checks.
    """
    me = os.geteuid()
    for parent in dict.fromkeys(_ancestors(path) + _ancestors(os.path.realpath(path))):
        try:
            st = os.stat(parent)
        except OSError:
            continue
        if st.st_uid not in (0, me):
            return f"the directory above it, {parent}, is owned by {_owner(st.st_uid)}, neither you nor root"
        if st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
            return f"the directory above it, {parent}, is writable by others without the sticky bit (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def _os_error(what: str, ex: OSError) -> str:
    return f"{what}: {ex.strerror or ex}"


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


def tail_lines(data: bytes, lines: int, cut: bool = False) -> list[str]:
    """The last lines of data (at most lines of them), decoded as UTF-8 with bad bytes replaced.

    cut: data starts inside the file (its first line is the end of a longer one, dropped unless
    it is the only one). A last line without a newline is a line too; carriage returns (the
    progress bars of curl, pip, rsync) end a line as a newline does.
    """
    if lines <= 0 or not data:
        return []
    parts = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    if parts[-1] == b"":
        parts.pop()
    if cut and len(parts) > 1:
        parts = parts[1:]
    return [p.decode("utf-8", errors="replace") for p in parts[-lines:]]


def text_tail(text: str, lines: int, max_bytes: int) -> tuple[list[str], int]:
    """The tail of output already read (a result's stdout or stderr), as tail_lines gives it for a
    file: the last lines of its last max_bytes bytes (UTF-8); and its size in bytes."""
    data = text.encode("utf-8", errors="replace")
    return tail_lines(data[-max_bytes:], lines, cut=len(data) > max_bytes), len(data)


class JobStore:
    """One job directory (by default ~/.ansible_async)."""

    def __init__(self, path: str, create: bool = True) -> None:
        self.path = os.path.abspath(os.path.expanduser(path))
        self._status_bits = 0o022
        if create:
            self.ensure()
        else:
            self.check()

    # --- the directory -------------------------------------------------
    def _refuse(self, why: str) -> UnsafePath:
        return UnsafePath(
            f"job directory {self.path} is not safe to use: {why}; another user could read, replace or plant its files. "
            "Use a private directory (yours, mode 0700, in a place only you and root can change), such as the default "
            f"{DEFAULT_ASYNC_DIR} (the async_dir setting, ansible_async_dir)"
        )

    def check(self) -> bool:
        """Raise UnsafePath unless the directory, where it exists, and every directory above it are
        safe (see private_problem, ancestor_problem); whether it exists."""
        why = ancestor_problem(self.path)
        if why is not None:
            raise self._refuse(why)
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            return False
        except OSError as ex:
            raise JobStoreError(_os_error(f"cannot read job directory {self.path}", ex)) from ex
        why = "it is a symlink" if stat.S_ISLNK(st.st_mode) else private_problem(st, want_dir=True)
        if why is not None:
            raise self._refuse(why)
        # The write bits a status file in it must not have: ansible-core's own status files follow
        # the umask (0664 under umask 002), harmless where the group cannot enter the directory.
        self._status_bits = 0o002 | (0o020 if st.st_mode & 0o010 else 0)
        return True

    def open_file(self, path: str, what: str, others: int = 0o022) -> int | None:
        """A read-only descriptor of a file of the job directory, or None when it is missing.

        Never follows a symlink nor blocks on a fifo; a file that is not a regular file of this
        user, or that has one of the write bits others (by default: group or world writable),
        is refused (UnsafePath). The collection writes every file 0600."""
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            return None
        except OSError as ex:
            if ex.errno == errno.ELOOP:
                raise UnsafePath(f"{what}: {path} is not safe to use: it is a symlink; refusing to follow it") from ex
            raise JobStoreError(_os_error(f"{what}: cannot open {path}", ex)) from ex
        st = os.fstat(fd)
        why = private_problem(st, want_dir=False, others=others)
        if why is not None:
            os.close(fd)
            raise UnsafePath(f"{what}: {path} is not safe to use: {why}")
        return fd

    def ensure(self) -> None:
        """Create the directory 0700 where it is missing. An existing one is used as it is when it is
        safe (see check), and refused, never changed, when it is not."""
        if self.check():
            return
        missing = [self.path]
        while not os.path.lexists(os.path.dirname(missing[-1])):
            missing.append(os.path.dirname(missing[-1]))
        for path in reversed(missing):
            # Each 0700 whatever the umask: made by us, below directories found safe (check).
            try:
                os.mkdir(path, 0o700)
                os.chmod(path, 0o700)
            except FileExistsError:
                pass  # another start made it at the same moment
            except OSError as ex:
                raise JobStoreError(_os_error(f"cannot create job directory {self.path}", ex)) from ex
        self.check()

    def private_subdir(self, name: str, create: bool) -> str | None:
        """A directory of the job directory (.names, .slots, a slot's): its path, once checked
        private, or None when it is missing and not to be created."""
        path = os.path.join(self.path, name)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            if not create:
                return None
            try:
                os.mkdir(path, 0o700)
            except FileExistsError:
                pass
            except OSError as ex:
                raise JobStoreError(_os_error(f"cannot create {path}", ex)) from ex
            st = os.lstat(path)
        check_private(path, st, want_dir=True)
        return path

    def job_path(self, jid: str) -> str:
        return os.path.join(self.path, validate_jid(jid))

    def extra_path(self, jid: str, suffix: str) -> str:
        if suffix not in SUFFIXES:
            raise ValueError(f"unknown job file suffix {suffix!r}")
        return f"{self.job_path(jid)}.{suffix}"

    # --- files -----------------------------------------------------------
    def create_private(self, path: str, data: bytes = b"", mode: int = 0o600) -> None:
        """Create a new private file (never following or replacing anything already there)."""
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), mode)
        except OSError as ex:
            raise JobStoreError(_os_error(f"cannot create {path}", ex)) from ex
        try:
            _write_all(fd, data)
        except OSError as ex:
            os.close(fd)
            _unlink_quiet(path)
            raise JobStoreError(_os_error(f"cannot write {path}", ex)) from ex
        os.close(fd)

    def open_output(self, jid: str, suffix: str) -> int:
        path = self.extra_path(jid, suffix)
        try:
            return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        except OSError as ex:
            raise JobStoreError(_os_error(f"job {jid}: cannot create output file {path}", ex)) from ex

    def _atomic_write(self, path: str, data: bytes, what: str) -> None:
        tmp = os.path.join(self.path, f".{os.path.basename(path)}.{os.getpid()}.{time.monotonic_ns()}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        except OSError as ex:
            raise JobStoreError(_os_error(f"{what}: cannot create {tmp}", ex)) from ex
        try:
            try:
                _write_all(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(tmp, path)
        except OSError as ex:
            _unlink_quiet(tmp)
            raise JobStoreError(_os_error(f"{what}: cannot write {path}", ex)) from ex

    def write(self, jid: str, record: Record) -> None:
        """Replace the status file of jid atomically (tmp + fsync + rename); the old content survives any failure."""
        path = self.job_path(jid)
        data = json.dumps(record, ensure_ascii=True, separators=(",", ":")).encode("ascii")
        self._atomic_write(path, data, f"job {jid}")

    def read_bytes(self, jid: str) -> bytes:
        path = self.job_path(jid)
        fd = self.open_file(path, f"job {jid}", others=self._status_bits)
        if fd is None:
            raise JobNotFound(f"job {jid}: no status file {path}")
        try:
            size = os.fstat(fd).st_size
            if size > _MAX_STATUS_BYTES:
                raise CorruptJob(f"job {jid}: {path} is {size} bytes, more than a status file can be")
            chunks = []
            while True:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            os.close(fd)
        return b"".join(chunks)

    def read(self, jid: str) -> Record:
        """The raw record of jid. JobNotFound if there is no file, CorruptJob if it is not a JSON object."""
        path = self.job_path(jid)
        data = self.read_bytes(jid)
        if not data.strip():
            raise CorruptJob(f"job {jid}: status file {path} is empty")
        try:
            record = json.loads(data.decode("utf-8", errors="surrogateescape"))
        except (ValueError, RecursionError) as ex:  # RecursionError: nesting deeper than the parser can follow
            raise CorruptJob(f"job {jid}: status file {path} is not valid JSON ({ex}); it may be half-written or damaged") from ex
        if not isinstance(record, dict):
            raise CorruptJob(f"job {jid}: status file {path} holds a JSON {type(record).__name__}, not an object")
        return record

    def output_tail(self, jid: str, suffix: str, lines: int, max_bytes: int = TAIL_BYTES) -> tuple[list[str], int, float] | None:
        """The tail of a job's output file while it is there: (last lines, size in bytes, mtime), or None.

        Reads at most max_bytes from the end, with a descriptor of its own (O_RDONLY, no lock), so
        the job writing the file and the supervisor reading it at the end see no difference.
        """
        path = self.extra_path(jid, suffix)
        fd = self.open_file(path, f"job {jid}")
        if fd is None:
            return None
        try:
            st = os.fstat(fd)
            offset = max(0, st.st_size - max(1, max_bytes))
            data = os.pread(fd, st.st_size - offset, offset)
        except OSError as ex:
            raise JobStoreError(_os_error(f"job {jid}: cannot read {path}", ex)) from ex
        finally:
            os.close(fd)
        return tail_lines(data, lines, cut=offset > 0), st.st_size, st.st_mtime

    def exists(self, jid: str) -> bool:
        return os.path.lexists(self.job_path(jid))

    def mtime_ns(self, jid: str) -> int | None:
        try:
            return os.lstat(self.job_path(jid)).st_mtime_ns
        except OSError:
            return None

    def files_of(self, jid: str) -> list[str]:
        """The status file and every extra file ('<jid>.*', whatever the suffix) of jid that exists."""
        base = self.job_path(jid)
        try:
            entries = os.listdir(self.path)
        except OSError:
            entries = []
        prefix = f"{jid}."
        extras = sorted(os.path.join(self.path, e) for e in entries if e.startswith(prefix))
        return ([base] if os.path.lexists(base) else []) + extras

    def remove(self, jid: str) -> list[str]:
        """Remove the job's status file and all its extra files, and its name if the name still points at it; returns what was removed."""
        name = tmpdir = None
        try:
            record = self.read(jid)
            meta = record.get("detached")
            name = meta.get("name") if isinstance(meta, dict) else None
            # (Not while the job runs: its supervisor removes the directory when the attempt ends.)
            tmpdir = recorded_tmpdir(jid, meta) if is_finished(record) else None
        except JobStoreError:
            pass
        removed = []
        # (What a module attempt left in its TMPDIR when its supervisor was killed with kill -9.)
        if tmpdir is not None and remove_tmpdir(tmpdir):
            removed.append(tmpdir)
        for path in self.files_of(jid):
            try:
                os.unlink(path)
            except FileNotFoundError:
                continue
            except OSError as ex:
                raise JobStoreError(_os_error(f"job {jid}: cannot remove {path}", ex)) from ex
            removed.append(path)
        if isinstance(name, str) and is_name(name):
            try:
                if self.name_get(name) == jid:
                    _unlink_quiet(self._name_path(name))
                    removed.append(self._name_path(name))
            except JobStoreError:
                pass
        return removed

    def set_kill_reason(self, jid: str, reason: str) -> None:
        """Leave why jid is being killed (see SUFFIXES); best effort."""
        path = self.extra_path(jid, "kill")
        _unlink_quiet(path)
        try:
            self.create_private(path, reason.encode("utf-8", "replace")[:_KILL_REASON_MAX])
        except JobStoreError:
            pass

    def kill_reason(self, jid: str) -> str | None:
        """Why the kill of jid was asked for, as one line, or None."""
        try:
            fd = self.open_file(self.extra_path(jid, "kill"), f"job {jid}")
        except JobStoreError:
            return None
        if fd is None:
            return None
        try:
            data = os.read(fd, _KILL_REASON_MAX)
        except OSError:
            return None
        finally:
            os.close(fd)
        return " ".join(data.decode("utf-8", "replace").split()) or None

    def remove_extra(self, jid: str, suffixes: t.Iterable[str]) -> None:
        for suffix in suffixes:
            _unlink_quiet(self.extra_path(jid, suffix))

    def list_jids(self) -> list[str]:
        """Job ids with a status file in this directory (ours, the async keyword's, Mitogen's)."""
        try:
            entries = os.listdir(self.path)
        except FileNotFoundError:
            return []
        except OSError as ex:
            raise JobStoreError(_os_error(f"cannot list job directory {self.path}", ex)) from ex
        return sorted(e for e in entries if is_jid(e))

    def scan(self) -> tuple[dict[str, list[str]], list[str]]:
        """One listing of the directory: ({jid: its files}, leftover temporary files).

        A job's files are its status file (first, when it exists) and every '<jid>.*' file,
        whatever the suffix (ansible-core's '<jid>.tmp' included). Job ids that have extra files
        but no status file appear too. Temporary files are those of interrupted atomic writes
        ('.<jid or name>.<pid>.<ns>.tmp').
        """
        try:
            entries = sorted(os.listdir(self.path))
        except FileNotFoundError:
            return {}, []
        except OSError as ex:
            raise JobStoreError(_os_error(f"cannot list job directory {self.path}", ex)) from ex
        jobs: dict[str, list[str]] = {}
        tmps = []
        for entry in entries:
            path = os.path.join(self.path, entry)
            if is_jid(entry):
                jobs.setdefault(entry, []).insert(0, path)
            elif _TMP_RE.match(entry):
                tmps.append(path)
            else:
                m = _EXTRA_RE.match(entry)
                if m:
                    jobs.setdefault(m.group(1), []).append(path)
        return jobs, tmps

    def discard(self, path: str) -> bool:
        """Remove one file of the job directory (never a directory, never anything outside it); False if already gone."""
        parent = os.path.dirname(path)
        if parent not in (self.path, os.path.join(self.path, NAMES_DIR)) or os.path.basename(path) in ("", ".", "..", NAMES_DIR):
            raise JobStoreError(f"refusing to remove {path}: not a file of the job directory {self.path}")
        try:
            os.unlink(path)
        except FileNotFoundError:
            return False
        except OSError as ex:
            raise JobStoreError(_os_error(f"cannot remove {path}", ex)) from ex
        return True

    # --- names and locking ---------------------------------------------
    def names(self) -> list[str]:
        """Every name in the name index."""
        path = self.private_subdir(NAMES_DIR, create=False)
        if path is None:
            return []
        try:
            entries = os.listdir(path)
        except OSError as ex:
            raise JobStoreError(_os_error(f"cannot list {path}", ex)) from ex
        return sorted(e for e in entries if is_name(e))

    def stale_name(self, name: str, gone: t.Collection[str] = ()) -> str | None:
        """The index file of name if it points at no job (no status file, a job in gone, or no job id at all), else None.

        An entry that is not a regular file of this user is not stale: it is refused (UnsafePath)."""
        try:
            jid = self.name_get(name)
        except UnsafePath:
            raise
        except CorruptJob:
            return self._name_path(name)
        if jid is None or (jid not in gone and self.exists(jid)):
            return None
        return self._name_path(name)

    def name_remove_stale(self, name: str) -> str | None:
        """Remove the index entry of name if it is stale, under the directory lock (a start may be claiming it)."""
        with self.lock():
            path = self.stale_name(name)
            return path if path is not None and self.discard(path) else None

    def lock(self) -> _Lock:
        return _Lock(os.path.join(self.path, LOCK_FILE))

    def _name_path(self, name: str) -> str:
        return os.path.join(self.path, NAMES_DIR, validate_name(name))

    def name_get(self, name: str) -> str | None:
        """The newest job id recorded under name, or None."""
        path = self._name_path(name)
        if self.private_subdir(NAMES_DIR, create=False) is None:
            return None
        try:
            fd = self.open_file(path, f"job name {name!r}")
        except UnsafePath as ex:
            raise UnsafePath(f"{ex} (its index entry; remove it by hand if it is not yours)") from ex
        if fd is None:
            return None
        try:
            content = os.read(fd, 256).decode("ascii", errors="replace").strip()
        finally:
            os.close(fd)
        try:
            return validate_jid(content)
        except InvalidJobId as ex:
            raise CorruptJob(f"job name {name!r}: index file {path} does not hold a job id") from ex

    def name_set(self, name: str, jid: str) -> None:
        path = self._name_path(name)
        self.private_subdir(NAMES_DIR, create=True)
        self._atomic_write(path, validate_jid(jid).encode("ascii"), f"job name {name!r}")


class SlotTicket:
    """A job's place in a slot's queue: its ticket file, held locked (flock) by fd for as long as the job lives."""

    def __init__(self, path: str, fd: int) -> None:
        self.path = path
        self.fd = fd


class SlotQueue:
    """The FIFO queue of one slot of a job directory: <dir>/.slots/<slot>/<seq>.<jid> ticket files.

    A job joins when it is started: the launcher creates its ticket under the slot's lock, with
    the next sequence number, locked (flock) from before it appears, and hands the descriptor to
    the job's supervisor, which holds it until the job has ended. The job's process inherits it
    too, so a job whose supervisor was killed still holds its slot while its process runs. A ticket that no process holds any more belongs to a
    job that is gone: whoever looks removes it. A job may run when fewer than its slot_limit live
    tickets are ahead of it, so the first come run first.
    """

    def __init__(self, store: JobStore, slot: str) -> None:
        self.slot = validate_name(slot, "slot name")
        self.store = store
        self.dir = os.path.join(store.path, SLOTS_DIR, slot)

    def _checked(self, create: bool) -> bool:
        """Whether the slot's directory exists (created when asked), once it and .slots are checked private."""
        return self.store.private_subdir(SLOTS_DIR, create) is not None and self.store.private_subdir(os.path.join(SLOTS_DIR, self.slot), create) is not None

    def _lock(self) -> _Lock:
        return _Lock(os.path.join(self.dir, LOCK_FILE))

    def _tickets(self) -> list[str]:
        """Ticket file names, first come first (the sequence number is zero-padded)."""
        try:
            entries = os.listdir(self.dir)
        except OSError as ex:
            raise JobStoreError(_os_error(f"slot {self.slot!r}: cannot list {self.dir}", ex)) from ex
        return sorted(e for e in entries if _TICKET_RE.match(e))

    def join(self, jid: str, info: Record) -> SlotTicket:
        """Queue jid: its ticket, created and locked atomically (info is written in it for people who look)."""
        validate_jid(jid)
        self._checked(create=True)
        with self._lock():
            tickets = self._tickets()
            seq = int(tickets[-1].split(".", 1)[0]) + 1 if tickets else 1
            path = os.path.join(self.dir, f"{seq:012d}.{jid}")
            tmp = os.path.join(self.dir, f".{seq:012d}.{jid}.{os.getpid()}.{time.monotonic_ns()}.tmp")
            try:
                fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0), 0o600)
            except OSError as ex:
                raise JobStoreError(_os_error(f"slot {self.slot!r}: cannot create a ticket in {self.dir}", ex)) from ex
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                _write_all(fd, json.dumps(dict(info, jid=jid, seq=seq), separators=(",", ":")).encode("ascii") + b"\n")
                os.fsync(fd)
                os.rename(tmp, path)
            except OSError as ex:
                os.close(fd)
                _unlink_quiet(tmp)
                raise JobStoreError(_os_error(f"slot {self.slot!r}: cannot write ticket {path}", ex)) from ex
        return SlotTicket(path, fd)

    def ahead(self, ticket: SlotTicket) -> int | None:
        """How many live tickets are ahead of ticket (dead ones are removed on the way), or None if it is gone."""
        if not self._checked(create=False):
            return None
        with self._lock():
            count = 0
            for entry in self._tickets():
                path = os.path.join(self.dir, entry)
                if path == ticket.path:
                    return count
                if self._held(path):
                    count += 1
            return None

    def sweep(self) -> list[str]:
        """Remove the tickets no process holds any more; returns their paths."""
        if not self._checked(create=False):
            return []
        gone = []
        with self._lock():
            for entry in self._tickets():
                path = os.path.join(self.dir, entry)
                if not self._held(path):
                    gone.append(path)
        return gone

    @staticmethod
    def _held(path: str) -> bool:
        """Whether a process holds the ticket; one that nobody holds is removed (call under the slot's lock)."""
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            return False
        except OSError as ex:
            if ex.errno == errno.ELOOP:
                raise UnsafePath(f"{path} is not safe to use: it is a symlink, not a slot ticket") from ex
            return True  # cannot tell: count it, never start one too many
        try:
            # (A ticket that is not this user's own could hold the slot for ever: refused, by name.)
            check_private(path, os.fstat(fd), want_dir=False)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        finally:
            os.close(fd)
        _unlink_quiet(path)
        return False

    def leave(self, ticket: SlotTicket) -> None:
        """The job has ended: its ticket goes, and the next in the queue may start."""
        try:
            with self._lock():
                _unlink_quiet(ticket.path)
        except JobStoreError:
            _unlink_quiet(ticket.path)
        if ticket.fd >= 0:
            os.close(ticket.fd)
            ticket.fd = -1


class _Lock:
    """flock on <async_dir>/.lock (or a slot's), held while job names are claimed or a slot's queue
    is read; a wait for it fails after LOCK_WAIT seconds, naming the lock."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = -1

    def __enter__(self) -> _Lock:
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            self.fd = os.open(self.path, flags, 0o600)
            check_private(self.path, os.fstat(self.fd), want_dir=False)
            deadline = time.monotonic() + LOCK_WAIT
            while True:
                try:
                    fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise JobStoreError(
                            f"cannot lock {self.path}: another process has held it for {LOCK_WAIT:g} s (a start or prune that is "
                            f"still running, or one that hangs: see fuser -v {self.path})"
                        ) from None
                    time.sleep(0.05)
        except (OSError, JobStoreError) as ex:
            if self.fd >= 0:
                os.close(self.fd)
                self.fd = -1
            if isinstance(ex, JobStoreError):
                raise
            if ex.errno == errno.ELOOP:
                raise UnsafePath(f"{self.path} is not safe to use: it is a symlink; refusing to follow it") from ex
            raise JobStoreError(_os_error(f"cannot lock {self.path}", ex)) from ex
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd >= 0:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = -1


def _write_all(fd: int, data: bytes) -> None:
    view_ = memoryview(data)
    while view_:
        written = os.write(fd, view_)
        view_ = view_[written:]


def _unlink_quiet(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
