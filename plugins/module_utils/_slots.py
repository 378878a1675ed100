# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""The slot queues of a job directory (start's slot and slot_limit). Private to detached.jobs.

A slot's queue is '<job directory>/.slots/<slot>/': one ticket file per queued or running job,
'<12-digit sequence number>.<jid>', held locked (flock) by the job's processes for as long as
they live, and '.lock', under which tickets are created and looked at (see docs/architecture.md).
A queued job's supervisor waits for its turn with SlotQueue.wait_turn. The files of the job
directory are _jobstore's; this module only keeps the queues in it. Standard library only, Python 3.8+.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import time

from ansible_collections.detached.jobs.plugins.module_utils import _safepath as sp
from ansible_collections.detached.jobs.plugins.module_utils._ids import JID_PATTERN, KILLED, JobError, UnsafePath, validate_jid, validate_name
from ansible_collections.detached.jobs.plugins.module_utils._jobstore import LOCK_FILE, JobStore
from ansible_collections.detached.jobs.plugins.module_utils._results import QUEUE_TIMEOUT

TYPE_CHECKING = False  # typing is not imported at run time: the supervisor stays lean
if TYPE_CHECKING:
    import typing as t

    Record = t.Dict[str, t.Any]

SLOTS_DIR = ".slots"
# A slot's ticket: '<12-digit sequence number>.<jid>'
_TICKET_RE = re.compile(r"\A[0-9]{12}\." + JID_PATTERN + r"\Z")
# How often a queued job looks at its slot's queue when nothing in it changed (a job ahead may
# have been killed with kill -9, which leaves its ticket behind, unheld), and how long it sleeps
# between looks at the directory's change time (see SlotQueue.wait_turn).
QUEUE_RECHECK = 1.0
QUEUE_TICK = 0.1


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

    def _lock(self) -> sp.Lock:
        return sp.Lock(os.path.join(self.dir, LOCK_FILE))

    def _tickets(self) -> list[str]:
        """Ticket file names, first come first (the sequence number is zero-padded)."""
        try:
            entries = os.listdir(self.dir)
        except OSError as ex:
            raise JobError(sp.os_error(f"slot {self.slot!r}: cannot list {self.dir}", ex)) from ex
        return sorted(e for e in entries if _TICKET_RE.match(e))

    def join(self, jid: str, info: Record) -> SlotTicket:
        """Queue jid: its ticket, created and locked atomically (info is written in it for people who look)."""
        validate_jid(jid)
        self._checked(create=True)
        with self._lock():
            tickets = self._tickets()
            seq = int(tickets[-1].split(".", 1)[0]) + 1 if tickets else 1
            path = os.path.join(self.dir, f"{seq:012d}.{jid}")
            data = json.dumps(dict(info, jid=jid, seq=seq), separators=(",", ":")).encode("ascii") + b"\n"
            fd = sp.atomic_write(path, data, f"slot {self.slot!r}: ticket", hold=True)
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

    def has_room(self, ticket: SlotTicket, limit: int) -> bool:
        """Whether fewer than limit live tickets are ahead of ticket; JobError when it is gone from the queue."""
        ahead = self.ahead(ticket)
        if ahead is None:
            raise JobError(f"slot {self.slot!r}: the job's ticket {ticket.path} is gone from the queue")
        return ahead < limit

    def wait_turn(self, may_run: t.Callable[[], bool], timeout: float, killed: t.Callable[[], bool], sleep: t.Callable[[float], None]) -> str | None:
        """Wait, as a queued job's supervisor does, until may_run() says the job may run: None then, else
        why it never will: KILLED once killed() says so, QUEUE_TIMEOUT once timeout seconds have passed
        (0: no limit). may_run is asked when the queue's directory changed, and every QUEUE_RECHECK
        seconds anyway; sleep(seconds) sleeps between looks (it may return early, on a kill)."""
        deadline = time.monotonic() + timeout if timeout else None
        seen: int | None = -1
        last = 0.0
        while True:
            if killed():
                return KILLED
            now = time.monotonic()
            try:
                changed: int | None = os.stat(self.dir).st_mtime_ns
            except OSError:
                changed = None
            if changed != seen or now - last >= QUEUE_RECHECK:
                seen, last = changed, now
                if may_run():
                    return None
            if deadline is not None and now >= deadline:
                return QUEUE_TIMEOUT
            sleep(QUEUE_TICK if deadline is None else max(0.001, min(QUEUE_TICK, deadline - now)))

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
            fd = os.open(path, sp.READ_FLAGS)
        except FileNotFoundError:
            return False
        except OSError as ex:
            if ex.errno == errno.ELOOP:
                raise UnsafePath(f"{path} is not safe to use: it is a symlink, not a slot ticket") from ex
            return True  # cannot tell: count it, never start one too many
        try:
            # (A ticket that is not this user's own could hold the slot for ever: refused, by name.)
            sp.check_private(path, os.fstat(fd), want_dir=False)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        finally:
            os.close(fd)
        sp.unlink_quiet(path)
        return False

    def leave(self, ticket: SlotTicket) -> None:
        """The job has ended: its ticket goes, and the next in the queue may start."""
        try:
            with self._lock():
                sp.unlink_quiet(ticket.path)
        except JobError:
            sp.unlink_quiet(ticket.path)
        if ticket.fd >= 0:
            os.close(ticket.fd)
            ticket.fd = -1
