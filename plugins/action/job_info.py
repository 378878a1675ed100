# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""Action for detached.jobs.job_info: resolves the job directory, then lists the host's jobs."""

from __future__ import annotations

from ansible_collections.detached.jobs.plugins.module_utils._specs import JOB_INFO_SPEC
from ansible_collections.detached.jobs.plugins.plugin_utils._hostaction import HostAction


class ActionModule(HostAction):
    OPERATION = "job_info"
    SPEC = JOB_INFO_SPEC
    AGES = ("older_than", "newer_than")
