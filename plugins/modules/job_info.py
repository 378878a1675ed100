#!/usr/bin/python
# Copyright (c) detached.jobs contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: job_info
short_description: List the detached jobs of a host
version_added: 1.0.0
description:
  - Lists the jobs in the job directory, those started by M(detached.jobs.start) and those
    started by the C(async) keyword or by Mitogen, oldest first, with a short summary of each.
  - Filters select jobs by name, state, age or job id; all given filters must match.
  - Each running job started by this collection is checked for liveness. A job whose supervisor
    is gone (killed, out of memory, the host rebooted) is reported as V(vanished), and this verdict
    is written to its status file, as M(detached.jobs.async_status) does, so that every reader
    (M(ansible.builtin.async_status) included) agrees. That is bookkeeping, so the task still
    reports no change; in check mode nothing is written.
  - A status file that cannot be read (not JSON, empty, a symlink) is listed with
    RV(jobs[].state=corrupt) and an RV(jobs[].error) naming the file; it does not fail the task.
options:
  names:
    description:
      - Only jobs with one of these names (the O(detached.jobs.start#module:name) they were started with).
      - Jobs of the C(async) keyword have no name, so they never match.
    type: list
    elements: str
    default: []
  states:
    description:
      - Only jobs in one of these states.
    type: list
    elements: str
    choices: [running, queued, succeeded, failed, timeout, killed, vanished, corrupt]
    default: []
  jids:
    description:
      - Only these job ids.
    type: list
    elements: str
    default: []
  older_than:
    description:
      - Only jobs at least this old.
      - An age is a number of seconds (V(90)) or a number with a unit V(s), V(m), V(h) or V(d)
        (V(30s), V(15m), V(2h), V(7d)).
      - The age of a job started by this collection counts from its start; for other jobs (and
        unreadable status files) from the last change of the status file.
    type: raw
  newer_than:
    description:
      - Only jobs younger than this age (same syntax as O(older_than)).
    type: raw
  details:
    description:
      - Add each job's full status (its result once finished, as M(detached.jobs.async_status)
        returns it) as RV(jobs[].record). Off by default, as results can be large.
    type: bool
    default: false
  tail:
    description:
      - Add the last O(tail) lines of each job's stdout and stderr as RV(jobs[].tail) (see
        O(detached.jobs.async_status#module:tail)); V(0) adds none.
    type: int
    default: 0
    version_added: 1.1.0
  tail_bytes:
    description:
      - The most bytes read from the end of each stream for O(tail).
    type: int
    default: 4096
    version_added: 1.1.0
extends_documentation_fragment:
  - detached.jobs.attributes
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - detached.jobs.job_dir
attributes:
  check_mode:
    support: full
    details: Lists the same jobs; a vanished job is reported but not recorded as such.
seealso:
  - module: detached.jobs.async_status
  - module: detached.jobs.prune
  - module: detached.jobs.wait
author:
  - detached.jobs contributors (@detached-jobs)
"""

EXAMPLES = r"""
- name: List every job of the host
  detached.jobs.job_info:
  register: all_jobs

- name: Show what is still running
  ansible.builtin.debug:
    msg: "{{ all_jobs.jobs | selectattr('state', 'eq', 'running') | map(attribute='name') | list }}"

- name: Jobs that failed, timed out or vanished in the last day
  detached.jobs.job_info:
    states: [failed, timeout, vanished]
    newer_than: 1d
  register: broken

- name: Jobs running for more than two hours, with the last 3 lines of their output (at most 1 KiB of each stream)
  detached.jobs.job_info:
    states: [running]
    older_than: 2h
    tail: 3
    tail_bytes: 1024
  register: long_running

- name: The jobs started earlier, by id
  detached.jobs.job_info:
    jids: "{{ broken.jobs | map(attribute='ansible_job_id') | list }}"

- name: The migration job with its full result
  detached.jobs.job_info:
    names: [migration]
    details: true
  register: migration

- name: Print the migration's output
  ansible.builtin.debug:
    msg: "{{ migration.jobs[-1].record.stdout | default('') }}"
  when: migration.count > 0
"""

RETURN = r"""
jobs:
  description:
    - The jobs that match every filter, oldest first (by start time; for jobs of the C(async)
      keyword by the last change of their status file).
  returned: always
  type: list
  elements: dict
  contains:
    ansible_job_id:
      description: The job id.
      type: str
      returned: always
      sample: j448219357640.4242
    name:
      description: The job's name, or V(null).
      type: str
      returned: always
      sample: migration
    state:
      description:
        - One of V(running), V(queued) (waiting for its slot, see O(detached.jobs.start#module:slot)),
          V(succeeded), V(failed), V(timeout), V(killed), V(vanished), or V(corrupt) when the status file cannot be read.
      type: str
      returned: always
      sample: succeeded
    finished:
      description: Whether the job has finished; V(null) when the status file cannot be read.
      type: bool
      returned: always
    module:
      description: The module the job runs, or V(null) (command jobs, jobs of the C(async) keyword).
      type: str
      returned: always
      sample: ansible.builtin.command
    cmd:
      description: The argv of a command job, else V(null).
      type: list
      elements: str
      returned: always
      sample: [sleep, "60"]
    started_at:
      description: When the job started (epoch seconds); V(null) while it is queued and for jobs not started by this collection.
      type: float
      returned: always
      sample: 1732300000.123
    ended_at:
      description: When the job ended (epoch seconds); V(null) while running and for jobs not started by this collection.
      type: float
      returned: always
    elapsed:
      description: Seconds the job ran, once finished.
      type: float
      returned: always
    rc:
      description: The exit code of the job's process (or the module's C(rc)), once known.
      type: int
      returned: always
    pid:
      description: The process id of the job's supervisor; V(null) for jobs not started by this collection.
      type: int
      returned: always
    slot:
      description: The job's slot (O(detached.jobs.start#module:slot)), or V(null).
      type: str
      returned: always
      version_added: 1.1.0
    queued_at:
      description: When a job with a slot was queued (epoch seconds), else V(null).
      type: float
      returned: always
      version_added: 1.1.0
    attempt:
      description: With O(detached.jobs.start#module:retries), the number of the current (or last) attempt, else V(null).
      type: int
      returned: always
      version_added: 1.1.0
    tail:
      description:
        - With O(tail), the end of the job's output (see RV(detached.jobs.async_status#module:tail)).
        - When the job's output files cannot be read, only RV(jobs[].tail.error) and RV(jobs[].tail.reason) instead.
      type: dict
      returned: when O(tail) is more than 0
      version_added: 1.1.0
      contains:
        error:
          description: Why the job's output files cannot be read; it names the file.
          type: str
          returned: when the output files cannot be read
          version_added: 1.2.0
        reason:
          description:
            - Beside RV(jobs[].tail.error), why, as a fixed word to test instead of the text of the error -
              V(unsafe) (a symlink, not a regular file, or another user's file) or V(error).
          type: str
          returned: when the output files cannot be read
          sample: unsafe
          version_added: 1.2.0
    results_file:
      description: Path of the job's status file.
      type: str
      returned: always
      sample: /home/deploy/.ansible_async/j448219357640.4242
    files:
      description: Every file of the job (the status file first, then C(<jid>.*)).
      type: list
      elements: str
      returned: always
    size:
      description: Total size of the job's files in bytes.
      type: int
      returned: always
      sample: 2048
    updated_at:
      description: When the status file last changed (epoch seconds).
      type: float
      returned: always
    age:
      description: Seconds since the job started (or since its status file last changed, see O(older_than)).
      type: float
      returned: always
      sample: 42.5
    foreign:
      description: Whether the job was started by something else than this collection (the C(async) keyword, Mitogen).
      type: bool
      returned: always
    msg:
      description: Why the job did not succeed (at most 500 characters).
      type: str
      returned: when the job failed, timed out, was killed or vanished and said why
    error:
      description: Why the status file cannot be read; it names the file.
      type: str
      returned: when RV(jobs[].state=corrupt)
      sample: "job j1.1: status file /root/.ansible_async/j1.1 is not valid JSON (...)"
    reason:
      description:
        - Beside RV(jobs[].error), why the status file cannot be read, as a fixed word to test instead of the text of the
          error - V(corrupt) (not JSON, empty, not an object), V(unsafe) (a symlink, not a regular file, or another user's
          file) or V(error).
      type: str
      returned: when RV(jobs[].state=corrupt)
      sample: corrupt
      version_added: 1.2.0
    record:
      description: The job's full status, as M(detached.jobs.async_status) returns it.
      type: dict
      returned: when O(details=true) and the status file can be read
count:
  description: The number of jobs in RV(jobs).
  returned: always
  type: int
  sample: 3
reason:
  description:
    - When the task fails, why, as a fixed word to test instead of the text of C(msg) -
      V(not_found) (no job directory), V(unsafe), V(invalid) or V(error).
  returned: when the task failed
  type: str
  sample: not_found
  version_added: 1.1.0
async_dir:
  description: The job directory that was listed.
  returned: success
  type: str
  sample: /home/deploy/.ansible_async
"""
