# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""Unit tests of _jobrefs: every accepted shape of the `jobs` option, and errors that name the bad item."""

from __future__ import annotations

import typing as t

import pytest

from ansible_collections.detached.jobs.plugins.plugin_utils._jobrefs import JobRef, collect

J1, J2, J3, HEX = "j111111111111.100", "j222222222222.200", "j333333333333.300", "0123456789abcdef"
DIR = "/home/u/.ansible_async"


def _started(jid: str, name: str | None = None, **extra: t.Any) -> dict:
    """A registered result of detached.jobs.start (one job)."""
    return dict(
        {
            "changed": True,
            "started": True,
            "finished": False,
            "attached": False,
            "ansible_job_id": jid,
            "results_file": f"{DIR}/{jid}",
            "detached": {"version": 1, "state": "running", "name": name, "module": None, "cmd": ["sleep", "9"]},
        },
        **extra,
    )


def _async(jid: str) -> dict:
    """A registered result of a task with `async: N, poll: 0` (ansible-core's async_wrapper)."""
    return {"ansible_job_id": jid, "changed": True, "failed": False, "finished": 0, "results_file": f"/root/.ansible_async/{jid}", "started": 1}


def jids(refs: list[JobRef]) -> list[str | None]:
    return [r.jid for r in refs]


def errors(refs: list[JobRef]) -> list[str]:
    return [r.error for r in refs if r.error]


# --- accepted shapes --------------------------------------------------------------------
def test_plain_ids() -> None:
    assert jids(collect(J1)) == [J1]
    assert jids(collect([J1, HEX])) == [J1, HEX]
    assert jids(collect((J1, J2))) == [J1, J2]
    assert jids(collect(f"  {J1}\n")) == [J1]
    assert collect([]) == []
    refs = collect(J1)
    assert refs[0].label is None and refs[0].async_dir is None and refs[0].error is None


def test_start_result() -> None:
    (ref,) = collect(_started(J1, name="web"))
    assert ref.jid == J1 and ref.label == "web" and ref.async_dir == DIR and ref.error is None


def test_start_result_async_dir_fallback() -> None:
    result = _started(J1)
    result["results_file"] = "relative/path"
    result["async_dir"] = "~/.jobs"
    (ref,) = collect(result)
    assert ref.async_dir == "~/.jobs" and ref.label is None
    del result["results_file"]
    assert collect(result)[0].async_dir == "~/.jobs"
    del result["async_dir"]
    assert collect(result)[0].async_dir is None


def test_results_file_at_the_root() -> None:
    assert collect({"ansible_job_id": J1, "results_file": f"/{J1}"})[0].async_dir == "/"


def test_batch_start_result() -> None:
    batch = {"changed": True, "async_dir": DIR, "jobs": [_started(J1, "a"), _started(J2, "b"), _started(J3)]}
    refs = collect(batch)
    assert jids(refs) == [J1, J2, J3]
    assert [r.label for r in refs] == ["a", "b", None]
    assert all(r.async_dir == DIR for r in refs)


def test_batch_with_a_failed_job() -> None:
    batch = {"jobs": [_started(J1), {"failed": True, "started": False, "finished": True, "msg": "cannot start 'nope'"}]}
    refs = collect(batch)
    assert jids(refs) == [J1, None]
    assert errors(refs) == ["jobs.jobs[1] (no label) did not start a job: cannot start 'nope'"]


def test_async_keyword_result() -> None:
    (ref,) = collect(_async(J1))
    assert ref.jid == J1 and ref.async_dir == "/root/.ansible_async" and ref.label is None


def test_loop_results() -> None:
    loop = {
        "changed": True,
        "msg": "All items completed",
        "results": [
            dict(_async(J1), item="first", ansible_loop_var="item"),
            dict(_started(J2), item={"name": "web", "cmd": "x"}, ansible_loop_var="item"),
            dict(_started(J3), host="db", ansible_loop_var="host"),
            dict(_async(HEX), _ansible_item_label="custom label", item="ignored", ansible_loop_var="item"),
            {"skipped": True, "item": "skipped one", "ansible_loop_var": "item", "changed": False},
        ],
    }
    refs = collect(loop)
    assert jids(refs) == [J1, J2, J3, HEX]
    assert [r.label for r in refs] == ["first", "web", "db", "custom label"]


def test_loop_over_batch_starts() -> None:
    loop = {"results": [dict({"jobs": [_started(J1), _started(J2)]}, item="x", ansible_loop_var="item"), dict(_started(J3), item="y")]}
    refs = collect(loop)
    assert jids(refs) == [J1, J2, J3]
    assert [r.label for r in refs] == ["x", "x", "y"]


def test_loop_label_from_long_item_is_shortened() -> None:
    (ref,) = collect({"results": [dict(_async(J1), item="z" * 200)]})
    assert ref.label is not None and len(ref.label) == 60 and ref.label.endswith("...")


def test_loop_label_from_mapping_item() -> None:
    for key in ("name", "label", "cmd", "module"):
        (ref,) = collect({"results": [dict(_async(J1), item={key: f"by-{key}", "other": 1})]})
        assert ref.label == f"by-{key}"
    # A mapping item with none of these keys is not labelled with the whole mapping: its plain values, key=value.
    (ref,) = collect({"results": [dict(_async(J1), item={"other": 1, "path": "/srv/data", "opts": {"a": 1}, "tags": ["x"]})]})
    assert ref.jid == J1 and ref.label == "other=1, path=/srv/data"
    (ref,) = collect({"results": [dict(_async(J1), item={"name": None, "other": 1})]})
    assert ref.label == "other=1"
    (ref,) = collect({"results": [dict(_async(J1), item={"db": "x" * 100, "retention": 7})]})
    assert ref.label == "db=" + "x" * 54 + "..."
    # Nothing plain in it, or a list item: no label (the job id says which job it is).
    (ref,) = collect({"results": [dict(_async(J1), item={"opts": {"a": 1}, "none": None})]})
    assert ref.label is None
    (ref,) = collect({"results": [dict(_async(J1), item=["a", "b"])]})
    assert ref.label is None


def test_registered_loop_with_loop_control_label_as_ansible_core_keeps_it() -> None:
    """ansible-core (2.16 to 2.21) keeps no _ansible_item_label in what register keeps: the job's name, else the item's short form."""
    loop = {
        "results": [
            dict(_started(J1, name="backup-orders"), item={"db": "orders", "retention": 7}, ansible_loop_var="item"),
            dict(_async(J2), item={"db": "users", "retention": 30}, ansible_loop_var="item"),
            dict(_async(J3), db_item={"db": "stock", "opts": {"compress": True}}, ansible_loop_var="db_item"),
        ]
    }
    assert [r.label for r in collect(loop)] == ["backup-orders", "db=users, retention=30", "db=stock"]


def test_loop_label_of_a_mapping_item_without_name_is_the_jobs_name() -> None:
    (ref,) = collect({"results": [dict(_started(J1, name="nightly-backup"), item={"db": "orders", "retention": 7})]})
    assert ref.label == "nightly-backup"


def test_loop_control_label_wins() -> None:
    """loop_control.label (_ansible_item_label in a loop item's result) wins over the job's name and the item."""
    loop = {
        "results": [
            dict(_started(J1, name="job-a"), item={"name": "item-a"}, _ansible_item_label="label a", ansible_loop_var="item"),
            dict({"jobs": [_started(J2, "b1"), _started(J3, "b2")]}, item="b", _ansible_item_label="batch b", ansible_loop_var="item"),
        ]
    }
    refs = collect(loop)
    assert [(r.jid, r.label) for r in refs] == [(J1, "label a"), (J2, "batch b"), (J3, "batch b")]


def test_default_item_label_is_not_a_loop_control_label() -> None:
    """Without loop_control.label, ansible-core's label is the item itself: the job's name and the item's name are used."""
    item = {"db": "orders"}
    refs = collect(
        {
            "results": [
                dict(_started(J1, name="backup-orders"), item=item, _ansible_item_label=dict(item), ansible_loop_var="item"),
                dict(_async(J2), item={"name": "users"}, _ansible_item_label={"name": "users"}, ansible_loop_var="item"),
                dict(_async(J3), item="stock", _ansible_item_label="stock", ansible_loop_var="item"),
            ]
        }
    )
    assert [r.label for r in refs] == ["backup-orders", "users", "stock"]


def test_jobs_name_wins_over_the_loop_item() -> None:
    """A registered loop result as ansible-core keeps it (no _ansible_* keys): the job's own name, else the item."""
    loop = {
        "results": [
            dict(_started(J1, name="backup-orders"), item="orders", ansible_loop_var="item"),
            dict(_started(J2), item="users", ansible_loop_var="item"),
            dict({"jobs": [_started(J3, "stock-a"), _started(HEX)]}, item="stock", ansible_loop_var="item"),
        ]
    }
    assert [r.label for r in collect(loop)] == ["backup-orders", "users", "stock-a", "stock"]


def test_failed_loop_item_is_labelled_in_the_error() -> None:
    (ref,) = collect({"results": [dict({"failed": True, "msg": "boom"}, item={"name": "web", "x": 1}, ansible_loop_var="item")]})
    assert ref.error == "jobs.results[0] (web) did not start a job: boom"
    (ref,) = collect({"results": [dict({"failed": True, "msg": "boom"}, item={"x": 1}, ansible_loop_var="item")]})
    assert ref.error == "jobs.results[0] (x=1) did not start a job: boom"
    (ref,) = collect({"results": [dict({"failed": True, "msg": "boom"}, item={"x": [1]}, ansible_loop_var="item")]})
    assert ref.error == "jobs.results[0] (no label) did not start a job: boom"


def test_nested_lists_and_mixtures() -> None:
    value = [[J1, [_async(J2)]], {"jobs": [_started(J3)]}, {"results": [HEX]}]
    assert jids(collect(value)) == [J1, J2, J3, HEX]


def test_duplicates_dropped_first_wins() -> None:
    refs = collect([_started(J1, name="web"), J1, _async(J2), J2, J1])
    assert jids(refs) == [J1, J2]
    assert refs[0].label == "web"


def test_skipped_result() -> None:
    assert collect({"skipped": True, "changed": False, "skip_reason": "Conditional result was False"}) == []
    assert jids(collect([{"skipped": True}, J1])) == [J1]


def test_check_mode_start_result() -> None:
    """A check-mode start that would have started a job gives nothing to wait for; an attached one its job."""
    assert collect({"changed": True, "would_start": True, "started": False, "detached": {"name": "x"}}) == []
    batch = {"jobs": [{"would_start": True, "ansible_job_id": None}, _started(J1)], "ansible_job_ids": [None, J1]}
    assert jids(collect(batch)) == [J1]


def test_type_names_are_plain() -> None:
    """ansible-core 2.19 wraps values in private subclasses; the message names the plain type."""

    class _AnsibleTaggedInt(int):
        pass

    assert errors(collect(_AnsibleTaggedInt(42))) == ["jobs: expected a job id, a registered result or a list, got int 42"]


def test_a_result_with_ansible_job_id_is_a_job_even_with_results_or_jobs() -> None:
    assert jids(collect({"ansible_job_id": J1, "results": [J2], "jobs": [J3]})) == [J1]


# --- errors ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("not-a-job", "jobs: invalid job id 'not-a-job'"),
        ("../../etc", "jobs: invalid job id '../../etc'"),
        ("", "jobs: invalid job id ''"),
        (42, "jobs: expected a job id, a registered result or a list, got int 42"),
        (None, "jobs: expected a job id, a registered result or a list, got NoneType None"),
        (4.5, "jobs: expected a job id, a registered result or a list, got float 4.5"),
        ({"changed": True, "rc": 0}, "jobs is not a job: a mapping without ansible_job_id (keys: changed, rc)"),
        ({"failed": True, "msg": "boom"}, "jobs (no label) did not start a job: boom"),
        ({"ansible_job_id": "bad id"}, "jobs: invalid job id 'bad id'"),
        ({"ansible_job_id": 17}, "jobs: expected a job id, a registered result or a list, got int 17"),
    ],
)
def test_single_bad_value(value: object, expected: str) -> None:
    (ref,) = collect(value)
    assert ref.jid is None
    assert ref.error is not None and ref.error.startswith(expected), ref.error


def test_errors_name_the_bad_item_deep_inside() -> None:
    value = [
        J1,
        "bogus",
        {"results": [_async(J2), {"failed": True, "msg": "no such file", "item": "third"}, 7]},
        {"jobs": [_started(J3), {"rc": 0}]},
        [[None]],
    ]
    refs = collect(value)
    assert jids(refs) == [J1, None, J2, None, None, J3, None, None]
    errs = errors(refs)
    assert errs[0].startswith("jobs[1]: invalid job id 'bogus'")
    assert errs[1] == "jobs[2].results[1] (third) did not start a job: no such file"
    assert errs[2].startswith("jobs[2].results[2]: expected a job id") and "int 7" in errs[2]
    assert errs[3] == "jobs[3].jobs[1] is not a job: a mapping without ansible_job_id (keys: rc)"
    assert errs[4].startswith("jobs[4][0][0]: expected a job id") and "NoneType" in errs[4]


def test_long_values_are_shortened_in_errors() -> None:
    (ref,) = collect({"failed": True, "msg": "m" * 1000})
    assert ref.error is not None and len(ref.error) < 400 and ref.error.endswith("...")
    (ref,) = collect(["x" * 500])
    assert ref.error is not None and "invalid job id" in ref.error
    keys = {f"k{i:02d}": i for i in range(20)}
    (ref,) = collect(keys)
    assert ref.error is not None and "k07" in ref.error and "k08" not in ref.error


def test_errors_are_not_deduplicated() -> None:
    refs = collect(["bad", "bad"])
    assert len(errors(refs)) == 2


def test_repr() -> None:
    assert repr(JobRef(J1, label="web")) == f"JobRef({J1!r}, label='web', error=None)"


def test_start_loop_label_wins_over_the_name_and_the_item() -> None:
    """detached.jobs.start returns its loop_control.label as loop_label (ansible-core keeps its own copy out of registered results)."""
    loop = {
        "results": [
            dict(_started(J1, name="job-a"), loop_label="backup orders", item={"db": "orders"}, ansible_loop_var="item"),
            dict({"jobs": [_started(J2, "b1"), _started(J3, "b2")], "loop_label": "batch b"}, item="b", ansible_loop_var="item"),
            dict(_started(HEX, name="job-c"), item={"db": "users"}, ansible_loop_var="item"),
        ]
    }
    assert [(r.jid, r.label) for r in collect(loop)] == [(J1, "backup orders"), (J2, "batch b"), (J3, "batch b"), (HEX, "job-c")]
