# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""Action for detached.jobs.prune: resolves the job directory, then removes the host's old finished jobs."""

from __future__ import annotations

from ansible_collections.detached.jobs.plugins.module_utils._specs import PRUNE_SPEC
from ansible_collections.detached.jobs.plugins.plugin_utils._hostaction import HostAction


class ActionModule(HostAction):
    OPERATION = "prune"
    SPEC = PRUNE_SPEC
    AGES = ("older_than",)
