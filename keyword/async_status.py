# Copyright (c) detached.jobs contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: async_status
short_description: The async keyword's status reader, on the detached.jobs engine (keyword mode)
version_added: 1.1.0
description:
  - Takes the place of ansible-core's C(async_status) module when this directory (C(keyword/) of
    the detached.jobs collection) is in the module search path. The C(poll) of C(async) tasks and
    C(ansible.builtin.async_status) tasks then read the collection's job files, so a job whose
    supervisor died reads finished and failed (state C(vanished)), never running forever.
  - See docs/keyword.md of the collection.
options:
  jid:
    description: The job id.
    type: str
    required: true
  mode:
    description: What to do with the job (C(kill) is for M(detached.jobs.async_status)).
    type: str
    choices: [status, cleanup, kill]
    default: status
  _async_dir:
    description: The job directory (the async_status action sets it).
    type: path
seealso:
  - module: detached.jobs.async_status
author:
  - detached.jobs contributors (@detached-jobs)
"""

EXAMPLES = r"""
- name: Wait for a job started with async and poll 0
  ansible.builtin.async_status:
    jid: "{{ job.ansible_job_id }}"
  register: result
  until: result is finished
  retries: 100
  delay: 5
"""

RETURN = r"""
finished:
  description: Whether the job has ended.
  returned: always
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.detached.jobs.plugins.module_utils import _keyword

if __name__ == "__main__":
    _keyword.status_main(AnsibleModule)
