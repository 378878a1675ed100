# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors

from __future__ import annotations


class ModuleDocFragment:
    # The attributes every module of the collection shares (after ansible.builtin.action_common_attributes
    # and its .flow); a module adds check_mode and overrides what differs.
    DOCUMENTATION = r"""
attributes:
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
"""
