# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""Property tests (hypothesis) of _jobstore: job ids never reach outside the job directory, any status file
content parses or raises CorruptJob, and write/read round-trips."""

from __future__ import annotations

import json
import os
import typing as t

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ansible_collections.detached.jobs.plugins.module_utils import _ids as ids
from ansible_collections.detached.jobs.plugins.module_utils import _jobstore as js
from ansible_collections.detached.jobs.plugins.module_utils import _records as rec
from ansible_collections.detached.jobs.plugins.module_utils import _slots as slots

JID = "j123456789012.4242"
# Few enough examples to keep the unit suite fast; the database is off so that no state is left in the checkout.


def _settings(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


# Strings close to job ids (so the interesting boundary is explored), and anything at all.
near_jids = st.one_of(
    st.from_regex(r"\Aj[0-9]{1,22}\.[0-9]{1,12}\Z"),
    st.from_regex(r"\A[0-9a-fA-F]{15,17}\Z"),
    st.from_regex(r"\A[j./0-9a-f\x00\n ]{0,40}\Z"),
)
any_text = st.one_of(near_jids, st.text(), st.text(alphabet=st.characters(codec="utf-8"), max_size=300))


@_settings(200)
@given(candidate=any_text)
@example("..")
@example("/etc/passwd")
@example("j1.1/../../x")
@example("j1.1\n")
@example("j١.١")
@example("")
@example("\x00")
def test_jid_is_inside_the_directory_or_invalid(store: js.JobStore, candidate: str) -> None:
    try:
        path = store.job_path(candidate)
    except ids.InvalidJobId:
        with pytest.raises(ids.InvalidJobId):
            ids.validate_jid(candidate)
        return
    assert ids.validate_jid(candidate) == candidate
    assert os.path.dirname(path) == store.path
    assert os.path.basename(path) == candidate
    assert os.path.normpath(path) == path
    assert os.path.realpath(path) == os.path.join(os.path.realpath(store.path), candidate)
    assert candidate.isascii() and "/" not in candidate and candidate not in (".", "..")
    for suffix in js.SUFFIXES:
        assert os.path.dirname(store.extra_path(candidate, suffix)) == store.path


@_settings(100)
@given(candidate=any_text)
def test_name_path_is_inside_the_names_directory_or_invalid(store: js.JobStore, candidate: str) -> None:
    try:
        path = store._name_path(candidate)
    except ids.InvalidName:
        return
    assert os.path.dirname(path) == os.path.join(store.path, js.NAMES_DIR)
    assert os.path.basename(path) == candidate
    assert candidate not in (".", "..")


@st.composite
def status_bytes(draw: st.DrawFn) -> bytes:
    """Anything: random bytes, JSON-ish fragments, valid JSON of any type, truncated or padded."""
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return draw(st.binary(max_size=500))
    json_values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
        lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
        max_leaves=10,
    )

    data = json.dumps(draw(json_values)).encode()
    if kind == 1:
        return data
    if kind == 2:
        return data[: draw(st.integers(0, len(data)))]
    return draw(st.binary(max_size=8)) + data + draw(st.binary(max_size=8))


@_settings(150)
@given(data=status_bytes())
@example(b"")
@example(b"[" * 100_000)
@example(b'{"a":' * 100_000)
@example(b"\xef\xbb\xbf{}")
@example(b'{"a": NaN}')
@example(b"{" + b'"a":1,' * 10 + b"}")
@example(b"1" * 5000)
def test_any_status_file_parses_or_is_corrupt(store: js.JobStore, data: bytes) -> None:
    path = store.job_path(JID)
    with open(path, "wb") as f:
        f.write(data)
    try:
        record = store.read(JID)
    except ids.CorruptJob as ex:
        assert path in str(ex)
        return
    assert isinstance(record, dict)
    # every reader-facing helper copes with whatever object it is
    view = rec.view(JID, path, record)
    assert view["finished"] in (True, False) and isinstance(view["detached"], dict)
    assert ids.state_of(record) in ids.STATES


json_scalars = st.none() | st.booleans() | st.integers(min_value=-(10**30), max_value=10**30) | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5),
    max_leaves=12,
)


@_settings(60)
@given(result=st.dictionaries(st.text(), json_values, max_size=8), jid=st.sampled_from([JID, "0123456789abcdef", "j1.1"]))
def test_write_read_roundtrip(store: js.JobStore, result: dict, jid: str) -> None:
    store.write(jid, result)
    assert store.read(jid) == result
    assert [e for e in os.listdir(store.path) if e.endswith(".tmp")] == []
    # and as a final record of ours
    meta = {"name": None, "module": None, "cmd": ["x"], "pid": 1}
    record = rec.final_record(jid, store.job_path(jid), result, meta, ids.SUCCEEDED)
    store.write(jid, record)
    back = store.read(jid)
    assert back == record
    assert ids.is_finished(back) and ids.state_of(back) == ids.SUCCEEDED
    for key, value in result.items():
        if key not in ("started", "finished", "ansible_job_id", "results_file", "detached"):
            assert back[key] == value


# --- slot queues and retry delays -------------------------------------------------------
queue_ops = st.lists(st.tuples(st.sampled_from(["join", "die", "leave"]), st.integers(0, 7)), max_size=40)


@_settings(60)
@given(ops=queue_ops, limit=st.integers(1, 3))
def test_slot_queue_order(tmp_path_factory: t.Any, ops: list, limit: int) -> None:
    """Whatever joins, dies (kill -9) or leaves in whatever order: every live ticket sees exactly the
    live tickets that joined before it ahead of it, so the first `limit` of them, and no others, may run."""
    store = js.JobStore(str(tmp_path_factory.mktemp("slots")))
    queue = slots.SlotQueue(store, "s")
    live: list[tuple[int, slots.SlotTicket]] = []  # in join order
    n = 0
    try:
        for op, which in ops:
            if op == "join":
                live.append((n, queue.join(f"j{100000000000 + n}.1", {})))
                n += 1
            elif live:
                dummy, gone = live.pop(which % len(live))
                if op == "die":
                    os.close(gone.fd)
                else:
                    queue.leave(gone)
            assert [queue.ahead(ticket) for dummy, ticket in live] == list(range(len(live)))
            may_run = [i for i, ticket in live if (queue.ahead(ticket) or 0) < limit]
            assert may_run == [i for i, dummy in live[:limit]]
    finally:
        for pair in live:
            queue.leave(pair[1])


@_settings(200)
@given(
    delay=st.floats(0, 1000),
    backoff=st.floats(1, 10),
    max_delay=st.one_of(st.just(0.0), st.floats(0.001, 5000)),
    attempt=st.integers(1, 60),
)
def test_retry_delays_grow_and_stay_under_the_maximum(delay: float, backoff: float, max_delay: float, attempt: int) -> None:
    from ansible_collections.detached.jobs.plugins.module_utils import _options

    now = _options.retry_delay(attempt, delay, backoff, max_delay)
    after = _options.retry_delay(attempt + 1, delay, backoff, max_delay)
    assert 0 <= now <= after
    if max_delay:
        assert now <= max_delay
    else:
        assert now == pytest.approx(delay * backoff ** (attempt - 1))


@_settings(12)
@given(
    rcs=st.lists(st.sampled_from([0, 1, 2]), min_size=1, max_size=4),
    retries=st.integers(0, 3),
)
def test_attempt_records_follow_the_exit_codes(tmp_path_factory: t.Any, rcs: list, retries: int) -> None:
    """A job whose attempt N exits with rcs[N-1] (0 after the list): one record per attempt that
    ran, in order, each with its own rc and output, and attempts stop at the first success or
    after retries+1 of them; the job's result is the last attempt's."""
    from ansible_collections.detached.jobs.plugins.module_utils import _control as ctl
    from ansible_collections.detached.jobs.plugins.module_utils import _launch
    from ansible_collections.detached.jobs.tests.unit.plugins.module_utils._jobs import wait_done

    where = tmp_path_factory.mktemp("attempts")
    (where / "rcs").write_text("".join(f"{rc}\n" for rc in rcs))
    script = f'cd {where}; n=$(($(cat n 2>/dev/null || echo 0) + 1)); echo $n > n; echo "run $n"; rc=$(sed -n "${{n}}p" rcs); exit ${{rc:-0}}'
    store = js.JobStore(str(where / "jobs"))
    (started,) = _launch.start(store, [ctl.JobSpec({"argv": ["sh", "-c", script], "retries": retries, "retry_delay": 0})])
    view = wait_done(store, started["ansible_job_id"])
    codes = rcs + [0] * (retries + 1)
    ran = next((i + 1 for i, rc in enumerate(codes) if rc == 0), len(codes))
    ran = min(ran, retries + 1)
    meta = view["detached"]
    if not retries:
        assert "attempts" not in meta
        assert view["rc"] == codes[0]
        return
    assert [a["attempt"] for a in meta["attempts"]] == list(range(1, ran + 1))
    assert [a["rc"] for a in meta["attempts"]] == codes[:ran]
    assert [a["tail"]["stdout"] for a in meta["attempts"]] == [[f"run {n}"] for n in range(1, ran + 1)]
    assert meta["attempt"] == ran
    assert view["rc"] == codes[ran - 1] and view["stdout"] == f"run {ran}"
    assert meta["state"] == (ids.SUCCEEDED if codes[ran - 1] == 0 else ids.FAILED)
