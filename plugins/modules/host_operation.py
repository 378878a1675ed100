#!/usr/bin/python
# Copyright (c) detached.jobs contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: host_operation
short_description: Internal - the host side of wait, async_status, job_info and prune
version_added: 1.1.0
description:
  - Runs one host-side operation of the M(detached.jobs.wait), M(detached.jobs.async_status),
    M(detached.jobs.job_info) or M(detached.jobs.prune) action where the action cannot pipe the
    collection's host code to the host's Python (for example C(become) without pipelining).
  - Use those modules instead of calling this one directly; the parameters it takes are prepared
    by their action plugins, with what they add to a task's options (the job directory, the job
    ids a wait resolved, how long a call blocks).
options:
  operation:
    description:
      - The operation to run.
    type: str
    required: true
    choices: [status, wait, job_info, prune]
  params:
    description:
      - The operation's parameters as its action prepared them (the task's options, checked by the action,
        and those the action adds). The host checks them again against the operation's argument spec.
    type: dict
    default: {}
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
    details: As the action whose host side it runs.
seealso:
  - module: detached.jobs.wait
  - module: detached.jobs.async_status
  - module: detached.jobs.job_info
  - module: detached.jobs.prune
author:
  - detached.jobs contributors (@detached-jobs)
"""

EXAMPLES = r"""
# This module is not meant to be called directly.
- name: List the jobs of the host (use the job_info action)
  detached.jobs.job_info:
"""

RETURN = r"""
changed:
  description: Whether the operation changed anything (see the result of the action whose host side it is).
  returned: always
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.detached.jobs.plugins.module_utils import _entry


def main() -> None:
    _entry.operation_main(AnsibleModule, ArgumentSpecValidator)


if __name__ == "__main__":
    main()
