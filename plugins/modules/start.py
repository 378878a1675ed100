#!/usr/bin/python
# Copyright (c) detached.jobs contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: start
short_description: Start any module, or a command, as a detached background job
version_added: 1.0.0
description:
  - Runs a module (any module, given by FQCN or short name) or a plain command on the managed host
    as a detached job, and returns as soon as the job is recorded in the job directory. The job
    outlives the connection and the playbook.
  - Each job has one lean supervisor process that enforces the time limit (SIGTERM to the whole
    process tree, then SIGKILL), streams output to files instead of memory, and writes the
    result atomically. On Linux it is a child subreaper, so processes that left the job's
    process group with C(setsid) are stopped too.
  - Use M(detached.jobs.wait) to wait for any number of jobs in one task, and
    M(detached.jobs.async_status) to check, clean up or kill one job. The job files are
    compatible with M(ansible.builtin.async_status).
  - A job can have a O(name); starting a job whose name is already running attaches to it by
    default, so re-running a playbook does not start a second copy.
  - O(jobs) starts a batch of jobs in one round trip.
options:
  module:
    description:
      - The module to run, FQCN or short name. Its arguments go in O(args).
      - The module runs on the host only; modules with an action plugin that does work on the
        controller (such as M(ansible.builtin.copy) or M(ansible.builtin.template)) lose that part,
        and a warning says so. M(ansible.builtin.shell) runs as M(ansible.builtin.command) with a shell.
      - Each attempt of a module job runs with E(TMPDIR) set to a new directory of its own
        (C(detached.jobs-<jid>-<attempt>), mode 0700, in the E(TMPDIR) the job was started with, else
        C(/tmp)), which is removed with everything in it when the attempt ends, also when it was
        stopped by its timeout or a kill. A module cannot clean up after itself when it is killed
        (AnsiballZ leaves its C(ansible_<module>_payload_*) directory behind); this way nothing is
        left. A supervisor killed with C(kill -9) cannot remove it; the job's record names it
        (C(detached.tmpdir)) and cleanup and M(detached.jobs.prune) remove it with the job's files.
        Files that a module's command should keep belong elsewhere. Jobs of O(cmd) and O(argv)
        keep the E(TMPDIR) they were started with.
      - Exactly one of O(module), O(cmd), O(argv) and O(jobs) is required.
    type: str
  args:
    description:
      - Arguments of O(module).
      - Checked at the start against the options (and aliases) the module documents, on the controller;
        an option it does not document fails the task before any job starts, naming it. A module without
        documented options is not checked; it checks its arguments when it runs.
    type: dict
  cmd:
    description:
      - Command mode, a command line split like M(ansible.builtin.command) splits it (no shell).
        The result is shaped like M(ansible.builtin.command)'s (RV(rc), RV(stdout), RV(stderr), RV(start), RV(end), RV(delta), RV(cmd)).
    type: str
  argv:
    description:
      - Command mode, the command as a list of arguments.
    type: list
    elements: str
  chdir:
    description:
      - Directory to run the job in (command mode and modules alike).
    type: path
  name:
    description:
      - A name for the job, so that later tasks, plays and runs can find it (M(detached.jobs.wait)
        O(detached.jobs.wait#module:names), M(detached.jobs.job_info)).
      - 1 to 128 letters, digits and C(_.@+-), starting with a letter or digit.
    type: str
  if_running:
    description:
      - What to do when a job of the same O(name) is already running on the host.
      - V(attach) returns the running job unchanged (RV(attached=true), not changed).
      - V(fail) fails the task. V(restart) kills the running job (and its process tree) and starts a new one.
      - Two tasks starting the same name at the same moment start one job.
    type: str
    choices: [attach, fail, restart]
    default: attach
  timeout:
    description:
      - Hard time limit of the job in seconds; when it is reached the job is stopped with its whole
        process tree and recorded as V(timeout). V(0) means no limit.
      - At most V(315360000) (10 years), as are all the options in seconds (O(grace), O(retry_delay),
        O(retry_max_delay), O(total_timeout), O(queue_timeout), O(poll)). Every number option is checked
        before anything starts; a value out of its bounds, a boolean, V(.inf) or V(.nan) fails the task,
        naming the option and the value.
    type: int
    default: 3600
  grace:
    description:
      - Seconds between SIGTERM and SIGKILL when the job is stopped (time limit or kill).
    type: int
    default: 5
  output_limit:
    description:
      - Bytes of the job's output kept in its result, for each of stdout and stderr. The last
        O(output_limit) bytes are kept (the end of the output, where errors usually are); when a stream was
        longer, its RV(stdout) (or RV(stderr)) starts with a line that says how many bytes were left out and
        names the file next to the job that keeps the whole stream (also in RV(detached.files)), so the
        supervisor's memory stays bounded.
      - A module job whose module printed more than O(output_limit) bytes fails (its JSON result cannot be read
        from a part of it); its raw output is kept in the file named by the result's C(msg).
      - V(1) to V(1073741824) (1 GiB, V(16777216) is 16 MiB); V(0) is refused (leave the option out for the default).
    type: int
    default: 16777216
  retries:
    description:
      - How many times a failed job is run again (rc not 0, or the module's C(failed); a job whose
        process was killed from outside, such as by the OOM killer, counts as failed). The supervisor
        on the host does it, after a delay (O(retry_delay), O(backoff), O(retry_max_delay)); the
        controller need not be there.
      - The result is the last attempt's; RV(detached.attempt) is its number and RV(detached.attempts)
        records every attempt (start, end, rc, signal, state, msg, the last 10 lines of its stdout and stderr).
      - A timeout is not retried (unless O(retry_on_timeout)), a kill never is; O(detached.jobs.async_status#module:mode=kill)
        during a delay ends the job as V(killed) with no more attempts. The job reads V(running) during its delays.
      - At most V(1000).
    type: int
    default: 0
    version_added: 1.1.0
  retry_delay:
    description:
      - Seconds between a failed attempt and the next; multiplied by O(backoff) after each attempt.
      - Needs O(retries).
    type: float
    default: 5
    version_added: 1.1.0
  backoff:
    description:
      - The factor the delay grows by after each attempt (delay number N is O(retry_delay) * O(backoff) ** (N - 1)),
        at most O(retry_max_delay). V(1) keeps it constant. At most V(1000); a delay never grows beyond 10 years.
      - Needs O(retries).
    type: float
    default: 1
    version_added: 1.1.0
  retry_max_delay:
    description:
      - The longest delay between attempts, in seconds; V(0) sets no maximum.
      - Needs O(retries).
    type: float
    default: 0
    version_added: 1.1.0
  retry_on_timeout:
    description:
      - Retry an attempt that reached its O(timeout) too.
      - Needs O(retries).
    type: bool
    default: false
    version_added: 1.1.0
  total_timeout:
    description:
      - With O(retries), O(timeout) applies to each attempt; this bounds all of them together, delays
        included, in seconds from the start of the first attempt. No attempt starts whose delay would end
        after it, and the attempt running when it is reached is stopped (state V(timeout)). V(0) sets no such bound.
      - Needs O(retries).
    type: int
    default: 0
    version_added: 1.1.0
  slot:
    description:
      - A host-side slot (a name) to queue the job for. On the host, at most O(slot_limit) jobs of
        the slot run at once, across tasks, plays, playbook runs and controllers, as long as they use
        the same job directory (remote user and C(async_dir)); the others are V(queued) and start in the
        order they were started (first come, first served) as soon as a slot frees up.
      - A queued job reads V(queued) (RV(finished=false)); M(detached.jobs.wait), M(detached.jobs.job_info),
        M(detached.jobs.prune) (it is never removed), kill and named jobs understand it. Its O(timeout) counts
        from when it starts running; O(queue_timeout) bounds the wait.
      - A job holds its slot until it has ended, through its retry delays, and even when its supervisor
        was killed with C(kill -9) while its process runs on.
      - 1 to 128 letters, digits and C(_.@+-), starting with a letter or digit.
    type: str
    version_added: 1.1.0
  slot_limit:
    description:
      - How many jobs of O(slot) may run at once on the host (1 to 1000). Jobs of one slot should use the
        same limit; each job counts with its own.
      - Needs O(slot).
    type: int
    default: 1
    version_added: 1.1.0
  queue_timeout:
    description:
      - The longest a job waits for its O(slot), in seconds; then it ends as V(timeout) without having run.
        V(0) waits as long as it takes.
      - Needs O(slot).
    type: int
    default: 0
    version_added: 1.1.0
  jobs:
    description:
      - A batch of jobs to start in one round trip. Each element takes O(module) with O(args),
        O(cmd) or O(argv), and O(chdir), O(name), O(if_running), O(timeout), O(grace),
        O(output_limit), O(retries), O(retry_delay), O(backoff), O(retry_max_delay), O(retry_on_timeout),
        O(total_timeout), O(slot), O(slot_limit), O(queue_timeout); options given at the top level are
        defaults for every element.
      - An empty list fails the task (C(jobs is empty)).
    type: list
    elements: dict
    suboptions:
      module:
        description: The module to run.
        type: str
      args:
        description: Arguments of O(jobs[].module).
        type: dict
      cmd:
        description: A command line.
        type: str
      argv:
        description: A command as a list of arguments.
        type: list
        elements: str
      chdir:
        description: Directory to run the job in; left out, the task-level O(chdir) applies.
        type: path
      name:
        description: Name of the job; left out, the task-level O(name) applies.
        type: str
      if_running:
        description: What to do when a job of this name is already running; left out, the task-level O(if_running) applies.
        type: str
        choices: [attach, fail, restart]
      timeout:
        description: Time limit in seconds; left out, the task-level O(timeout) applies.
        type: int
      grace:
        description: Seconds between SIGTERM and SIGKILL; left out, the task-level O(grace) applies.
        type: int
      output_limit:
        description: The last bytes of each output stream kept in the result; left out, the task-level O(output_limit) applies.
        type: int
      retries:
        description: How many times a failed job is run again; left out, the task-level O(retries) applies.
        type: int
      retry_delay:
        description: Seconds between attempts; left out, the task-level O(retry_delay) applies.
        type: float
      backoff:
        description: The factor the delay grows by; left out, the task-level O(backoff) applies.
        type: float
      retry_max_delay:
        description: The longest delay between attempts; left out, the task-level O(retry_max_delay) applies.
        type: float
      retry_on_timeout:
        description: Retry a timed-out attempt too; left out, the task-level O(retry_on_timeout) applies.
        type: bool
      total_timeout:
        description: A bound on all attempts together; left out, the task-level O(total_timeout) applies.
        type: int
      slot:
        description: A host-side slot to queue for; left out, the task-level O(slot) applies.
        type: str
      slot_limit:
        description: How many jobs of the slot run at once; left out, the task-level O(slot_limit) applies.
        type: int
      queue_timeout:
        description: The longest the job waits for its slot; left out, the task-level O(queue_timeout) applies.
        type: int
  poll:
    description:
      - V(0) starts the jobs and moves on (fire and forget).
      - Any other value waits until the jobs have finished and returns the job's result as the
        task's result (like the C(async) keyword with C(poll)), failing when the job failed or timed
        out. The end of the job is noticed within a second whatever the value; it is the longest a
        single remote call blocks while waiting.
    type: int
    default: 0
  cleanup:
    description:
      - With O(poll), remove the job's files once its result has been collected.
    type: bool
    default: false
extends_documentation_fragment:
  - detached.jobs.attributes
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - detached.jobs.job_dir
attributes:
  async:
    support: none
    details: This is what the action does itself; do not combine it with the C(async) keyword.
  check_mode:
    support: full
    details: Starts nothing; reports whether each job would be started or attached to.
notes:
  - The host needs Python 3.8 or newer for the supervisor, even in command mode.
seealso:
  - module: detached.jobs.wait
  - module: detached.jobs.async_status
  - module: ansible.builtin.async_status
author:
  - detached.jobs contributors (@detached-jobs)
"""

EXAMPLES = r"""
- name: Start the migration and come back later
  detached.jobs.start:
    cmd: sleep 3
    timeout: 1800
    name: migration
  register: migration

- name: Run a module in the background (any module, FQCN or short name)
  detached.jobs.start:
    module: ansible.builtin.command
    args:
      cmd: echo hello
  register: hello

- name: Run and wait, like async with poll (the end is noticed within a second)
  detached.jobs.start:
    argv: [sh, -c, "sleep 1; echo done"]
    timeout: 60
    poll: 5
    cleanup: true
  register: waited

- name: Start a batch of jobs in one round trip
  detached.jobs.start:
    timeout: 600
    jobs:
      - cmd: sleep 2
        name: download-a
      - cmd: sleep 2
        name: download-b
  register: batch

- name: Fetch an artifact; the host tries again up to 3 times, 5 s, 10 s, then 20 s later
  detached.jobs.start:
    argv: [sh, -c, "test -e /etc/hostname"]
    retries: 3
    retry_delay: 5
    backoff: 2
    timeout: 600
  register: fetched

- name: Back up five databases, at most 2 at once on the host, whoever else starts backups there
  detached.jobs.start:
    argv: [sh, -c, "sleep 1; echo backed up $0", "{{ item }}"]
    slot: db-backup
    slot_limit: 2
    queue_timeout: 3600
  loop: [orders, users, stock, audit, billing]
  register: backups

- name: Deploy once - while a job of this name still runs, a re-run of the playbook fails instead of attaching to it
  detached.jobs.start:
    cmd: sleep 5
    name: nightly-deploy
    if_running: fail

- name: Restart the indexer if it runs already (it is stopped with its process tree, SIGKILL 10 s after SIGTERM)
  detached.jobs.start:
    cmd: sleep 30
    name: indexer
    if_running: restart
    grace: 10

- name: Build in a directory; the result keeps the last 64 KiB of stdout and of stderr, the rest stays in a file
  detached.jobs.start:
    argv: [sh, -c, "ls; echo built"]
    chdir: /tmp
    output_limit: 65536
  register: build

- name: Retry a flaky sync, timeouts too, waiting 10 s, 20 s, 40 s, then 60 s, for 10 minutes in all at most
  detached.jobs.start:
    cmd: sleep 1
    timeout: 120
    retries: 5
    retry_delay: 10
    backoff: 2
    retry_max_delay: 60
    retry_on_timeout: true
    total_timeout: 600
  register: synced

- name: Start a batch and wait for it in the same task (its result has every job's result in jobs)
  detached.jobs.start:
    timeout: 300
    poll: 5
    cleanup: true
    jobs:
      - cmd: sleep 1
        name: unit-tests
      - argv: [sh, -c, "sleep 2; echo lint ok"]
        name: lint
        timeout: 60
  register: checks

- name: Wait for everything started above
  detached.jobs.wait:
    jobs: ["{{ migration }}", "{{ hello }}", "{{ batch }}", "{{ fetched }}", "{{ backups }}", "{{ build }}", "{{ synced }}"]
    timeout: 3600
"""

RETURN = r"""
ansible_job_id:
  description: The job id (single job).
  returned: when one job is started
  type: str
  sample: j448219357640.4242
started:
  description: Whether the job started.
  returned: when one job is started
  type: bool
finished:
  description:
    - Whether the job has finished. Without O(poll) it is V(false) unless the job ended before it was recorded;
      the start never fails because of the job's own outcome (read it with M(detached.jobs.wait) or M(detached.jobs.async_status)).
  returned: when one job is started
  type: bool
results_file:
  description: The job's status file.
  returned: when one job is started
  type: str
attached:
  description: Whether an already running job of the same O(name) was returned instead of starting one.
  returned: when one job is started
  type: bool
reason:
  description:
    - When a job could not be started (also in each entry of RV(jobs)), why, as a fixed word to test
      instead of the message's text - V(launch), V(invalid), V(still_running) (O(if_running=fail) found
      the name running), V(unsafe), V(corrupt), V(io) or V(error).
  returned: when the job, or the task, failed
  type: str
  sample: still_running
  version_added: 1.1.0
async_dir:
  description: The job directory, as configured (the host expands C(~)).
  returned: when one job is started
  type: str
loop_label:
  description:
    - The task's C(loop_control.label) for this loop item, templated (ansible-core keeps its own copy out of
      registered results). M(detached.jobs.wait) labels the job with it.
  returned: in a loop whose C(loop_control) sets a C(label) that can be templated before the task's result exists
  type: str
  sample: db=users
  version_added: 1.1.0
detached:
  description: The collection's metadata about the job (state, name, pids, times, limits).
  returned: when one job is started
  type: dict
  contains:
    state:
      description:
        - V(running) right after the start (V(queued) when it waits for its O(slot)); with O(poll), how the job ended.
      returned: always
      type: str
      sample: running
    attempt:
      description: With O(retries), the number of the current (or last) attempt.
      returned: when O(retries) is set
      type: int
      version_added: 1.1.0
    attempts:
      description:
        - With O(retries), one record per finished attempt - C(attempt), C(started_at), C(ended_at),
          C(elapsed), C(state), C(rc), C(signal), C(msg) and C(tail) (C(stdout) and C(stderr), their last 10 lines).
      returned: when O(retries) is set
      type: list
      elements: dict
      version_added: 1.1.0
    slot:
      description: The job's O(slot).
      returned: when O(slot) is set
      type: str
      version_added: 1.1.0
    queue_seq:
      description: The job's place in its slot's queue (a sequence number; lower ones run first).
      returned: when O(slot) is set
      type: int
      version_added: 1.1.0
    name:
      description: The job's O(name).
      returned: when O(name) was given
      type: str
    pid:
      description: Process id of the job's supervisor.
      returned: always
      type: int
    files:
      description: Output files kept on the host when the job's output exceeded O(output_limit).
      returned: when output was cut
      type: dict
jobs:
  description: With O(jobs), one entry per job, in order, each with the keys above.
  returned: when O(jobs) is used
  type: list
  elements: dict
ansible_job_ids:
  description: With O(jobs), the job ids in order.
  returned: when O(jobs) is used
  type: list
  elements: str
rc:
  description: With O(poll) in command mode, the command's exit code.
  returned: when O(poll) is set and the job ran a command
  type: int
stdout:
  description: With O(poll) in command mode, the command's standard output.
  returned: when O(poll) is set and the job ran a command
  type: str
stderr:
  description: With O(poll) in command mode, the command's standard error.
  returned: when O(poll) is set and the job ran a command
  type: str
start:
  description: With O(poll) in command mode, when the command started.
  returned: when O(poll) is set and the job ran a command
  type: str
end:
  description: With O(poll) in command mode, when the command ended.
  returned: when O(poll) is set and the job ran a command
  type: str
delta:
  description: With O(poll) in command mode, how long the command ran.
  returned: when O(poll) is set and the job ran a command
  type: str
cmd:
  description: With O(poll) in command mode, the command that ran.
  returned: when O(poll) is set and the job ran a command
  type: list
  elements: str
"""
