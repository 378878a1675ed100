#!/usr/bin/python
# Copyright (c) detached.jobs contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: async_status
short_description: Get the status of a detached job, clean it up, or kill it
version_added: 1.0.0
description:
  - A drop-in replacement for M(ansible.builtin.async_status) that reads jobs started by
    M(detached.jobs.start) and by the C(async) keyword, with the same options and return values,
    so it works in C(until) loops (C(until) with C(result is finished)).
  - A job whose processes are gone (killed with SIGKILL, out of memory, the host rebooted) is
    reported as finished and failed with RV(detached.state=vanished), never as running forever.
  - O(mode=kill) stops a running job and its whole process tree (SIGTERM, then SIGKILL after the
    job's grace period).
  - To wait for several jobs at once, use M(detached.jobs.wait) instead of one C(until) loop per job.
options:
  jid:
    description:
      - The job id, as in RV(detached.jobs.start#module:ansible_job_id) of the task that started it.
    type: str
    required: true
  mode:
    description:
      - V(status) returns the job's status (its result once finished).
      - V(cleanup) removes the job's status file and every other file of the job once it has ended.
        A job that still runs is kept (its output, status and name) and the task fails (kill it first).
      - V(kill) stops the job and its whole process tree, records it as V(killed) and returns the final status.
        Killing a job that already finished changes nothing.
      - With V(kill) the task fails only when the job could not be stopped; the job's own outcome
        is in RV(detached) (C(state) V(killed), or how it ended before) and RV(job_failed).
      - A running job started by ansible-core's C(async) keyword (without keyword mode) or by Mitogen's
        cannot be killed safely (no process start time is recorded), so V(kill) fails with a message that
        says so, with RV(finished=false), and the job goes on. On Linux the same holds for any record
        whose process start time is missing (no signal is sent to a process that cannot be proven to be the job's).
    type: str
    choices: [status, cleanup, kill]
    default: status
  tail:
    description:
      - With O(mode=status), also return the last O(tail) lines of the job's stdout and stderr in RV(tail),
        while it runs (read from its output files) and once it has finished (from its result).
      - Reading opens the output files read-only and never disturbs the job.
      - In module mode a module's output usually comes only with its result (modules capture their
        commands' output), so the tail of a running module job is mostly empty.
      - V(0) returns no tail.
    type: int
    default: 0
    version_added: 1.1.0
  tail_bytes:
    description:
      - The most bytes read from the end of each stream for O(tail); lines longer than that are cut at their start.
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
    details: V(status) reads only; V(cleanup) and V(kill) report what they would do and change nothing.
seealso:
  - module: ansible.builtin.async_status
  - module: detached.jobs.wait
  - module: detached.jobs.start
author:
  - detached.jobs contributors (@detached-jobs)
"""

EXAMPLES = r"""
- name: Start a long task and move on
  detached.jobs.start:
    cmd: sleep 5
  register: sleeper

- name: What is it printing right now? (the last 5 lines of stdout and stderr, from their last 2 KiB)
  detached.jobs.async_status:
    jid: "{{ sleeper.ansible_job_id }}"
    tail: 5
    tail_bytes: 2048
  register: now_printing

- name: Check on it until it has finished
  detached.jobs.async_status:
    jid: "{{ sleeper.ansible_job_id }}"
  register: job
  until: job is finished
  retries: 30
  delay: 1

- name: Remove its files
  detached.jobs.async_status:
    jid: "{{ sleeper.ansible_job_id }}"
    mode: cleanup

- name: Start another one and kill it
  detached.jobs.start:
    cmd: sleep 600
  register: long_one

- name: Kill it with everything it started
  detached.jobs.async_status:
    jid: "{{ long_one.ansible_job_id }}"
    mode: kill
"""

RETURN = r"""
tail:
  description:
    - With O(tail), the end of the job's output.
    - C(stdout) and C(stderr) are lists of lines (bytes that are not UTF-8 replaced, a last line
      without newline included, a carriage return ends a line); C(stdout_bytes) and C(stderr_bytes)
      are the sizes of the streams; C(last_line) is the last line of the stream written last;
      C(source) is V(files) (the job's output files), V(result) (a finished job's result) or V(none).
  returned: when O(tail) is more than 0
  type: dict
  sample: {"stdout": ["step 3 of 6", "step 4 of 6"], "stderr": [], "stdout_bytes": 48, "stderr_bytes": 0, "last_line": "step 4 of 6", "source": "files"}
  version_added: 1.1.0
reason:
  description:
    - When the task fails, why, as a fixed word to test instead of the text of C(msg) -
      V(not_found) (no status file), V(corrupt), V(unsafe), V(invalid) (a bad job id), V(not_killable),
      V(still_running) (a cleanup of a running job) or V(error).
  returned: when the task failed
  type: str
  sample: not_found
  version_added: 1.1.0
job_failed:
  description: With O(mode=kill), whether the job itself ended as failed (a killed job did). The task itself fails only when the kill did not work.
  returned: when O(mode=kill)
  type: bool
ansible_job_id:
  description: The job id.
  returned: always
  type: str
  sample: j448219357640.4242
started:
  description: Whether the job has started.
  returned: always
  type: bool
  sample: true
finished:
  description: Whether the job has finished (succeeded, failed, timed out, was killed or vanished).
  returned: always
  type: bool
  sample: true
results_file:
  description: Path of the job's status file.
  returned: unless O(mode=cleanup)
  type: str
  sample: /home/deploy/.ansible_async/j448219357640.4242
erased:
  description: Path of the status file that was removed.
  returned: when O(mode=cleanup)
  type: str
removed:
  description: Every file of the job that was removed.
  returned: when O(mode=cleanup)
  type: list
  elements: str
stdout:
  description: The job's standard output (command jobs, or modules that return it).
  returned: always
  type: str
stderr:
  description: The job's standard error.
  returned: always
  type: str
rc:
  description: Exit code of a command job once finished (modules that return C(rc) too).
  returned: when finished and known
  type: int
detached:
  description: The collection's metadata about the job (see the collection's docs/architecture.md).
  returned: unless O(mode=cleanup)
  type: dict
  contains:
    state:
      description: One of V(running), V(succeeded), V(failed), V(timeout), V(killed), V(vanished).
      type: str
      returned: always
      sample: succeeded
    name:
      description: The job's name.
      type: str
      returned: always
    pid:
      description: Process id of the job's supervisor.
      type: int
      returned: for jobs started by this collection
    elapsed:
      description: Seconds the job ran.
      type: float
      returned: when finished
"""
