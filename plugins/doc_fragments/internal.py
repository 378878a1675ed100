# Copyright (c) detached.jobs contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # The host side of an action plugin: options the action sets; a task cannot set them.
    DOCUMENTATION = r"""
options:
  _async_dir:
    description:
      - Internal, not an option of the task (set by the action plugin from the connection's C(async_dir),
        the C(ansible_async_dir) variable; a task that sets it fails). The job directory.
    type: path
    default: ~/.ansible_async
"""
