# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""A module attempt's temporary directory, outside the job directory. Private to detached.jobs.

Each attempt of a module job gets a directory of its own, '<TMPDIR>/detached.jobs-<jid>-<attempt>'
(its TMPDIR), named in the job's running record as "tmpdir" while the attempt runs: the supervisor
makes it and removes it when the attempt ends; cleanup (_jobstore.JobStore.remove) and prune
remove one that a supervisor killed with kill -9 left behind. Only a directory of that job's
name and of this user, never a symlink, is ever removed. Standard library only, Python 3.8+.
"""

from __future__ import annotations

import os
import re

from ansible_collections.detached.jobs.plugins.module_utils._safepath import private_problem

TMPDIR_PREFIX = "detached.jobs-"


def tmpdir_name(jid: str, attempt: int) -> str:
    return f"{TMPDIR_PREFIX}{jid}-{attempt}"


def make_tmpdir(jid: str, attempt: int) -> str | None:
    """A new private directory for a module attempt's temporary files, in the temporary directory
    the job would have used (TMPDIR, else /tmp); None (the job then runs with the environment as it
    is) when it cannot be made or the name is taken."""
    base = os.environ.get("TMPDIR") or "/tmp"
    path = os.path.join(os.path.abspath(base), tmpdir_name(jid, attempt))
    try:
        os.mkdir(path, 0o700)
    except OSError:
        return None
    return path


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
    # (Whatever its mode: the module may have changed it; the name and the owner make it the job's.)
    return path if private_problem(st, want_dir=True, others=0) is None else None


def remove_tmpdir(path: str) -> bool:
    """Remove a job's module temporary directory (see recorded_tmpdir); whether it is gone."""
    import shutil  # only here: the supervisor, which imports this module, stays small while its job runs

    shutil.rmtree(path, ignore_errors=True)
    return not os.path.lexists(path)
