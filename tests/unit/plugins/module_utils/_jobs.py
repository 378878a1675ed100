# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""Helpers the unit tests share: waiting for a real job to end."""

from __future__ import annotations

import os
import time

from ansible_collections.detached.jobs.plugins.module_utils import _control as ctl
from ansible_collections.detached.jobs.plugins.module_utils import _ids as ids
from ansible_collections.detached.jobs.plugins.module_utils import _jobstore as js
from ansible_collections.detached.jobs.plugins.module_utils import _process as proc


def wait_done(store: js.JobStore, jid: str, timeout: float = 120.0) -> dict:
    """The job's final record, once its supervisor has exited too (the bound is for a starved machine: it returns as soon as it is so)."""
    deadline = time.monotonic() + timeout
    while True:
        view = ctl.status(store, jid)
        if view["finished"]:
            # The supervisor removes the job's temporary files just after it records the result: let it finish.
            meta = view["detached"]
            while proc.is_alive(meta.get("pid"), meta.get("pid_start")):
                assert time.monotonic() < deadline, f"the supervisor of {jid} did not exit"
                time.sleep(0.01)
            return view
        assert time.monotonic() < deadline, f"job {jid} still running: {view}"
        time.sleep(0.02)


def status_jids(store: js.JobStore) -> list[str]:
    """The job ids that have a status file in the store's directory (any engine's), sorted."""
    try:
        return sorted(e for e in os.listdir(store.path) if ids.is_jid(e))
    except FileNotFoundError:
        return []


def kill_leftovers(store: js.JobStore) -> None:
    """Never leave a job running: kill whatever is still going (not a record made up from this process)."""
    for jid in status_jids(store):
        try:
            view = ctl.status(store, jid, persist=False)
            if not view["finished"] and view["detached"].get("pid") != os.getpid():
                ctl.kill(store, jid, wait=5)
        except ids.JobError:
            pass
