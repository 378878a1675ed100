# Copyright (c) detached.jobs contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: async_wrapper
short_description: The async keyword's wrapper, on the detached.jobs engine (keyword mode)
version_added: 1.1.0
description:
  - Takes the place of ansible-core's C(async_wrapper) when this directory (C(keyword/) of the
    detached.jobs collection) is in the module search path (C(library) in C(ansible.cfg), or
    E(ANSIBLE_LIBRARY)). Every task with C(async) then runs its module as a detached.jobs job,
    under the collection's supervisor, with its private status file in the job directory.
  - ansible-core runs this module itself, with a command line of its own; it takes no options.
    See docs/keyword.md of the collection.
options: {}
seealso:
  - module: detached.jobs.start
author:
  - detached.jobs contributors (@detached-jobs)
"""

EXAMPLES = r"""
# Not called by hand: any task with the async keyword runs it once keyword mode is on.
- name: A long command, in the background
  ansible.builtin.command: /opt/app/bin/migrate
  async: 1800
  poll: 10
"""

RETURN = r"""
ansible_job_id:
  description: The job's id.
  returned: always
  type: str
results_file:
  description: The job's status file.
  returned: always
  type: str
"""

from ansible_collections.detached.jobs.plugins.module_utils import _keyword

if __name__ == "__main__":
    _keyword.wrapper_main()
