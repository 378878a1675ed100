# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""Whether a file or directory is safe to use and ours, and the one way the host code writes a file. Private to detached.jobs.

The rules every file of the collection on a host goes through: a file or directory is used only
when it is private to this user (of the kind wanted, never a symlink, owned by the effective user,
writable by nobody else) below directories that nobody else can change (OpenSSH's StrictModes rule);
a file is written whole or not at all (a temporary file, written, fsync-ed, renamed over it).
The job directory (_jobstore), the slot queues (_slots) and the supervisor's zip cache (_control)
all use them. Standard library only, Python 3.8+.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import time

from ansible_collections.detached.jobs.plugins.module_utils._ids import JobError, UnsafePath

# Flags of every descriptor the collection opens to read a file it checks: never a symlink, never
# blocking on a fifo, never inherited by a process it starts.
READ_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
# How long a wait for a lock (the job directory's, a slot's) may take before it fails. A start
# holds the directory's lock while its jobs are launched (each supervisor has 60 s to report).
LOCK_WAIT = 120.0
_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISREG, "a regular file"), (stat.S_ISLNK, "a symlink"), (stat.S_ISFIFO, "a fifo"), (stat.S_ISSOCK, "a socket"))


def kind_of(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "a device")


def os_error(what: str, ex: OSError) -> str:
    return f"{what}: {ex.strerror or ex}"


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


def private_dir(path: str, create: bool) -> str | None:
    """path, once checked to be a directory private to this user (UnsafePath if not), made 0700
    when it is missing and create; None when it is missing and not to be created."""
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
            raise JobError(os_error(f"cannot create {path}", ex)) from ex
        st = os.lstat(path)
    check_private(path, st, want_dir=True)
    return path


def open_private(path: str, what: str, others: int = 0o022) -> int | None:
    """A read-only descriptor of a file, or None when it is missing.

    Never follows a symlink nor blocks on a fifo; a file that is not a regular file of this user,
    or that has one of the write bits others (by default: group or world writable), is refused
    (UnsafePath, naming what and path)."""
    try:
        fd = os.open(path, READ_FLAGS)
    except FileNotFoundError:
        return None
    except OSError as ex:
        if ex.errno == errno.ELOOP:
            raise UnsafePath(f"{what}: {path} is not safe to use: it is a symlink; refusing to follow it") from ex
        raise JobError(os_error(f"{what}: cannot open {path}", ex)) from ex
    why = private_problem(os.fstat(fd), want_dir=False, others=others)
    if why is not None:
        os.close(fd)
        raise UnsafePath(f"{what}: {path} is not safe to use: {why}")
    return fd


def make_dirs(path: str, what: str) -> None:
    """Create the directory path and those missing above it, each 0700 whatever the umask (call
    once the existing ones are found safe: see dir_problem)."""
    missing = [path]
    while not os.path.lexists(os.path.dirname(missing[-1])):
        missing.append(os.path.dirname(missing[-1]))
    for each in reversed(missing):
        try:
            os.mkdir(each, 0o700)
            os.chmod(each, 0o700)
        except FileExistsError:
            pass  # another process made it at the same moment
        except OSError as ex:
            raise JobError(os_error(f"cannot create {what} {path}", ex)) from ex


def dir_problem(path: str, what: str) -> tuple[os.stat_result | None, str | None]:
    """A directory to keep private files in: (its lstat, None when it is missing; why it is not
    safe to use, or None). It must be private (never a symlink, see private_problem), and so must
    every directory above it be (see ancestor_problem)."""
    why = ancestor_problem(path)
    if why is not None:
        return None, why
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None, None
    except OSError as ex:
        raise JobError(os_error(f"cannot read {what} {path}", ex)) from ex
    return st, "it is a symlink" if stat.S_ISLNK(st.st_mode) else private_problem(st, want_dir=True)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def unlink_quiet(path: str) -> None:
    """Remove a file if it is there; nothing is said when it cannot be."""
    try:
        os.unlink(path)
    except OSError:
        pass


def create_private(path: str, data: bytes = b"", mode: int = 0o600) -> None:
    """Create a new private file holding data (never following or replacing anything already there)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), mode)
    except OSError as ex:
        raise JobError(os_error(f"cannot create {path}", ex)) from ex
    try:
        write_all(fd, data)
    except OSError as ex:
        os.close(fd)
        unlink_quiet(path)
        raise JobError(os_error(f"cannot write {path}", ex)) from ex
    os.close(fd)


def atomic_write(path: str, data: bytes, what: str, tmp_dir: str | None = None, hold: bool = False) -> int:
    """Replace path with data, whole or not at all: a new private file (0600) in tmp_dir (by default
    path's directory), '.<name>.<pid>.<ns>.tmp', written, fsync-ed and renamed over path; the old
    content survives any failure (JobError, naming what and path) and no temporary file is left.

    hold: the file stays open and locked (flock, taken before it appears at path) and its
    descriptor is returned (a slot's ticket); else -1.
    """
    name = os.path.basename(path)
    tmp = os.path.join(os.path.dirname(path) if tmp_dir is None else tmp_dir, f".{name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
    flags = (os.O_RDWR if hold else os.O_WRONLY) | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(tmp, flags, 0o600)
    except OSError as ex:
        raise JobError(os_error(f"{what}: cannot create {tmp}", ex)) from ex
    try:
        if hold:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        write_all(fd, data)
        os.fsync(fd)
        os.rename(tmp, path)
    except OSError as ex:
        os.close(fd)
        unlink_quiet(tmp)
        raise JobError(os_error(f"{what}: cannot write {path}", ex)) from ex
    if hold:
        return fd
    os.close(fd)
    return -1


class Lock:
    """flock on a lock file (the job directory's .lock, a slot's), private to this user, held while
    job names are claimed or a slot's queue is read; a wait for it fails after LOCK_WAIT seconds,
    naming the lock."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = -1

    def __enter__(self) -> Lock:
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            self.fd = os.open(self.path, flags, 0o600)
            check_private(self.path, os.fstat(self.fd), want_dir=False)
            self._wait()
        except (OSError, JobError) as ex:
            if self.fd >= 0:
                os.close(self.fd)
                self.fd = -1
            if isinstance(ex, JobError):
                raise
            if ex.errno == errno.ELOOP:
                raise UnsafePath(f"{self.path} is not safe to use: it is a symlink; refusing to follow it") from ex
            raise JobError(os_error(f"cannot lock {self.path}", ex)) from ex
        return self

    def _wait(self) -> None:
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise JobError(
                        f"cannot lock {self.path}: another process has held it for {LOCK_WAIT:g} s (a start or prune that is "
                        f"still running, or one that hangs: see fuser -v {self.path})"
                    ) from None
                time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        if self.fd >= 0:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = -1
