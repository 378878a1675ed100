# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""The job directory and its status files. Private to the detached.jobs collection.

This is the only code that knows the job directory's files (see docs/architecture.md): paths
and their containment, writes, reads, listing, the name index and the directory lock; what a
status record holds (its shapes, is_ours, a reader's view) is _records'. The rules for job ids,
names, states and errors are in _ids (the controller shares them); whether a file is safe to use,
and how one is written, in _safepath; the slot queues in _slots; a module attempt's temporary
directory in _tmpdirs. Standard library only, Python 3.8+.
"""

from __future__ import annotations

import json
import os
import re

from ansible_collections.detached.jobs.plugins.module_utils import _safepath as sp
from ansible_collections.detached.jobs.plugins.module_utils import _tmpdirs
from ansible_collections.detached.jobs.plugins.module_utils._ids import (
    DEFAULT_ASYNC_DIR,
    JID_PATTERN,
    TAIL_BYTES,
    CorruptJob,
    InvalidJobId,
    JobError,
    JobNotFound,
    UnsafePath,
    is_finished,
    is_jid,
    is_name,
    validate_jid,
    validate_name,
)

TYPE_CHECKING = False  # typing is not imported at run time: the supervisor stays lean
if TYPE_CHECKING:
    import typing as t

    Record = t.Dict[str, t.Any]

# '<jid>.<anything>': a job's extra files; '.<jid or name>.<pid>.<ns>.tmp': an atomic write's temporary file.
_EXTRA_RE = re.compile(r"\A(" + JID_PATTERN + r")\.[^/]+\Z")
_TMP_RE = re.compile(r"\A\.[^/]+\.[0-9]+\.[0-9]+\.tmp\Z")

# Files that belong to a job: <jid>.<suffix>
SUFFIXES = ("payload", "args", "pyz", "stdout", "stderr", "kill")
# '<jid>.kill': why a kill was asked for, one short line ("because the wait timed out after 30s
# (wait on_timeout: kill)"), left by the kill before it signals the supervisor, which puts it in the
# job's record; without it, the record says "on request".
_KILL_REASON_MAX = 512
NAMES_DIR = ".names"
LOCK_FILE = ".lock"
_MAX_STATUS_BYTES = 256 * 1024 * 1024


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
        safe (see _safepath.dir_problem); whether it exists."""
        st, why = sp.dir_problem(self.path, "job directory")
        if why is not None:
            raise self._refuse(why)
        if st is None:
            return False
        # The write bits a status file in it must not have: ansible-core's own status files follow
        # the umask (0664 under umask 002), harmless where the group cannot enter the directory.
        self._status_bits = 0o002 | (0o020 if st.st_mode & 0o010 else 0)
        return True

    def open_file(self, path: str, what: str, others: int = 0o022) -> int | None:
        """A read-only descriptor of a file of the job directory, or None when it is missing (see
        _safepath.open_private: never a symlink, never a fifo, only a file of this user without the
        write bits others). The collection writes every file 0600."""
        return sp.open_private(path, what, others)

    def ensure(self) -> None:
        """Create the directory 0700 where it is missing. An existing one is used as it is when it is
        safe (see check), and refused, never changed, when it is not."""
        if self.check():
            return
        sp.make_dirs(self.path, "job directory")  # below directories found safe (check)
        self.check()

    def private_subdir(self, name: str, create: bool) -> str | None:
        """A directory of the job directory (.names, .slots, a slot's): its path, once checked
        private, or None when it is missing and not to be created."""
        return sp.private_dir(os.path.join(self.path, name), create)

    def job_path(self, jid: str) -> str:
        return os.path.join(self.path, validate_jid(jid))

    def extra_path(self, jid: str, suffix: str) -> str:
        if suffix not in SUFFIXES:
            raise ValueError(f"unknown job file suffix {suffix!r}")
        return f"{self.job_path(jid)}.{suffix}"

    # --- files -----------------------------------------------------------
    def create_private(self, path: str, data: bytes = b"", mode: int = 0o600) -> None:
        """Create a new private file (never following or replacing anything already there)."""
        sp.create_private(path, data, mode)

    def open_output(self, jid: str, suffix: str) -> int:
        path = self.extra_path(jid, suffix)
        try:
            return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        except OSError as ex:
            raise JobError(sp.os_error(f"job {jid}: cannot create output file {path}", ex)) from ex

    def _atomic_write(self, path: str, data: bytes, what: str) -> None:
        # The temporary file is in the job directory itself, where prune finds it if it is left behind.
        sp.atomic_write(path, data, what, tmp_dir=self.path)

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
            raise JobError(sp.os_error(f"job {jid}: cannot read {path}", ex)) from ex
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
            tmpdir = _tmpdirs.recorded_tmpdir(jid, meta) if is_finished(record) else None
        except JobError:
            pass
        removed = []
        # (What a module attempt left in its TMPDIR when its supervisor was killed with kill -9.)
        if tmpdir is not None and _tmpdirs.remove_tmpdir(tmpdir):
            removed.append(tmpdir)
        for path in self.files_of(jid):
            try:
                os.unlink(path)
            except FileNotFoundError:
                continue
            except OSError as ex:
                raise JobError(sp.os_error(f"job {jid}: cannot remove {path}", ex)) from ex
            removed.append(path)
        if isinstance(name, str) and is_name(name):
            try:
                if self.name_get(name) == jid:
                    sp.unlink_quiet(self._name_path(name))
                    removed.append(self._name_path(name))
            except JobError:
                pass
        return removed

    def set_kill_reason(self, jid: str, reason: str) -> None:
        """Leave why jid is being killed (see SUFFIXES); best effort."""
        path = self.extra_path(jid, "kill")
        sp.unlink_quiet(path)
        try:
            self.create_private(path, reason.encode("utf-8", "replace")[:_KILL_REASON_MAX])
        except JobError:
            pass

    def kill_reason(self, jid: str) -> str | None:
        """Why the kill of jid was asked for, as one line, or None."""
        try:
            fd = self.open_file(self.extra_path(jid, "kill"), f"job {jid}")
        except JobError:
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
            sp.unlink_quiet(self.extra_path(jid, suffix))

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
            raise JobError(sp.os_error(f"cannot list job directory {self.path}", ex)) from ex
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
            raise JobError(f"refusing to remove {path}: not a file of the job directory {self.path}")
        try:
            os.unlink(path)
        except FileNotFoundError:
            return False
        except OSError as ex:
            raise JobError(sp.os_error(f"cannot remove {path}", ex)) from ex
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
            raise JobError(sp.os_error(f"cannot list {path}", ex)) from ex
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

    def lock(self) -> sp.Lock:
        """The directory's lock (flock on .lock), held while job names are claimed."""
        return sp.Lock(os.path.join(self.path, LOCK_FILE))

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
