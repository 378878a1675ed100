# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""Unit tests of _jobstore on a real job directory: ids, names, atomic writes, modes, symlinks, corrupt files, the name index."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
import time
import typing as t

import pytest

from ansible_collections.detached.jobs.plugins.module_utils import _ids as ids
from ansible_collections.detached.jobs.plugins.module_utils import _jobstore as js
from ansible_collections.detached.jobs.plugins.module_utils import _records as rec
from ansible_collections.detached.jobs.plugins.module_utils import _results as res
from ansible_collections.detached.jobs.plugins.module_utils import _slots as slots
from ansible_collections.detached.jobs.plugins.module_utils import _tmpdirs as tmpdirs
from ansible_collections.detached.jobs.tests.unit.plugins.module_utils._jobs import status_jids

JID = "j123456789012.4242"
HEX = "0123456789abcdef"


def _mode(path: str) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def _meta(**extra: t.Any) -> dict:
    return dict({"name": None, "module": None, "cmd": ["true"], "pid": 1, "pid_start": None, "boot_id": None}, **extra)


# --- job ids and names --------------------------------------------------------
@pytest.mark.parametrize("jid", [JID, "j1.1", "j" + "9" * 20 + "." + "9" * 10, HEX, "ffffffffffffffff", "0000000000000000"])
def test_validate_jid_accepts(jid: str) -> None:
    assert ids.validate_jid(jid) == jid


@pytest.mark.parametrize(
    "jid",
    [
        "",
        ".",
        "..",
        "/x",
        "a/b",
        "j1/../x",
        "../j1.1",
        "j1.1/",
        "/j1.1",
        "j1.1\0",
        "\0",
        "j1.1\n",
        "\nj1.1",
        " j1.1",
        "j1.1 ",
        "j1",
        "j.1",
        "j1.",
        "J1.1",
        "j1.1.1",
        "j-1.1",
        "j" + "9" * 21 + ".1",
        "j1." + "1" * 11,
        "x" * 4096,
        "j" + "1" * 10000 + ".1",
        "0123456789ABCDEF",
        "0123456789abcde",
        "0123456789abcdef0",
        "0123456789abcdeg",
        "j١٢٣.٤",  # Arabic-Indic digits: str.isdigit() would accept them
        "j１.１",  # fullwidth digits
        "ｊ1.1",
        "é",
        "j1.1é",
        None,
        1,
        1.5,
        b"j1.1",
        ["j1.1"],
        {"jid": "j1.1"},
    ],
)
def test_validate_jid_refuses(jid: object) -> None:
    with pytest.raises(ids.InvalidJobId) as err:
        ids.validate_jid(jid)
    assert repr(jid)[:50] in str(err.value)


def test_job_path_is_inside_the_directory(store: js.JobStore) -> None:
    for jid in (JID, HEX):
        assert store.job_path(jid) == os.path.join(store.path, jid)
        assert os.path.dirname(store.job_path(jid)) == store.path
    for bad in ("..", "/etc/passwd", "../../x"):
        with pytest.raises(ids.InvalidJobId):
            store.job_path(bad)
        with pytest.raises(ids.InvalidJobId):
            store.read(bad)
        with pytest.raises(ids.InvalidJobId):
            store.write(bad, {"x": 1})
    assert os.listdir(store.path) == []


def test_extra_path_suffixes(store: js.JobStore) -> None:
    for suffix in js.SUFFIXES:
        assert store.extra_path(JID, suffix) == f"{store.path}/{JID}.{suffix}"
    with pytest.raises(ValueError, match="suffix"):
        store.extra_path(JID, "../x")
    with pytest.raises(ids.InvalidJobId):
        store.extra_path("..", "stdout")


def test_new_jid_is_valid() -> None:
    assert ids.validate_jid(ids.new_jid(123456789012, os.getpid())) == f"j123456789012.{os.getpid()}"


@pytest.mark.parametrize("name", ["a", "A", "0", "build", "build-1", "web_01.example.com", "u@host", "a+b", "x" * 128])
def test_validate_name_accepts(name: str) -> None:
    assert ids.validate_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["", ".", "..", ".names", "-x", "_x", "a/b", "/a", "a b", "a\0", "a\n", "x" * 129, "é", "名前", "a:b", "a*", None, 3, ["a"]],
)
def test_validate_name_refuses(name: object) -> None:
    with pytest.raises(ids.InvalidName) as err:
        ids.validate_name(name)
    assert repr(name)[:40] in str(err.value)


# --- the directory and file modes -----------------------------------------------
def test_directory_created_private(tmp_path: t.Any) -> None:
    old = os.umask(0)
    try:
        store = js.JobStore(str(tmp_path / "a" / "jobs"))
    finally:
        os.umask(old)
    assert os.path.isdir(store.path)
    assert _mode(store.path) == 0o700


def test_existing_directory_others_cannot_write_is_used_unchanged(tmp_path: t.Any) -> None:
    path = tmp_path / "jobs"
    path.mkdir()
    os.chmod(path, 0o755)
    store = js.JobStore(str(path))
    store.write(JID, {"started": True, "finished": False})
    assert _mode(str(path)) == 0o755  # never changed: the collection tightens only what it created
    assert _mode(store.job_path(JID)) == 0o600


@pytest.mark.parametrize("mode", [0o777, 0o1777, 0o770, 0o722])
def test_directory_others_can_write_is_refused_unchanged(tmp_path: t.Any, mode: int) -> None:
    path = tmp_path / "jobs"
    path.mkdir()
    os.chmod(path, mode)
    for create in (True, False):
        with pytest.raises(ids.UnsafePath, match=f"job directory {path} is not safe to use: it is writable by others \\(mode {mode:04o}\\).*private directory"):
            js.JobStore(str(path), create=create)
    assert _mode(str(path)) == mode and os.listdir(path) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the directory to another user")
def test_directory_of_another_user_is_refused_unchanged(tmp_path: t.Any) -> None:
    path = tmp_path / "jobs"
    path.mkdir()
    os.chmod(path, 0o700)
    os.chown(path, 65534, 65534)
    with pytest.raises(ids.UnsafePath, match="is owned by uid 65534.*not by you"):
        js.JobStore(str(path))
    assert _mode(str(path)) == 0o700 and os.stat(path).st_uid == 65534


def test_symlinked_directory_is_refused(tmp_path: t.Any) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    os.symlink(real, tmp_path / "jobs")
    with pytest.raises(ids.UnsafePath, match="is a symlink"):
        js.JobStore(str(tmp_path / "jobs"))
    assert os.listdir(real) == []


def test_directory_under_a_parent_others_can_write_is_refused(tmp_path: t.Any) -> None:
    parent = tmp_path / "shared"
    parent.mkdir()
    os.chmod(parent, 0o777)  # no sticky bit: anyone could rename the job directory away
    with pytest.raises(ids.UnsafePath, match=f"the directory above it, {parent}, is writable by others without the sticky bit"):
        js.JobStore(str(parent / "a" / "jobs"))
    assert os.listdir(parent) == []  # checked before anything is created
    os.chmod(parent, 0o1777)  # as /tmp: what is ours in it cannot be renamed by others
    store = js.JobStore(str(parent / "a" / "jobs"))
    assert _mode(str(parent / "a")) == 0o700 and _mode(store.path) == 0o700


def test_create_false_does_not_create(tmp_path: t.Any) -> None:
    store = js.JobStore(str(tmp_path / "nothere"), create=False)
    assert not os.path.exists(store.path)
    assert status_jids(store) == []
    assert store.names() == []
    with pytest.raises(ids.JobNotFound):
        store.read(JID)


def test_directory_path_is_a_file(tmp_path: t.Any) -> None:
    path = tmp_path / "jobs"
    path.write_text("x")
    with pytest.raises(ids.JobError, match=str(path)):
        js.JobStore(str(path))


def test_expands_user(monkeypatch: pytest.MonkeyPatch, tmp_path: t.Any) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    store = js.JobStore("~/.ansible_async")
    assert store.path == str(tmp_path / ".ansible_async")
    assert os.path.isdir(store.path)


def test_files_are_private(store: js.JobStore) -> None:
    old = os.umask(0)
    try:
        store.write(JID, {"started": True, "finished": False})
        store.create_private(store.extra_path(JID, "payload"), b"data")
        os.close(store.open_output(JID, "stdout"))
        store.name_set("web", JID)
        with store.lock():
            pass
    finally:
        os.umask(old)
    for path in (
        store.job_path(JID),
        store.extra_path(JID, "payload"),
        store.extra_path(JID, "stdout"),
        os.path.join(store.path, ".names", "web"),
        os.path.join(store.path, ".lock"),
    ):
        assert _mode(path) == 0o600, path
    assert _mode(os.path.join(store.path, ".names")) == 0o700


def test_create_private_binary_mode(store: js.JobStore) -> None:
    path = store.extra_path(JID, "payload")
    old = os.umask(0)
    try:
        store.create_private(path, b"#!/bin/sh\n", 0o700)
    finally:
        os.umask(old)
    assert _mode(path) == 0o700
    with open(path, "rb") as f:
        assert f.read() == b"#!/bin/sh\n"


def test_create_private_never_replaces(store: js.JobStore) -> None:
    path = store.extra_path(JID, "payload")
    store.create_private(path, b"first")
    with pytest.raises(ids.JobError, match="cannot create"):
        store.create_private(path, b"second")
    with open(path, "rb") as f:
        assert f.read() == b"first"
    with pytest.raises(ids.JobError, match="cannot create"):
        store.open_output(JID, "payload")


# --- atomic writes --------------------------------------------------------------
def test_write_read_roundtrip_and_no_tmp_files(store: js.JobStore) -> None:
    record = {"started": True, "finished": True, "rc": 0, "stdout": "é ☃ \x00 \ud800", "list": [1, 2.5, None, True]}
    for i in range(5):
        store.write(JID, dict(record, i=i))
    assert store.read(JID) == dict(record, i=4)
    assert os.listdir(store.path) == [JID]
    with open(store.job_path(JID), "rb") as f:
        raw = f.read()
    assert raw.isascii()
    assert json.loads(raw) == dict(record, i=4)


def test_failed_write_keeps_old_content_and_leaves_no_tmp(store: js.JobStore) -> None:
    store.write(JID, {"v": 1})
    # A directory where the status file should go: the rename fails.
    store.write(HEX, {"v": 1})
    os.unlink(store.job_path(HEX))
    os.mkdir(store.job_path(HEX))
    os.mkdir(os.path.join(store.job_path(HEX), "sub"))
    with pytest.raises(ids.JobError, match=HEX):
        store.write(HEX, {"v": 2})
    assert sorted(os.listdir(store.path)) == sorted([JID, HEX])
    assert store.read(JID) == {"v": 1}


def test_reader_never_sees_a_half_written_file(store: js.JobStore) -> None:
    """A writer process replaces a large status file again and again; every read here parses."""
    big = "x" * 200_000
    store.write(JID, {"n": -1, "big": big})
    script = textwrap.dedent(
        f"""
        from ansible_collections.detached.jobs.plugins.module_utils import _jobstore as js
        store = js.JobStore({store.path!r})
        for n in range(150):
            store.write({JID!r}, {{"n": n, "big": "x" * (100_000 + n * 500)}})
        """
    )
    writer = subprocess.Popen([sys.executable, "-c", script], env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    seen = set()
    reads = 0
    try:
        while writer.poll() is None or reads == 0:
            record = store.read(JID)  # raises CorruptJob on a partial file
            assert record["big"] == big[: len(record["big"])]
            seen.add(record["n"])
            reads += 1
    finally:
        writer.wait()
    assert writer.returncode == 0
    assert store.read(JID)["n"] == 149
    assert os.listdir(store.path) == [JID]
    assert reads > 0


# --- symlinks ---------------------------------------------------------------------
def test_symlink_status_file_is_refused(store: js.JobStore, tmp_path: t.Any) -> None:
    target = tmp_path / "secret.json"
    target.write_text('{"secret": "s3cr3t"}')
    os.symlink(target, store.job_path(JID))
    with pytest.raises(ids.CorruptJob) as err:
        store.read(JID)
    assert "symlink" in str(err.value)
    assert store.job_path(JID) in str(err.value)
    assert "s3cr3t" not in str(err.value)


def test_symlink_to_fifo_does_not_block(store: js.JobStore, tmp_path: t.Any) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    os.symlink(fifo, store.job_path(JID))
    with pytest.raises(ids.CorruptJob, match="symlink"):
        store.read(JID)


def test_fifo_or_directory_status_file(store: js.JobStore) -> None:
    os.mkfifo(store.job_path(JID))  # no writer: a blocking open would hang
    with pytest.raises(ids.CorruptJob, match="not a regular file"):
        store.read(JID)
    os.mkdir(store.job_path(HEX))
    with pytest.raises(ids.CorruptJob, match="not a regular file"):
        store.read(HEX)


def test_write_replaces_a_symlink_not_its_target(store: js.JobStore, tmp_path: t.Any) -> None:
    target = tmp_path / "target"
    target.write_text("keep me")
    os.symlink(target, store.job_path(JID))
    store.write(JID, {"v": 1})
    assert target.read_text() == "keep me"
    assert not os.path.islink(store.job_path(JID))
    assert store.read(JID) == {"v": 1}


def test_symlinked_extra_files_are_refused(store: js.JobStore, tmp_path: t.Any) -> None:
    target = tmp_path / "target"
    target.write_text("keep me")
    for suffix in ("stdout", "payload"):
        os.symlink(target, store.extra_path(JID, suffix))
    with pytest.raises(ids.JobError):
        store.open_output(JID, "stdout")
    with pytest.raises(ids.JobError):
        store.create_private(store.extra_path(JID, "payload"), b"evil")
    assert target.read_text() == "keep me"


def test_symlinked_name_entry_is_refused(store: js.JobStore, tmp_path: t.Any) -> None:
    target = tmp_path / "target"
    target.write_text(JID)
    os.makedirs(os.path.join(store.path, ".names"))
    os.symlink(target, os.path.join(store.path, ".names", "web"))
    with pytest.raises(ids.JobError, match="web"):
        store.name_get("web")


def test_remove_deletes_a_symlink_not_its_target(store: js.JobStore, tmp_path: t.Any) -> None:
    target = tmp_path / "target"
    target.write_text("keep me")
    os.symlink(target, store.job_path(JID))
    assert store.remove(JID) == [store.job_path(JID)]
    assert target.read_text() == "keep me"
    assert not os.path.lexists(store.job_path(JID))


# --- missing and corrupt status files ---------------------------------------------
def test_not_found_names_the_path(store: js.JobStore) -> None:
    with pytest.raises(ids.JobNotFound) as err:
        store.read(JID)
    assert store.job_path(JID) in str(err.value)
    assert isinstance(err.value, ids.JobError)
    assert not store.exists(JID)
    assert store.mtime_ns(JID) is None


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "empty"),
        (b"   \n\t", "empty"),
        (b'{"started": true, "finished": fal', "not valid JSON"),
        (b'{"started": 1', "not valid JSON"),
        (b"\xff\xfe\x00garbage", "not valid JSON"),
        (b"\x00" * 64, "not valid JSON"),
        (b"[1, 2]", "JSON list"),
        (b'"text"', "JSON str"),
        (b"null", "JSON NoneType"),
        (b"42", "JSON int"),
        (b'{"a": 1} {"b": 2}', "not valid JSON"),
        (b"[" * 100_000, "not valid JSON"),  # nesting deeper than the parser's recursion limit
        (b'{"a":' * 50_000, "not valid JSON"),
    ],
)
def test_corrupt_status_file(store: js.JobStore, data: bytes, words: str) -> None:
    with open(store.job_path(JID), "wb") as f:
        f.write(data)
    with pytest.raises(ids.CorruptJob) as err:
        store.read(JID)
    assert store.job_path(JID) in str(err.value)
    assert words in str(err.value)


def test_truncated_status_file(store: js.JobStore) -> None:
    store.write(JID, rec.running_record(JID, store.job_path(JID), _meta()))
    with open(store.job_path(JID), "rb") as f:
        data = f.read()
    for cut in (1, len(data) // 2, len(data) - 1):
        with open(store.job_path(JID), "wb") as f:
            f.write(data[:cut])
        with pytest.raises(ids.CorruptJob, match=store.job_path(JID)):
            store.read(JID)


def test_read_accepts_non_utf8_bytes_inside_strings(store: js.JobStore) -> None:
    with open(store.job_path(JID), "wb") as f:
        f.write(b'{"stdout": "caf\xe9"}')
    assert store.read(JID)["stdout"] == "caf\udce9"


# --- listing, removal, names, lock ------------------------------------------------
def test_scan(store: js.JobStore) -> None:
    store.write(JID, {"v": 1})
    store.write(HEX, {"v": 1})
    store.create_private(store.extra_path(JID, "stdout"))
    other = "j999.1"
    store.create_private(os.path.join(store.path, other + ".tmp"))  # ansible-core's temporary file, no status file
    tmp = os.path.join(store.path, f".{JID}.123.456.tmp")
    store.create_private(tmp)
    store.create_private(os.path.join(store.path, "unrelated.txt"))
    store.name_set("web", JID)
    jobs, tmps = store.scan()
    assert jobs == {JID: [store.job_path(JID), store.extra_path(JID, "stdout")], HEX: [store.job_path(HEX)], other: [os.path.join(store.path, other + ".tmp")]}
    assert tmps == [tmp]


def test_remove_returns_every_removed_file(store: js.JobStore) -> None:
    path = store.job_path(JID)
    store.write(JID, rec.final_record(JID, path, {"rc": 0}, _meta(name="web"), ids.SUCCEEDED))
    extras = [store.extra_path(JID, s) for s in js.SUFFIXES]
    for extra in extras:
        store.create_private(extra, b"x")
    odd = path + ".tmp"  # ansible-core's async_wrapper writes <jid>.tmp then renames it
    store.create_private(odd, b"{}")
    store.name_set("web", JID)
    name_path = os.path.join(store.path, ".names", "web")
    removed = store.remove(JID)
    assert sorted(removed) == sorted([path, odd, name_path] + extras)
    for p in removed:
        assert not os.path.lexists(p)
    assert store.names() == []
    assert os.listdir(store.path) == [".names"]
    assert store.remove(JID) == []


def test_remove_keeps_name_of_a_newer_job(store: js.JobStore) -> None:
    store.write(JID, rec.final_record(JID, store.job_path(JID), {}, _meta(name="web"), ids.SUCCEEDED))
    store.write(HEX, rec.running_record(HEX, store.job_path(HEX), _meta(name="web")))
    store.name_set("web", HEX)
    assert store.remove(JID) == [store.job_path(JID)]
    assert store.name_get("web") == HEX


def test_remove_corrupt_job(store: js.JobStore) -> None:
    with open(store.job_path(JID), "wb") as f:
        f.write(b"{broken")
    store.create_private(store.extra_path(JID, "stderr"))
    assert sorted(store.remove(JID)) == sorted([store.job_path(JID), store.extra_path(JID, "stderr")])
    assert os.listdir(store.path) == []


def test_remove_extra_and_discard(store: js.JobStore, tmp_path: t.Any) -> None:
    store.write(JID, {"v": 1})
    for s in ("payload", "pyz"):
        store.create_private(store.extra_path(JID, s))
    store.remove_extra(JID, ["payload", "pyz", "args"])
    assert os.listdir(store.path) == [JID]
    outside = tmp_path / "outside"
    outside.write_text("x")
    for bad in (str(outside), store.path, os.path.join(store.path, ".names"), os.path.join(store.path, "..", "outside"), os.path.join(store.path, "")):
        with pytest.raises(ids.JobError, match="refusing"):
            store.discard(bad)
    assert outside.exists()
    assert store.discard(store.job_path(JID)) is True
    assert store.discard(store.job_path(JID)) is False


def test_name_index(store: js.JobStore) -> None:
    assert store.name_get("web") is None
    store.name_set("web", JID)
    assert store.name_get("web") == JID
    with open(os.path.join(store.path, ".names", "web")) as f:
        assert f.read() == JID
    store.name_set("web", HEX)
    assert store.name_get("web") == HEX
    assert store.names() == ["web"]
    assert not [e for e in os.listdir(os.path.join(store.path, ".names")) if e.endswith(".tmp")]
    assert [e for e in os.listdir(store.path) if e.endswith(".tmp")] == []


def test_name_index_refuses_bad_input(store: js.JobStore) -> None:
    with pytest.raises(ids.InvalidName):
        store.name_set("../evil", JID)
    with pytest.raises(ids.InvalidName):
        store.name_get("a/b")
    with pytest.raises(ids.InvalidJobId):
        store.name_set("web", "../../etc/passwd")
    assert store.names() == []
    assert not os.path.exists(os.path.join(store.path, "..", "evil"))


def test_corrupt_name_entry(store: js.JobStore) -> None:
    os.makedirs(os.path.join(store.path, ".names"))
    path = os.path.join(store.path, ".names", "web")
    with open(path, "w") as f:
        f.write("../../etc/passwd")
    with pytest.raises(ids.CorruptJob) as err:
        store.name_get("web")
    assert path in str(err.value)
    assert store.stale_name("web") == path
    assert store.name_remove_stale("web") == path
    assert not os.path.exists(path)


def test_stale_names(store: js.JobStore) -> None:
    store.write(JID, {"v": 1})
    store.name_set("live", JID)
    store.name_set("gone", HEX)
    assert store.stale_name("live") is None
    assert store.stale_name("live", gone=[JID]) == os.path.join(store.path, ".names", "live")
    assert store.stale_name("gone") == os.path.join(store.path, ".names", "gone")
    assert store.stale_name("never") is None
    assert store.name_remove_stale("live") is None
    assert store.name_remove_stale("gone") == os.path.join(store.path, ".names", "gone")
    assert store.names() == ["live"]


def test_lock_excludes_another_process(store: js.JobStore) -> None:
    """While this process holds the lock, another process cannot take it (flock LOCK_NB fails)."""
    probe = (
        "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR)\ntry:\n fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\nexcept OSError:\n sys.exit(3)\n"
    )
    lock_path = os.path.join(store.path, ".lock")
    with store.lock() as held:
        assert held.fd >= 0
        assert subprocess.run([sys.executable, "-c", probe, lock_path], check=False).returncode == 3
    assert held.fd == -1
    assert subprocess.run([sys.executable, "-c", probe, lock_path], check=False).returncode == 0


# --- output tails -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "lines", "cut", "expected"),
    [
        (b"", 3, False, []),
        (b"a\nb\nc\n", 2, False, ["b", "c"]),
        (b"a\nb\nc", 5, False, ["a", "b", "c"]),  # the last line has no newline yet
        (b"half of a line\nwhole\n", 5, True, ["whole"]),  # read from inside the file: the first piece is dropped
        (b"only a piece of one long line", 5, True, ["only a piece of one long line"]),
        (b"10%\r20%\r30%", 1, False, ["30%"]),  # progress bars: a carriage return ends a line
        (b"caf\xe9\n\xff\xfe\n", 5, False, ["caf\ufffd", "\ufffd\ufffd"]),
        (b"a\r\nb\r\n", 5, False, ["a", "b"]),
        (b"x\n", 0, False, []),
    ],
)
def test_tail_lines(data: bytes, lines: int, cut: bool, expected: list) -> None:
    assert js.tail_lines(data, lines, cut) == expected


def test_output_tail_is_bounded_and_leaves_the_file_alone(store: js.JobStore) -> None:
    fd = store.open_output(JID, "stdout")
    os.write(fd, b"".join(b"line %d\n" % i for i in range(1000)) + b"no newline yet")
    path = store.extra_path(JID, "stdout")
    before = os.stat(path)
    found = store.output_tail(JID, "stdout", 3, max_bytes=64)
    assert found is not None
    lines, size, dummy = found
    assert lines == ["line 998", "line 999", "no newline yet"]
    assert size == before.st_size
    # The writer's descriptor goes on where it was.
    os.write(fd, b"\n")
    os.close(fd)
    with open(path, "rb") as f:
        assert f.read().endswith(b"line 999\nno newline yet\n")
    long_line = b"x" * 10000
    with open(path, "wb") as f:
        f.write(long_line)
    assert (store.output_tail(JID, "stdout", 5, max_bytes=100) or [None])[0] == ["x" * 100]
    assert store.output_tail(JID, "stderr", 3) is None


def test_output_tail_refuses_a_symlink(store: js.JobStore, tmp_path: t.Any) -> None:
    secret = tmp_path / "secret"
    secret.write_text("not yours\n")
    os.symlink(str(secret), store.extra_path(JID, "stdout"))
    with pytest.raises(ids.CorruptJob, match="symlink"):
        store.output_tail(JID, "stdout", 3)


# --- slot queues --------------------------------------------------------------------------
def _jid(i: int) -> str:
    return f"j{100000000000 + i}.{4242}"


def test_slot_queue_is_first_come_first_served(store: js.JobStore) -> None:
    queue = slots.SlotQueue(store, "db")
    tickets = [queue.join(_jid(i), {"limit": 2}) for i in range(4)]
    assert [queue.ahead(t) for t in tickets] == [0, 1, 2, 3]
    assert sorted(os.listdir(queue.dir)) == [js.LOCK_FILE] + [f"{i + 1:012d}.{_jid(i)}" for i in range(4)]
    assert stat.S_IMODE(os.stat(os.path.dirname(queue.dir)).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(tickets[0].path).st_mode) == 0o600
    with open(tickets[2].path) as f:
        assert json.load(f) == {"limit": 2, "jid": _jid(2), "seq": 3}
    queue.leave(tickets[0])
    assert not os.path.exists(tickets[0].path)
    assert [queue.ahead(t) for t in tickets[1:]] == [0, 1, 2]


def test_a_ticket_nobody_holds_is_removed(store: js.JobStore) -> None:
    """A job whose supervisor and process died (kill -9) leaves its ticket unheld: it stops counting and goes."""
    queue = slots.SlotQueue(store, "db")
    tickets = [queue.join(_jid(i), {}) for i in range(3)]
    os.close(tickets[0].fd)  # what the kernel does when the holder dies
    assert queue.ahead(tickets[2]) == 1
    assert not os.path.exists(tickets[0].path)
    os.close(tickets[1].fd)
    assert queue.sweep() == [tickets[1].path]
    assert queue.ahead(tickets[2]) == 0


def test_a_ticket_held_by_the_jobs_process_still_counts(store: js.JobStore) -> None:
    """The job's process inherits the ticket: with its supervisor gone, the slot stays taken until it ends."""
    queue = slots.SlotQueue(store, "db")
    first = queue.join(_jid(0), {})
    second = queue.join(_jid(1), {})
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], pass_fds=(first.fd,))
    try:
        os.close(first.fd)  # the supervisor is gone; its process is not
        assert queue.ahead(second) == 1
    finally:
        child.kill()
        child.wait()
    assert queue.ahead(second) == 0


def test_slot_queue_join_on_a_full_disk_leaves_nothing(store: js.JobStore, monkeypatch: t.Any) -> None:
    queue = slots.SlotQueue(store, "db")

    def no_space(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(js.os, "fsync", no_space)
    with pytest.raises(ids.JobError, match="No space left on device") as info:
        queue.join(_jid(0), {})
    assert queue.dir in str(info.value)
    assert os.listdir(queue.dir) == [js.LOCK_FILE]


def test_has_room_counts_the_live_tickets_ahead(store: js.JobStore) -> None:
    queue = slots.SlotQueue(store, "db")
    tickets = [queue.join(_jid(i), {}) for i in range(3)]
    assert [queue.has_room(t, 2) for t in tickets] == [True, True, False]
    queue.leave(tickets[1])
    with pytest.raises(ids.JobError, match="is gone from the queue"):
        queue.has_room(tickets[1], 2)


def test_wait_turn_says_why_a_queued_job_never_runs(store: js.JobStore, monkeypatch: t.Any) -> None:
    """A queued job's supervisor waits here (SlotQueue.wait_turn): None when it may run, else killed or queue_timeout."""
    monkeypatch.setattr(slots, "QUEUE_RECHECK", 0.02)
    monkeypatch.setattr(slots, "QUEUE_TICK", 0.01)
    queue = slots.SlotQueue(store, "db")
    queue.join(_jid(0), {})
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        time.sleep(seconds)

    turn = iter([False, False, True])
    assert queue.wait_turn(lambda: next(turn), 0, lambda: False, sleep) is None
    assert len(slept) >= 2 and set(slept) == {0.01}
    asked: list[int] = []

    def never() -> bool:
        asked.append(1)
        return False

    assert queue.wait_turn(never, 0.05, lambda: False, sleep) == res.QUEUE_TIMEOUT
    assert asked and max(slept) <= 0.01
    assert queue.wait_turn(lambda: True, 0, lambda: True, sleep) == ids.KILLED


@pytest.mark.parametrize("slot", ["", "../x", "a/b", ".hidden", "x" * 129])
def test_slot_names_are_checked(store: js.JobStore, slot: str) -> None:
    with pytest.raises(ids.InvalidName, match="invalid slot name"):
        slots.SlotQueue(store, slot)


# --- a module attempt's temporary directory, named in the record -------------------------
def test_remove_takes_the_module_tmpdir_the_record_names(store: js.JobStore, tmp_path: t.Any) -> None:
    own = tmp_path / tmpdirs.tmpdir_name(JID, 2)
    (own / "ansible_x_payload_abc").mkdir(parents=True)
    (own / "ansible_x_payload_abc" / "payload.zip").write_bytes(b"zip")
    store.write(JID, rec.final_record(JID, store.job_path(JID), {}, _meta(tmpdir=str(own)), ids.VANISHED))
    assert tmpdirs.recorded_tmpdir(JID, store.read(JID)["detached"]) == str(own)
    assert store.remove(JID) == [str(own), store.job_path(JID)]
    assert not own.exists()


def test_remove_of_a_running_job_leaves_its_module_tmpdir(store: js.JobStore, tmp_path: t.Any) -> None:
    """(A cleanup of a job that still runs: its module may still use the directory; its supervisor removes it.)"""
    own = tmp_path / tmpdirs.tmpdir_name(JID, 1)
    own.mkdir()
    store.write(JID, rec.running_record(JID, store.job_path(JID), _meta(tmpdir=str(own))))
    assert store.remove(JID) == [store.job_path(JID)]
    assert own.is_dir()


@pytest.mark.parametrize(
    "case",
    ["another job's", "not named for a job", "relative", "a symlink", "a file", "missing", "not a string"],
)
def test_a_recorded_tmpdir_that_is_not_the_jobs_own_is_left_alone(store: js.JobStore, tmp_path: t.Any, case: str) -> None:
    target = tmp_path / "precious"
    target.mkdir()
    (target / "keep").write_text("x")
    path: t.Any = tmp_path / tmpdirs.tmpdir_name(JID, 1)
    if case == "another job's":
        path = tmp_path / tmpdirs.tmpdir_name(HEX, 1)
        path.mkdir()
    elif case == "not named for a job":
        path = target
    elif case == "relative":
        path = tmpdirs.tmpdir_name(JID, 1)
    elif case == "a symlink":
        path.symlink_to(target)
    elif case == "a file":
        path.write_text("x")
    elif case == "not a string":
        path = ["/tmp"]
    store.write(JID, rec.final_record(JID, store.job_path(JID), {}, _meta(tmpdir=path if isinstance(path, list) else str(path)), ids.VANISHED))
    assert tmpdirs.recorded_tmpdir(JID, store.read(JID)["detached"]) is None
    assert store.remove(JID) == [store.job_path(JID)]
    assert (target / "keep").read_text() == "x"
    if case in ("another job's", "a file"):
        assert path.exists()
