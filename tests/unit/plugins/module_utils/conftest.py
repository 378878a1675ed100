# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""Fixtures the host-side unit tests share."""

from __future__ import annotations

import typing as t
from pathlib import Path

import pytest

from ansible_collections.detached.jobs.plugins.module_utils import _jobstore as js
from ansible_collections.detached.jobs.tests.unit.plugins.module_utils._jobs import kill_leftovers


@pytest.fixture
def store(tmp_path: Path) -> js.JobStore:
    """A job store in the test's directory, for tests that start no job."""
    return js.JobStore(str(tmp_path / "jobs"))


@pytest.fixture
def live_store(tmp_path: Path) -> t.Iterator[js.JobStore]:
    """A job store in the test's directory for tests that start real jobs: any job still running at
    the end of the test is killed."""
    s = js.JobStore(str(tmp_path / "jobs"))
    yield s
    kill_leftovers(s)
