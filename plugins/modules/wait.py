#!/usr/bin/python
# Copyright (c) detached.jobs contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: wait
short_description: Wait for many detached jobs at once
version_added: 1.0.0
description:
  - Waits in one task for any number of jobs started by M(detached.jobs.start) or by the
    C(async) keyword, and returns their results in the order they were given.
  - The host side long-polls; one remote call checks every job of the host and returns within a
    fraction of a second of the moment the wait has its answer (every job has ended; with
    O(fail_fast), one did not succeed; with O(return_when=any), one ended), or after O(poll)
    seconds. So the task notices the end of the jobs within a second, with one remote call per
    host per round, a round being at most O(poll) seconds, whatever the number of jobs - instead of
    one C(async_status) call per job per retry.
  - Progress is shown as rounds end (each job that ended in it), and while jobs run each running
    job's last line of output (at most once every O(progress_interval) seconds). A connection that drops while waiting is
    retried until O(timeout); the jobs keep running meanwhile.
  - Jobs queued for a host-side slot (O(detached.jobs.start#module:slot)) are waited for like running ones.
  - Finished jobs are never killed or removed unless O(cleanup) or O(on_timeout=kill) says so.
options:
  jobs:
    description:
      - The jobs to wait for. Each element may be a job id, the registered result of
        M(detached.jobs.start) (one job or a batch with RV(detached.jobs.start#module:jobs)), the
        registered result of a task with the C(async) keyword, the registered result of a loop of
        such tasks (with C(results)), or a list of any of these.
      - Loop items that were skipped are ignored.
    type: list
    elements: raw
    default: []
  names:
    description:
      - Names of jobs to wait for (the newest job of each name).
    type: list
    elements: str
    default: []
  timeout:
    description:
      - How long to wait in total, in seconds. V(0) waits as long as it takes; a dropped
        connection is then retried for up to 10 minutes before the host counts as unreachable.
    type: int
    default: 3600
  poll:
    description:
      - The longest a single remote call blocks, in seconds. Lower it when a firewall cuts idle
        connections quickly. It does not delay noticing a finished job. At least V(1); V(0) is
        an error. A round returns earlier when progress lines are due (see O(progress_interval)).
    type: int
    default: 15
  fail_fast:
    description:
      - Stop waiting as soon as one job did not succeed. The other jobs are left running
        (or killed with O(on_timeout=kill)).
    type: bool
    default: false
  on_timeout:
    description:
      - What to do with the jobs still running when O(timeout) is reached (or O(fail_fast) stops the wait).
      - V(fail) fails the task and leaves them running; V(kill) kills them (with their process trees) and fails the task.
        A killed job's record says why (the wait timed out after O(timeout) seconds, or O(fail_fast) stopped it).
    type: str
    choices: [fail, kill]
    default: fail
  cleanup:
    description:
      - Remove the files of every job that finished, after its result was collected.
        Jobs still running are never removed.
    type: bool
    default: false
  return_when:
    description:
      - When the task returns.
      - V(all) waits until every job has ended (or O(timeout) is reached).
      - V(any) returns as soon as at least one job has ended (or cannot be found); the jobs still
        running are reported with RV(jobs[].finished=false) and RV(jobs[].detached.state=running),
        are not counted as problems, and are neither killed nor removed. Call the task again with
        them to go on waiting. This lets a playbook refill a pool of workers the moment one
        ends (the P(detached.jobs.parallel#role) role does this).
      - O(timeout), O(fail_fast) and O(on_timeout) apply as with V(all); O(timeout) is reached only
        when no job ended before it.
    type: str
    choices: [all, any]
    default: all
    version_added: 1.0.0
  progress_interval:
    description:
      - Show the last line of output of each running job (or that it is queued) at most once every
        this many seconds, when it changed, so that a long wait is not silent. The lines shown are
        also returned in RV(progress). V(0) shows none.
      - They are read in the same remote call as the round's check; a round returns when lines are
        due, so they come every this many seconds (plus a round trip) while jobs run. Below O(poll),
        this makes the wait's remote calls this often.
    type: int
    default: 10
    version_added: 1.1.0
extends_documentation_fragment:
  - detached.jobs.attributes
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - detached.jobs.job_dir
attributes:
  check_mode:
    support: full
    details:
      - Reads the jobs' status once and reports it; waits, kills and removes nothing.
      - Jobs still running are reported as running, not as problems.
      - The results of check-mode M(detached.jobs.start) tasks are accepted; the jobs they would
        have started are left out (with only those, the task reports nothing to wait for and succeeds).
notes:
  - Jobs are labelled in the progress lines, the messages and the C(label) of each of RV(jobs) by the
    C(loop_control.label) of the M(detached.jobs.start) loop that started them (the start returns it
    as RV(detached.jobs.start#module:loop_label), as ansible-core keeps its own copy out of what C(register) keeps),
    else by the job's O(detached.jobs.start#module:name), else, for the registered results of a loop, by a
    short form of the loop item (see RV(jobs)). The jobs of an C(async:) loop have no C(loop_control.label)
    to show (ansible-core keeps none in their results); give them a labelled start loop, or name them (an example below).
seealso:
  - module: detached.jobs.start
  - module: detached.jobs.async_status
author:
  - detached.jobs contributors (@detached-jobs)
"""

EXAMPLES = r"""
- name: Start three downloads and a compile at once
  detached.jobs.start:
    jobs:
      - cmd: sleep 2
        name: download-a
      - cmd: sleep 3
        name: download-b
      - argv: [sh, -c, "sleep 1; echo compiled"]
        name: compile
  register: started

- name: Return as soon as one of them ends (the others keep running)
  detached.jobs.wait:
    jobs: "{{ started }}"
    return_when: any
  register: first

- name: Stop at the first job that fails and kill the others; each remote call blocks 5 s at most
  detached.jobs.wait:
    jobs: "{{ started }}"
    fail_fast: true
    on_timeout: kill
    poll: 5
    progress_interval: 30
    timeout: 600

- name: Wait for jobs by name, kill them if they take too long
  detached.jobs.wait:
    names: [download-a, download-b]
    timeout: 60
    on_timeout: kill

- name: Wait for all of them in one task, and remove their files
  detached.jobs.wait:
    jobs: "{{ started }}"
    timeout: 600
    cleanup: true
  register: done

- name: Show what the compile printed
  ansible.builtin.debug:
    msg: "{{ done.jobs[2].stdout }}"

- name: Back up two databases; each job's name, made from the loop item, labels it in the wait
  detached.jobs.start:
    argv: [pg_dump, --file, "/var/backups/{{ item.db }}.sql", "{{ item.db }}"]
    name: "backup-{{ item.db }}"
  loop:
    - {db: orders, retention: 7}
    - {db: users, retention: 30}
  register: backups

- name: Wait for the backups (progress lines say "job ... (backup-orders) succeeded")
  detached.jobs.wait:
    jobs: "{{ backups }}"
"""

RETURN = r"""
jobs:
  description:
    - One entry per job, in the order given (O(jobs) first, then O(names)).
    - A finished job's entry is its full result (like M(detached.jobs.async_status) returns it); a
      job still running when the wait ended has RV(jobs[].finished=false).
    - Each entry has RV(jobs[].detached.state), and a C(label) when the job has one - the C(loop_control.label)
      of the start loop that started it, else the job's O(detached.jobs.start#module:name), else for loop results
      the loop item's C(name) (or C(label), C(cmd), C(module)), else its plain values as C(key=value, ...), or the
      item itself when it is a plain value, shortened to 60 characters; never a whole mapping. A list item, or a
      mapping with nothing plain in it, gives no label (the job id says which job).
  returned: always
  type: list
  elements: dict
  contains:
    ansible_job_id:
      description: The job id.
      returned: always
      type: str
    finished:
      description: Whether the job had finished when the wait ended.
      returned: always
      type: bool
    failed:
      description: Whether the job did not succeed.
      returned: when the job finished
      type: bool
    reason:
      description:
        - For a job that could not be read (RV(jobs[].detached.state=missing)), why, as a fixed word to test instead
          of the message's text - V(not_found) (no status file, or a name that names no job), V(corrupt), V(unsafe),
          V(invalid) (a bad job id or name), V(not_killable), V(still_running) or V(error).
      returned: when the job could not be read
      type: str
      sample: not_found
      version_added: 1.1.0
    detached:
      description: The collection's metadata about the job.
      returned: always
      type: dict
      contains:
        state:
          description: V(succeeded), V(failed), V(timeout), V(killed), V(vanished), V(running) or V(missing).
          returned: always
          type: str
counts:
  description: How many jobs ended in each state (V(succeeded), V(failed), V(timeout), V(killed), V(vanished), V(running), V(missing)).
  returned: always
  type: dict
  sample: {succeeded: 3, failed: 1}
ansible_job_ids:
  description: The job ids waited for, in order.
  returned: always
  type: list
  elements: str
unfinished:
  description:
    - The ids of the jobs that were still running when the wait ended (timeout, O(fail_fast), O(return_when=any),
      check mode), in order; with O(on_timeout=kill) they were killed after that.
  returned: always
  type: list
  elements: str
elapsed:
  description: Seconds the wait took.
  returned: always
  type: float
remote_calls:
  description:
    - How many remote calls the wait made to the host - one per round (each checks every job of the
      host), plus one to kill the jobs left with O(on_timeout=kill) and one for O(cleanup). A call
      whose connection dropped and was made again counts once.
  returned: always
  type: int
  sample: 3
  version_added: 1.1.0
progress:
  description:
    - The progress lines the wait showed for running jobs (the newest 100), each with C(at) (epoch
      seconds, the controller's clock), C(ansible_job_id), C(state) and C(line).
  returned: always
  type: list
  elements: dict
  sample: [{"at": 1796351081.999, "ansible_job_id": "j448219357640.4242", "state": "running", "line": "step 3 of 6"}]
  version_added: 1.1.0
timed_out:
  description: Whether O(timeout) was reached with jobs still running (with O(return_when=any), before any job ended).
  returned: always
  type: bool
msg:
  description: A summary; when the task fails it names every job that did not succeed and why.
  returned: always
  type: str
"""
