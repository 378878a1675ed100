#!/usr/bin/python
# Copyright (c) detached.jobs contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: prune
short_description: Remove the files of finished detached jobs older than an age
version_added: 1.0.0
description:
  - Removes the finished jobs of the job directory that are older than O(older_than), that is the status
    file and every other file of the job (C(<jid>.*)). Jobs started by the C(async) keyword and by
    Mitogen are pruned too.
  - Running jobs are never removed, whatever the filters, nor V(vanished) jobs whose process still
    runs unsupervised (kill them first with O(detached.jobs.async_status#module:mode=kill)).
    A running job of this collection whose supervisor is gone is recorded as V(vanished) first,
    and then pruned like any finished job.
  - Jobs of the C(async) keyword that never recorded an end stay V(running) for ever (they record no
    process id to check); remove them with O(detached.jobs.async_status#module:mode=cleanup).
  - Entries of the name index that point at no job any more are removed too.
  - Unless O(names) is given, leftover temporary files of interrupted writes, and files of job
    ids that have no status file, go too once they are older than O(older_than) and at least
    10 minutes old (so that a job being launched, or a status being written, is never touched).
options:
  older_than:
    description:
      - Remove jobs that ended at least this long ago.
      - A number of seconds (V(90)) or a number with a unit V(s), V(m), V(h) or V(d)
        (V(30s), V(15m), V(2h), V(7d)). V(0) removes every finished job.
      - The age of a job started by this collection counts from its end; for other jobs (and
        unreadable status files) from the last change of the status file.
    type: raw
    required: true
  states:
    description:
      - Remove only jobs in these states. Running jobs are never removed, so V(running) is not a choice.
      - V(corrupt) selects status files that cannot be read (not JSON, empty, a symlink); they are
        kept unless asked for.
    type: list
    elements: str
    choices: [succeeded, failed, timeout, killed, vanished, corrupt]
    default: [succeeded, failed, timeout, killed, vanished]
  names:
    description:
      - Remove only jobs with one of these names (and only their stale name index entries).
      - Jobs of the C(async) keyword have no name, so they never match.
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - detached.jobs.attributes
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - detached.jobs.job_dir
attributes:
  check_mode:
    support: full
    details: Reports what would be removed (RV(removed), RV(files)) and removes nothing.
seealso:
  - module: detached.jobs.job_info
  - module: detached.jobs.async_status
author:
  - detached.jobs contributors (@detached-jobs)
"""

EXAMPLES = r"""
- name: Remove the files of every job that finished more than a week ago
  detached.jobs.prune:
    older_than: 7d

- name: Forget failed and vanished jobs after two hours
  detached.jobs.prune:
    older_than: 2h
    states: [failed, timeout, vanished]

- name: See what would go, without removing anything
  detached.jobs.prune:
    older_than: 1d
  check_mode: true
  register: would_go

- name: Remove every finished job named nightly-backup
  detached.jobs.prune:
    older_than: 0
    names: [nightly-backup]
"""

RETURN = r"""
removed:
  description: The ids of the jobs whose files were removed (in check mode, would be removed).
  returned: always
  type: list
  elements: str
  sample: [j448219357640.4242]
files:
  description:
    - Every file removed (in check mode, that would be removed) - the jobs' files, stale name
      index entries, and leftovers.
  returned: always
  type: list
  elements: str
  sample: [/home/deploy/.ansible_async/j448219357640.4242, /home/deploy/.ansible_async/j448219357640.4242.stdout]
kept_running:
  description: How many jobs were kept because they are still running (vanished jobs whose process still runs included).
  returned: always
  type: int
  sample: 2
reason:
  description:
    - When the task fails, why, as a fixed word to test instead of the text of C(msg) -
      V(not_found) (no job directory), V(unsafe), V(invalid), V(io) (files that could not be removed) or V(error).
  returned: when the task failed
  type: str
  sample: not_found
  version_added: 1.1.0
async_dir:
  description: The job directory that was pruned.
  returned: success
  type: str
  sample: /home/deploy/.ansible_async
"""
