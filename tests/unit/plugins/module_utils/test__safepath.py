# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""Unit tests of _safepath's one writer: every file the host code replaces goes through atomic_write
(temporary file, fsync, rename), the supervisor's zip cache included. The checks of what is safe to
use are tested through their users in test__jobstore.py and test_shared_hosts.py."""

from __future__ import annotations

import fcntl
import os
import stat
import typing as t

import pytest

from ansible_collections.detached.jobs.plugins.module_utils import _ids as ids
from ansible_collections.detached.jobs.plugins.module_utils import _pyzcache
from ansible_collections.detached.jobs.plugins.module_utils import _safepath as sp


def test_atomic_write_replaces_whole_private_and_synced(tmp_path: t.Any, monkeypatch: pytest.MonkeyPatch) -> None:
    synced = []
    real = os.fsync

    def fsync(fd: int) -> None:
        synced.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    path = tmp_path / "f"
    path.write_bytes(b"old")
    assert sp.atomic_write(str(path), b"new", "test") == -1
    assert path.read_bytes() == b"new" and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(synced) == 1 and os.listdir(tmp_path) == ["f"]


def test_atomic_write_failure_keeps_the_old_content_and_no_temporary_file(tmp_path: t.Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_space(fd: int) -> None:
        raise OSError(28, "No space left on device")

    path = tmp_path / "f"
    path.write_bytes(b"old")
    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(ids.JobError, match=f"test: cannot write {path}: No space left on device"):
        sp.atomic_write(str(path), b"new", "test")
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["f"]


def test_atomic_write_in_another_directory_and_held(tmp_path: t.Any) -> None:
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "ticket"
    fd = sp.atomic_write(str(path), b"x", "test", tmp_dir=str(tmp_path), hold=True)
    try:
        assert path.read_bytes() == b"x" and os.listdir(tmp_path / "sub") == ["ticket"]
        other = os.open(path, os.O_RDONLY)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held by fd
        finally:
            os.close(other)
    finally:
        os.close(fd)


def test_the_supervisor_cache_is_written_by_the_one_writer(tmp_path: t.Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(_pyzcache, "_PYZ", {})
    written = []
    real = sp.atomic_write

    def spy(path: str, data: bytes, what: str, tmp_dir: str | None = None, hold: bool = False) -> int:
        written.append(path)
        return real(path, data, what, tmp_dir, hold)

    monkeypatch.setattr(sp, "atomic_write", spy)
    data = _pyzcache.supervisor_pyz(compiled=True)
    [name] = os.listdir(tmp_path / "detached.jobs")
    assert written == [str(tmp_path / "detached.jobs" / name)]
    assert (tmp_path / "detached.jobs" / name).read_bytes() == data
