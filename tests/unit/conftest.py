# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""Make the collection importable as ansible_collections.detached.jobs from a checkout."""

from __future__ import annotations

import os
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_COLL = os.path.join(_ROOT, ".build", "unit-collections")
_LINK = os.path.join(_COLL, "ansible_collections", "detached", "jobs")
if not os.path.lexists(_LINK):
    os.makedirs(os.path.dirname(_LINK), exist_ok=True)
    os.symlink(_ROOT, _LINK)
if _COLL not in sys.path:
    sys.path.insert(0, _COLL)


import pytest  # noqa: E402  (after the path set-up above)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """The supervisor's zip cache (_pyzcache.supervisor_pyz) in a directory of the test run, not ~/.cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "cache"))
