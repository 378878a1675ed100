#!/usr/bin/python
# Copyright (c) detached.jobs contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: async_wrapper
short_description: Launch detached jobs on the managed host (internal)
version_added: 1.0.0
description:
  - The host side of M(detached.jobs.start). It records each job in the job directory, starts one
    lean supervisor process per job in a session of its own, and returns as soon as every job is
    recorded.
  - Use M(detached.jobs.start) instead of calling this module directly; the payloads it takes are
    built by that action plugin.
options:
  jobs:
    description:
      - The jobs to launch, as prepared by the M(detached.jobs.start) action.
    type: list
    elements: dict
    required: true
    suboptions:
      module:
        description: Name of the module the payload runs, for the record.
        type: str
      payload:
        description: The module payload, base64.
        type: str
      interpreter:
        description: The interpreter command line for the payload.
        type: list
        elements: str
      style:
        description: The payload's module style.
        type: str
        default: new
        choices: [new, old, non_native_want_json, binary]
      args_data:
        description: Content of the arguments file for old-style and binary modules.
        type: str
      argv:
        description: Command mode, the argument vector to run.
        type: list
        elements: str
      chdir:
        description: Directory to run the job in.
        type: path
      name:
        description: Name of the job.
        type: str
      if_running:
        description: What to do when a job of this name is already running.
        type: str
        default: attach
        choices: [attach, fail, restart]
      timeout:
        description:
          - Time limit in seconds, V(0) for none.
          - At most V(315360000) (10 years), as are all the options in seconds. Every number option is
            checked before any job starts; a value out of its bounds, a boolean, infinity or NaN fails, naming the option.
        type: int
        default: 0
      grace:
        description: Seconds between SIGTERM and SIGKILL when the job is stopped.
        type: int
        default: 5
      output_limit:
        description: Bytes of output kept in the result, V(1) to V(1073741824) (1 GiB); unset, 16 MiB. V(0) is refused.
        type: int
      retries:
        description: How many times a failed job is run again (at most V(1000)).
        type: int
        default: 0
      retry_delay:
        description: Seconds between attempts.
        type: float
        default: 5
      backoff:
        description: The factor the delay grows by after each attempt (V(1) to V(1000)).
        type: float
        default: 1
      retry_max_delay:
        description: The longest delay between attempts (0 sets none).
        type: float
        default: 0
      retry_on_timeout:
        description: Retry an attempt that reached its timeout too.
        type: bool
        default: false
      total_timeout:
        description: A bound in seconds on all attempts together (0 sets none).
        type: int
        default: 0
      slot:
        description: A host-side slot to queue the job for.
        type: str
      slot_limit:
        description: How many jobs of the slot run at once (V(1) to V(1000)).
        type: int
        default: 1
      queue_timeout:
        description: The longest the job waits for its slot, in seconds (0 waits as long as it takes).
        type: int
        default: 0
  async_dir:
    description:
      - The job directory, already expanded for the user the job runs as.
    type: path
    required: true
extends_documentation_fragment:
  - detached.jobs.attributes
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - detached.jobs.job_dir
attributes:
  action:
    support: none
  check_mode:
    support: full
    details: Reports what would be started or attached to, and starts nothing.
seealso:
  - module: detached.jobs.start
author:
  - detached.jobs contributors (@detached-jobs)
"""

EXAMPLES = r"""
# This module is not meant to be called directly.
- name: Start a command in the background (use the start action)
  detached.jobs.start:
    cmd: sleep 10
"""

RETURN = r"""
jobs:
  description: One entry per requested job, in order, each the job's running status.
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.detached.jobs.plugins.module_utils import _entry


def main() -> None:
    _entry.main(AnsibleModule, "start")


if __name__ == "__main__":
    main()
