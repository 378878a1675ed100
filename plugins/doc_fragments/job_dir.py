# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors

from __future__ import annotations


class ModuleDocFragment:
    # For every plugin that reads or writes jobs in the job directory.
    DOCUMENTATION = r"""
options: {}
notes:
  - Jobs live in the job directory of the user the task runs as, by default C(~/.ansible_async)
    (the shell plugin's C(async_dir) option, as for the C(async) keyword). A directory the collection
    creates is private (mode 0700) and every job file is 0600.
  - The job directory must be the user's own and writable by no one else, and every directory above it
    must belong to that user or root and be writable by no one else unless it has the sticky bit (as
    C(/tmp)); a symlink, a shared directory such as C(/tmp/.ansible_async), or one of another user
    (C(become) with a C(HOME) that stays the connecting user's) is refused with a message that says why.
    The collection never changes the mode of a directory it did not create.
  - A job started with C(become) is found only by tasks that use the same C(become) and C(become_user).
    A job that is not found is reported as removed (cleanup, prune) or never started on this host;
    M(detached.jobs.wait) names C(become) only when the job was started in another job directory.
  - Jobs started by ansible-core's C(async) keyword and by Mitogen are read too; they record no
    process id, so they cannot be killed and are never reported as vanished. The exception is keyword
    mode (the collection's C(keyword/) directory first in the module search path, see the collection's
    C(docs/keyword.md)), where C(async:) tasks run on the collection's own supervisor, so their jobs
    can be killed and are reported as vanished like those of M(detached.jobs.start).
"""
