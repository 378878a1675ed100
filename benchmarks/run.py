# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""Side-by-side benchmark: ansible-core's ``async:`` keyword against detached.jobs, on localhost.

    python benchmarks/run.py [--quick] [-n N] [--repeat R] [--out DIR] [--python PATH] [--docs]

Every repeat is one ansible-playbook run (benchmarks/bench.yml) that measures both sides, in
alternating order, against localhost (ansible_connection=local):

1. launch: a loop of N tasks that each start a ``sleep`` job: ``ansible.builtin.command`` with
   ``async: 60, poll: 0`` against ``detached.jobs.start cmd=...``; plus a loop of
   ``ansible.builtin.command: /bin/true`` as the floor. Seconds per launch.
2. batch: one ``detached.jobs.start`` with ``jobs:`` (N specs) against the keyword loop of N.
3. wait latency: N jobs end at a common deadline (an absolute epoch written once every job has
   started; each job records when it really ended); per-job ``ansible.builtin.async_status``
   ``until`` loops (delay 1) against one ``detached.jobs.wait``. The figure is the time the
   waiting task returned minus the time the last job ended.
4. memory: N ``sleep`` jobs running; the memory the wrapper adds per job: every process of each
   job's session except the ``sleep`` itself and the module's own process (the keyword:
   async_wrapper's two processes, its ``command`` module process left out; detached.jobs: the
   supervisor). Also reported with the module's process counted. PSS from
   /proc/<pid>/smaps_rollup (RSS where that is missing).
5. keyword mode (docs/keyword.md): the keyword's launch loop and memory jobs again, in a second
   ansible-playbook run with ANSIBLE_LIBRARY set to the collection's keyword/ directory, against
   the plain keyword (the module's own process, there <jid>.payload, left out as in 4). The two
   runs of a repeat take turns going first, and each builds the command module before its
   launch loop (the floor step; an unmeasured warm-up in the keyword-mode run).
6. module mode: ``detached.jobs.start module=ansible.builtin.command`` (the path every module but
   a plain command takes): its launch loop against the keyword's (the three launch loops take
   turns going first), and the memory per running job of every process besides the ``sleep``
   (the supervisor and the command module's process) against the keyword's (its two wrapper
   processes and the same module's). The memory jobs are one start of N jobs, which share their
   module's imports (docs/architecture.md); the same N jobs started one per task, in a loop, as
   N interpreters, are reported too.

Tasks are timed by the bench_timer callback (benchmarks/callback_plugins): from the moment the
strategy starts the task to the moment its final result arrives, so playbook start-up is not
counted. Each figure is the median of the repeats. Every job and process is killed afterwards
and the scratch directory (job directory, remote tmp) removed.

Writes DIR/results.json and DIR/benchmark.png (matplotlib, if installed); ``--docs`` also copies
the chart to docs/performance.png.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import typing as t

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PLAYBOOK = os.path.join(HERE, "bench.yml")
DEADLINE_JOB = os.path.join(HERE, "deadline_job.py")
MARGIN = 3  # seconds between "every job started" and the jobs' common deadline

# The sleep argument of each kind of job: "<seconds>.<kind digit><run token>", so that this run's
# jobs (and only them) can be found in /proc.
SLEEP_KINDS = {
    "launch_keyword": ("30", "1"),
    "launch_detached": ("30", "2"),
    "batch_detached": ("30", "3"),
    "memory_keyword": ("60", "4"),
    "memory_detached": ("60", "5"),
    "launch_switch": ("30", "6"),
    "memory_switch": ("60", "7"),
    "launch_module": ("30", "8"),
    "memory_module": ("60", "9"),
    "memory_module_loop": ("60", "0"),
}

TARGETS = {
    "launch": 2.0,
    "batch": 10.0,
    "wait": 3.0,
    "wait_within": 1.0,
    "memory": 3.0,
    # keyword mode against the plain keyword (issue 11): launch no slower, memory at least 2x less
    "launch_switch": 1.0,
    "memory_switch": 2.0,
    # module mode (start module=ansible.builtin.command) against the keyword (issue 13): launch at
    # least 2x faster, memory per running job (every process besides the command) at least 2x less
    "launch_module": 2.0,
    "memory_module": 2.0,
}


class BenchError(Exception):
    pass


# --------------------------------------------------------------------------------------------
# /proc


class Proc(t.NamedTuple):
    pid: int
    ppid: int
    sid: int
    state: str
    argv: list[str]


def scan_procs() -> dict[int, Proc]:
    procs: dict[int, Proc] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        try:
            with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as stream:
                stat = stream.read()
            with open(f"/proc/{pid}/cmdline", "rb") as raw:
                cmdline = raw.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        argv = [part.decode("utf-8", "replace") for part in cmdline.split(b"\0")[:-1]]
        procs[pid] = Proc(pid, int(fields[1]), int(fields[3]), fields[0], argv)
    return procs


def sleep_arg(kind: str, token: str) -> str:
    seconds, digit = SLEEP_KINDS[kind]
    return f"{seconds}.{digit}{token}"


def is_tagged_sleep(proc: Proc, token: str) -> bool:
    return len(proc.argv) == 2 and os.path.basename(proc.argv[0]) == "sleep" and re.fullmatch(r"\d+\.\d" + re.escape(token), proc.argv[1]) is not None


def is_under(proc: Proc, work: str) -> bool:
    """The process runs something from the run's scratch directory (a job's wrapper, supervisor, module, a worker)."""
    return any(arg.startswith(work + os.sep) for arg in proc.argv)


def protected_sessions() -> set[int]:
    """Sessions never to kill: 0, 1, ours and our ancestors'."""
    keep = {0, 1, os.getsid(0)}
    procs = scan_procs()
    pid = os.getpid()
    while pid in procs and pid > 1:
        keep.add(procs[pid].sid)
        pid = procs[pid].ppid
    return keep


def reap(token: str, work: str | None) -> int:
    """SIGKILL every process in the session of a job of this run; returns how many were killed.

    A job of this run: a tagged sleep, or anything running from the scratch directory (the
    deadline jobs, the keyword's async_wrapper and module processes, the supervisors). Sessions
    of this process and of its ancestors are never touched.
    """
    keep = protected_sessions()
    killed = 0
    give_up = time.monotonic() + 10
    while time.monotonic() < give_up:
        procs = scan_procs()
        sids = {p.sid for p in procs.values() if is_tagged_sleep(p, token) or (work and is_under(p, work))} - keep
        if not sids:
            return killed
        for proc in procs.values():
            if proc.sid in sids:
                try:
                    os.kill(proc.pid, signal.SIGKILL)
                    killed += 1
                except OSError:
                    pass
        time.sleep(0.1)
    raise BenchError(f"processes of run {token} survive SIGKILL")


def kill_tree(pid: int) -> None:
    """SIGKILL a process and all its descendants (ansible-playbook and its workers)."""
    procs = scan_procs()
    tree, todo = set(), [pid]
    while todo:
        current = todo.pop()
        tree.add(current)
        todo.extend(p.pid for p in procs.values() if p.ppid == current and p.pid not in tree)
    for member in tree:
        try:
            os.kill(member, signal.SIGKILL)
        except OSError:
            pass


def memory_of(pid: int) -> dict[str, int] | None:
    """kB of one process: rss (VmRSS), and pss and uss (smaps_rollup) where available."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as stream:
            for line in stream:
                if line.startswith("VmRSS:"):
                    out["rss"] = int(line.split()[1])
    except OSError:
        return None
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="utf-8") as stream:
            rollup = {line.split(":")[0]: int(line.split()[1]) for line in stream if line.split()[-1:] == ["kB"]}
        out["pss"] = rollup["Pss"]
        out["uss"] = rollup.get("Private_Clean", 0) + rollup.get("Private_Dirty", 0)
    except (OSError, KeyError, ValueError, IndexError):
        pass
    return out


def measure_memory(arg: str, n: int) -> dict[str, t.Any]:
    """Memory per job of the n jobs whose command is ``sleep <arg>``, the sleep excluded."""
    give_up = time.time() + 10
    while True:
        procs = scan_procs()
        sleeps = {p.pid for p in procs.values() if len(p.argv) == 2 and os.path.basename(p.argv[0]) == "sleep" and p.argv[1] == arg}
        if len(sleeps) >= n or time.time() > give_up:
            break
        time.sleep(0.2)
    if len(sleeps) != n:
        raise BenchError(f"expected {n} running 'sleep {arg}' jobs, found {len(sleeps)}")
    sids = {procs[pid].sid for pid in sleeps}
    # Zombies (exited, not yet reaped) hold no memory.
    members = sorted(p.pid for p in procs.values() if p.sid in sids and p.pid not in sleeps and p.state != "Z")
    # The same set should be found by walking from each sleep up its parents; results.json says whether it was.
    chain: set[int] = set()
    for pid in sleeps:
        parent = procs[pid].ppid
        while parent in procs and procs[parent].sid == procs[pid].sid:
            chain.add(parent)
            parent = procs[parent].ppid
    # The module's own process (the keyword's AnsiballZ command module, the parent of the sleep) is
    # the module's, not the wrapper's: the target counts only what the wrapper adds.
    modules = {procs[pid].ppid for pid in sleeps if procs[pid].ppid in procs and is_module_process(procs[procs[pid].ppid])}
    totals = {"rss": 0, "pss": 0, "uss": 0}
    wrapper = {"rss": 0, "pss": 0}
    have_pss = True
    for pid in members:
        mem = memory_of(pid)
        if mem is None or "rss" not in mem:
            raise BenchError(f"process {pid} of a 'sleep {arg}' job ended while its memory was read")
        totals["rss"] += mem["rss"]
        if pid not in modules:
            wrapper["rss"] += mem["rss"]
            wrapper["pss"] += mem.get("pss", 0)
        if "pss" in mem:
            totals["pss"] += mem["pss"]
            totals["uss"] += mem["uss"]
        else:
            have_pss = False
    kinds: dict[str, int] = {}
    for pid in members:
        argv = procs[pid].argv
        label = next((os.path.basename(a) for a in argv[1:] if not a.startswith("-")), os.path.basename(argv[0]) if argv else "?")
        label = re.sub(r"^j\d+\.\d+\.(pyz|payload)$", r"<jid>.\1", label)
        kinds[label] = kinds.get(label, 0) + 1
    return {
        "jobs": n,
        "processes": len(members),
        "processes_per_job": len(members) / n,
        "chain_matches_session": chain == set(members),
        "process_kinds": kinds,
        "rss_kb_per_job": totals["rss"] / n,
        "pss_kb_per_job": totals["pss"] / n if have_pss else None,
        "uss_kb_per_job": totals["uss"] / n if have_pss else None,
        "module_processes": len(modules),
        "wrapper_rss_kb_per_job": wrapper["rss"] / n,
        "wrapper_pss_kb_per_job": wrapper["pss"] / n if have_pss else None,
    }


def is_module_process(proc: Proc) -> bool:
    """An AnsiballZ module process (python .../AnsiballZ_<module>.py), not async_wrapper's."""
    script = os.path.basename(proc.argv[1]) if len(proc.argv) > 1 else ""
    # In keyword mode the module runs from its copy in the job directory, <jid>.payload.
    return (script.startswith("AnsiballZ_") and "async_wrapper" not in script) or script.endswith(".payload")


# --------------------------------------------------------------------------------------------
# One repeat


def tail(path: str, lines: int = 60) -> str:
    with open(path, encoding="utf-8", errors="replace") as stream:
        return "".join(stream.readlines()[-lines:])


def ordered(index: int, first: str, second: str) -> list[str]:
    return [first, second] if index % 2 == 0 else [second, first]


class Variant(t.NamedTuple):
    """One ansible-playbook run of a repeat: its name, the playbook, the environment it adds and the steps it runs."""

    name: str
    playbook: str
    env: dict[str, str]
    steps: t.Callable[[int], list[str]]


def main_steps(index: int) -> list[str]:
    """Every measurement of both sides, the pairs in alternating order (by repeat)."""
    steps = ["floor"]
    launches = ["launch_keyword", "launch_detached", "launch_module"]
    for step in launches[index % 3 :] + launches[: index % 3]:
        steps += [step, "reap"]
    steps += ["batch_detached", "reap"]
    steps += ordered(index, "wait_keyword", "wait_detached")
    steps += ["memory_keyword", "memory_detached", "memory_module", "memory_module_loop"]
    return steps


def switch_steps(index: int) -> list[str]:
    """The keyword's launch and memory steps, run again with keyword mode on (docs/keyword.md).

    The warm-up builds the command module, as the main run's floor step does before its launches.
    """
    del index
    return ["warm", "launch_switch", "reap", "memory_switch"]


# Keyword mode's switch: the collection's keyword/ directory first in the module search path.
KEYWORD_LIBRARY = os.path.join(os.path.dirname(HERE), "keyword")

# The playbook runs of every repeat, one after the other: each has its name, playbook, extra
# environment and steps.
VARIANTS = [
    Variant("main", PLAYBOOK, {}, main_steps),
    Variant("switch", PLAYBOOK, {"ANSIBLE_LIBRARY": KEYWORD_LIBRARY}, switch_steps),
]
SIDES = ("keyword", "detached")
MEMORY_SIDES = ("keyword", "detached", "switch", "module", "module_loop")


def repeat_vars(opts: argparse.Namespace, ctx: dict[str, t.Any], steps: list[str], sleeps: dict[str, str], wait_dirs: dict[str, str]) -> dict[str, t.Any]:
    """The variables (-e @file) of one playbook run."""
    n: int = opts.n
    return {
        "bench_n": n,
        "bench_steps": steps,
        "bench_sleep": sleeps,
        "bench_batch": [{"cmd": f"sleep {sleeps['batch_detached']}"}] * n,
        "bench_memory_batch": [{"cmd": f"sleep {sleeps['memory_detached']}"}] * n,
        "bench_memory_module_batch": [{"module": "ansible.builtin.command", "args": {"cmd": f"sleep {sleeps['memory_module']}"}}] * n,
        "bench_wait_dirs": wait_dirs,
        "bench_wait_batch": [{"argv": [opts.python, DEADLINE_JOB, wait_dirs["detached"], str(i)]} for i in range(n)],
        "bench_deadline_job": DEADLINE_JOB,
        "bench_margin": MARGIN,
        "bench_reap": [opts.python, os.path.abspath(__file__), "--reap", ctx["token"], "--work", ctx["work"]],
    }


def playbook_env(opts: argparse.Namespace, timings_file: str, extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "ANSIBLE_COLLECTIONS_PATH": opts.collections_path,
            "ANSIBLE_CALLBACK_PLUGINS": os.path.join(HERE, "callback_plugins"),
            "ANSIBLE_CALLBACKS_ENABLED": "bench_timer",
            "BENCH_TIMINGS": timings_file,
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
            "ANSIBLE_LOCALHOST_WARNING": "0",
        }
    )
    env.update(extra)
    return env


def run_playbook(index: int, ctx: dict[str, t.Any], cmd: list[str], env: dict[str, str], log_file: str) -> float:
    """Runs ansible-playbook (output to log_file); returns how long it took."""
    started = time.time()
    with open(log_file, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(cmd, cwd=ctx["work"], env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        try:
            proc.wait(timeout=900)
        except BaseException as exc:
            # Its workers run in sessions of their own: stop the whole tree before they start more jobs.
            kill_tree(proc.pid)
            proc.wait()
            if isinstance(exc, subprocess.TimeoutExpired):
                raise BenchError(f"repeat {index + 1}: ansible-playbook did not finish within 900 s; end of its output:\n" + tail(log_file)) from None
            raise
    if proc.returncode != 0:
        raise BenchError(f"repeat {index + 1}: ansible-playbook failed (rc {proc.returncode}); end of its output:\n" + tail(log_file))
    return time.time() - started


def read_timings(index: int, timings_file: str, steps: list[str]) -> dict[str, dict[str, t.Any]]:
    """The bench_timer records of the tasks named "bench: <step>", by step; every step must have succeeded."""
    timings: dict[str, dict[str, t.Any]] = {}
    with open(timings_file, encoding="utf-8") as stream:
        for line in stream:
            record = json.loads(line)
            if record["task"].startswith("bench: "):
                timings[record["task"][len("bench: ") :]] = record
    for step in [s for s in steps if s != "reap"]:
        record = timings.get(step)
        if record is None or record["status"] != "ok" or record["start"] is None:
            raise BenchError(f"repeat {index + 1}: no successful timing for step {step}: {record}")
    return timings


def run_variant(index: int, variant: Variant, opts: argparse.Namespace, ctx: dict[str, t.Any], rdir: str, common: dict[str, t.Any]) -> dict[str, t.Any]:
    """One playbook run of a repeat, then the memory of the jobs it left running; returns seconds, timings and memory."""
    prefix = "" if variant.name == "main" else f"{variant.name}."
    steps = variant.steps(index)
    vars_file = os.path.join(rdir, f"{prefix}vars.json")
    with open(vars_file, "w", encoding="utf-8") as stream:
        json.dump(repeat_vars(opts, ctx, steps, common["sleeps"], common["wait_dirs"]), stream)
    timings_file = os.path.join(rdir, f"{prefix}timings.jsonl")
    cmd = [ctx["ansible_playbook"], "-i", ctx["inventory"], "-e", "@" + vars_file, variant.playbook]
    seconds = run_playbook(index, ctx, cmd, playbook_env(opts, timings_file, variant.env), os.path.join(rdir, f"{prefix}ansible.log"))
    time.sleep(1)  # let the last jobs settle before their memory is read
    memory = {side: measure_memory(common["sleeps"][f"memory_{side}"], opts.n) for side in MEMORY_SIDES if f"memory_{side}" in steps}
    reap(ctx["token"], ctx["work"])
    return {"steps": steps, "seconds": seconds, "timings": read_timings(index, timings_file, steps), "memory": memory}


def wait_figures(index: int, n: int, directory: str, side: str, record: dict[str, t.Any]) -> dict[str, float]:
    """Wait latency of one side: its wait task's end minus the last job's end (each job wrote its end in directory)."""
    ends = [float(open(os.path.join(directory, name), encoding="ascii").read()) for name in os.listdir(directory) if name.startswith("end.")]
    if len(ends) != n:
        raise BenchError(f"repeat {index + 1}: {len(ends)} of {n} wait jobs ({side}) recorded their end")
    with open(os.path.join(directory, "deadline"), encoding="ascii") as stream:
        deadline = float(stream.read())
    return {
        "latency": record["end"] - max(ends),
        "waiting_before_deadline": deadline - record["start"],
        "last_end_after_deadline": max(ends) - deadline,
    }


def run_repeat(index: int, opts: argparse.Namespace, ctx: dict[str, t.Any]) -> dict[str, t.Any]:
    n: int = opts.n
    rdir = os.path.join(ctx["work"], f"r{index}")
    wait_dirs = {side: os.path.join(rdir, f"wait_{side}") for side in SIDES}
    for path in wait_dirs.values():
        os.makedirs(path)
    common = {"sleeps": {kind: sleep_arg(kind, ctx["token"]) for kind in SLEEP_KINDS}, "wait_dirs": wait_dirs}
    # The playbook runs in alternating order too (by repeat): neither always runs on a machine the other has just loaded.
    variants = VARIANTS if index % 2 == 0 else VARIANTS[::-1]
    done = [run_variant(index, variant, opts, ctx, rdir, common) for variant in variants]
    timings = {step: record for run in done for step, record in run["timings"].items()}
    memory = {side: mem for run in done for side, mem in run["memory"].items()}

    def seconds(step: str) -> float:
        return float(timings[step]["end"] - timings[step]["start"])

    figures: dict[str, t.Any] = {
        "order": [step for run in done for step in run["steps"]],
        "playbook_seconds": sum(run["seconds"] for run in done),
        "floor_per_item": seconds("floor") / n,
        "launch_keyword_total": seconds("launch_keyword"),
        "launch_detached_total": seconds("launch_detached"),
        "launch_keyword_per_job": seconds("launch_keyword") / n,
        "launch_detached_per_job": seconds("launch_detached") / n,
        "batch_detached_total": seconds("batch_detached"),
        "launch_switch_per_job": seconds("launch_switch") / n,
        "launch_module_per_job": seconds("launch_module") / n,
    }
    for side in SIDES:
        figures[f"wait_{side}"] = wait_figures(index, n, wait_dirs[side], side, timings[f"wait_{side}"])
    for side in MEMORY_SIDES:
        figures[f"memory_{side}"] = memory[side]
    for side in SIDES:
        if figures[f"wait_{side}"]["waiting_before_deadline"] <= 0:
            print(f"warning: repeat {index + 1}: the {side} wait task started after the jobs' deadline; raise MARGIN", file=sys.stderr)
    return figures


# --------------------------------------------------------------------------------------------
# Results


def values(runs: list[dict[str, t.Any]], *path: str) -> list[float]:
    out = []
    for run in runs:
        value: t.Any = run
        for key in path:
            value = value[key]
        out.append(float(value))
    return out


def median(runs: list[dict[str, t.Any]], *path: str) -> float:
    return float(statistics.median(values(runs, *path)))


def ratio(a: float, b: float) -> float:
    return a / b if b > 0 else float("inf")


def comparison(key: str, title: str, unit: str, keyword: list[float], detached: list[float], target: float, within: float | None = None) -> dict[str, t.Any]:
    """One row of results: the medians of both columns, their ratio, and whether the target is met."""
    kw, dj = float(statistics.median(keyword)), float(statistics.median(detached))
    r = ratio(kw, dj)
    return {
        "id": key,
        "title": title,
        "unit": unit,
        "keyword": kw,
        "detached": dj,
        "ratio": r,
        "keyword_runs": keyword,
        "detached_runs": detached,
        "target": f">= {target:g}x" + (f", <= {within:g} s" if within is not None else ""),
        "met": r >= target and (within is None or dj <= within),
    }


def switch_comparisons(runs: list[dict[str, t.Any]], metric: str) -> list[dict[str, t.Any]]:
    """Keyword mode: the same async keyword tasks with the switch on (second column), against the plain keyword."""
    return [
        comparison(
            "launch_switch",
            "keyword mode on: launch, s per job (loop)",
            "s",
            values(runs, "launch_keyword_per_job"),
            values(runs, "launch_switch_per_job"),
            TARGETS["launch_switch"],
        ),
        comparison(
            "memory_switch",
            f"keyword mode on: memory the wrapper adds per running job, MiB {metric.upper()}",
            "MiB",
            [v / 1024 for v in values(runs, "memory_keyword", f"wrapper_{metric}_kb_per_job")],
            [v / 1024 for v in values(runs, "memory_switch", f"wrapper_{metric}_kb_per_job")],
            TARGETS["memory_switch"],
        ),
    ]


def summarise(runs: list[dict[str, t.Any]]) -> tuple[list[dict[str, t.Any]], dict[str, t.Any]]:
    metric = "pss" if all(run[f"memory_{side}"]["pss_kb_per_job"] is not None for run in runs for side in MEMORY_SIDES) else "rss"
    med: dict[str, t.Any] = {
        "floor_per_item": median(runs, "floor_per_item"),
        "memory_keyword_rss_kb": median(runs, "memory_keyword", "rss_kb_per_job"),
        "memory_detached_rss_kb": median(runs, "memory_detached", "rss_kb_per_job"),
        "memory_keyword_processes_per_job": median(runs, "memory_keyword", "processes_per_job"),
        "memory_detached_processes_per_job": median(runs, "memory_detached", "processes_per_job"),
        "memory_keyword_all_kb": median(runs, "memory_keyword", f"{metric}_kb_per_job"),
        "memory_detached_all_kb": median(runs, "memory_detached", f"{metric}_kb_per_job"),
        "memory_module_loop_all_kb": median(runs, "memory_module_loop", f"{metric}_kb_per_job"),
        "memory_metric": metric,
    }
    comps = [
        comparison(
            "launch", "launch, s per job (loop)", "s", values(runs, "launch_keyword_per_job"), values(runs, "launch_detached_per_job"), TARGETS["launch"]
        ),
        comparison(
            "batch",
            "start N jobs, s (keyword loop vs one batch)",
            "s",
            values(runs, "launch_keyword_total"),
            values(runs, "batch_detached_total"),
            TARGETS["batch"],
        ),
        comparison(
            "wait",
            "wait: s from last job end to task return",
            "s",
            values(runs, "wait_keyword", "latency"),
            values(runs, "wait_detached", "latency"),
            TARGETS["wait"],
            within=TARGETS["wait_within"],
        ),
        comparison(
            "memory",
            f"memory the wrapper adds per running job, MiB {metric.upper()}",
            "MiB",
            [v / 1024 for v in values(runs, "memory_keyword", f"wrapper_{metric}_kb_per_job")],
            [v / 1024 for v in values(runs, "memory_detached", f"wrapper_{metric}_kb_per_job")],
            TARGETS["memory"],
        ),
    ]
    return comps + switch_comparisons(runs, metric) + module_comparisons(runs, metric), med


def module_comparisons(runs: list[dict[str, t.Any]], metric: str) -> list[dict[str, t.Any]]:
    """Module mode (start module=ansible.builtin.command) against the keyword's same command module.

    Memory counts every process of a job but its command (the sleep): the keyword's two wrapper
    processes and its module's, the collection's supervisor and its module's.
    """
    return [
        comparison(
            "launch_module",
            "module mode: launch, s per job (loop)",
            "s",
            values(runs, "launch_keyword_per_job"),
            values(runs, "launch_module_per_job"),
            TARGETS["launch_module"],
        ),
        comparison(
            "memory_module",
            f"module mode: memory per running job (N jobs, one start), all processes besides the command, MiB {metric.upper()}",
            "MiB",
            [v / 1024 for v in values(runs, "memory_keyword", f"{metric}_kb_per_job")],
            [v / 1024 for v in values(runs, "memory_module", f"{metric}_kb_per_job")],
            TARGETS["memory_module"],
        ),
    ]


def fmt(value: float) -> str:
    if value == float("inf"):
        return "inf"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.3f}" if value < 1 else f"{value:.2f}"


def table(results: dict[str, t.Any]) -> str:
    comps = results["comparisons"]
    med = results["median"]
    n = results["n"]
    head = (f"measurement (median of {results['repeat']}, N={n})", "async keyword", "detached.jobs", "ratio", "target", "met")
    rows: list[tuple[str, ...]] = [head]
    for c in comps:
        rows.append(
            (c["title"].replace("N jobs", f"{n} jobs"), fmt(c["keyword"]), fmt(c["detached"]), f"{c['ratio']:.1f}x", c["target"], "yes" if c["met"] else "NO")
        )
    rows.append(("floor: command /bin/true, s per item", fmt(med["floor_per_item"]), "", "", "", ""))
    metric = med["memory_metric"].upper()

    def memory_row(title: str, keyword_kb: float, detached_kb: float) -> tuple[str, ...]:
        """A memory row without a target: both medians in MiB and their ratio."""
        return (title, fmt(keyword_kb / 1024), fmt(detached_kb / 1024), f"{ratio(keyword_kb, detached_kb):.1f}x", "", "")

    rows.append(
        memory_row(
            f"module mode: memory per running job ({n} jobs, a start each), all processes besides the command, MiB {metric}",
            med["memory_keyword_all_kb"],
            med["memory_module_loop_all_kb"],
        )
    )
    rows.append(
        memory_row(f"memory per running job, all processes besides the command, MiB {metric}", med["memory_keyword_all_kb"], med["memory_detached_all_kb"])
    )
    if med["memory_metric"] == "pss":
        rows.append(
            memory_row("memory per running job, all processes besides the command, MiB RSS", med["memory_keyword_rss_kb"], med["memory_detached_rss_kb"])
        )
    rows.append(
        (
            "processes per running job (besides the command)",
            fmt(med["memory_keyword_processes_per_job"]),
            fmt(med["memory_detached_processes_per_job"]),
            "",
            "",
            "",
        )
    )
    return markdown(rows)


def spread(results: dict[str, t.Any]) -> str:
    """Every repeat's figure, so the noise behind the medians is visible."""
    rows: list[tuple[str, ...]] = [("measurement, each repeat", "async keyword", "detached.jobs", "ratio")]
    for c in results["comparisons"]:
        title = c["title"].replace("N jobs", f"{results['n']} jobs")
        rows.append(
            (
                title,
                " / ".join(fmt(v) for v in c["keyword_runs"]),
                " / ".join(fmt(v) for v in c["detached_runs"]),
                " / ".join(f"{ratio(k, d):.1f}x" for k, d in zip(c["keyword_runs"], c["detached_runs"])),
            )
        )
    return markdown(rows)


def markdown(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for i, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [cell.rjust(widths[j]) for j, cell in enumerate(row) if j > 0]
        lines.append("| " + " | ".join(cells) + " |")
        if i == 0:
            lines.append("|" + "|".join("-" * (w + 1) + ":" if j else "-" * (w + 2) for j, w in enumerate(widths)) + "|")
    return "\n".join(lines)


def chart(results: dict[str, t.Any], path: str) -> str | None:
    """Draws the chart; returns None, or why it was skipped."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        return f"matplotlib is not installed ({exc}); install requirements/bench.txt for the chart"
    comps = {c["id"]: c for c in results["comparisons"]}
    med = results["median"]
    fig, axes = plt.subplots(1, 4, figsize=(15, 4.2))
    colors = {"keyword": "#b0b0b0", "detached": "#2a7ab9", "floor": "#e0e0e0"}

    def pair(key: str, keyword: str, detached: str) -> list[tuple[str, float, str]]:
        return [(keyword, comps[key]["keyword"], "keyword"), (detached, comps[key]["detached"], "detached")]

    panels = [
        (
            "launch",
            "1. launch, s per job",
            pair("launch", "async\nkeyword", "detached\ncmd")
            + [("detached\nmodule", comps["launch_module"]["detached"], "detached"), ("floor\n/bin/true", med["floor_per_item"], "floor")],
        ),
        ("batch", f"2. start {results['n']} jobs, s", pair("batch", "keyword\nloop", "detached\nbatch")),
        ("wait", "3. wait latency, s", pair("wait", "async_status\nuntil", "detached\n.jobs.wait")),
        ("memory", f"4. memory the wrapper adds per job, MiB {med['memory_metric'].upper()}", pair("memory", "async\nkeyword", "detached\n.jobs")),
    ]
    for ax, (key, title, bars) in zip(axes, panels):
        labels = [b[0] for b in bars]
        values = [b[1] for b in bars]
        rects = ax.bar(labels, values, color=[colors[b[2]] for b in bars], edgecolor="#404040")
        for rect, value in zip(rects, values):
            ax.annotate(fmt(value), (rect.get_x() + rect.get_width() / 2, rect.get_height()), ha="center", va="bottom", fontsize=9)
        c = comps[key]
        ax.set_title(f"{title}\n{c['ratio']:.1f}x (target {c['target']})", fontsize=10)
        ax.set_ylim(0, max(values) * 1.18)
        ax.tick_params(axis="x", labelsize=8)
        ax.spines[["top", "right"]].set_visible(False)
    fig.suptitle(
        f"detached.jobs vs the async keyword: {results['n']} jobs on localhost, median of {results['repeat']} runs"
        f" (ansible-core {results['ansible_core']}, {results['machine']['cpus']} CPUs, {results['date'][:10]})",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return None


def machine() -> dict[str, t.Any]:
    info: dict[str, t.Any] = {"cpus": os.cpu_count(), "kernel": platform.release(), "arch": platform.machine()}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as stream:
            info["cpu"] = next((line.split(":", 1)[1].strip() for line in stream if line.startswith("model name")), None)
        with open("/proc/meminfo", encoding="utf-8") as stream:
            info["memory_mib"] = next((int(line.split()[1]) // 1024 for line in stream if line.startswith("MemTotal:")), None)
        with open("/etc/os-release", encoding="utf-8") as stream:
            info["os"] = next((line.split("=", 1)[1].strip().strip('"') for line in stream if line.startswith("PRETTY_NAME=")), None)
    except OSError:
        pass
    return info


def find_ansible_playbook(given: str | None) -> str:
    if given:
        return given
    beside = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    if os.access(beside, os.X_OK):
        return beside
    found = shutil.which("ansible-playbook")
    if not found:
        raise BenchError("ansible-playbook not found (next to this Python or on PATH); use --ansible-playbook")
    return found


def core_version(ansible_playbook: str) -> str:
    out = subprocess.run([ansible_playbook, "--version"], capture_output=True, text=True, check=True).stdout
    match = re.search(r"\[core ([^\]]+)\]", out)
    return match.group(1) if match else out.splitlines()[0]


# --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small smoke run: N=5, one repeat (unless -n/--repeat say otherwise)")
    parser.add_argument("-n", type=int, default=None, help="jobs per measurement (default 20; 5 with --quick)")
    parser.add_argument("--repeat", type=int, default=None, help="runs of every measurement, the median is reported (default 3; 1 with --quick)")
    parser.add_argument("--out", default=os.path.join(HERE, "results"), help="directory for results.json and benchmark.png (default benchmarks/results)")
    parser.add_argument("--python", default="/usr/bin/python3", help="the host's Python interpreter (ansible_python_interpreter), default /usr/bin/python3")
    parser.add_argument(
        "--collections-path",
        default=os.path.join(ROOT, ".build", "collections"),
        help="ANSIBLE_COLLECTIONS_PATH holding detached.jobs (default .build/collections of this checkout)",
    )
    parser.add_argument("--ansible-playbook", default=None, help="ansible-playbook to use (default: the one beside this Python, else PATH)")
    parser.add_argument("--docs", action="store_true", help="also copy the chart to docs/performance.png")
    parser.add_argument("--reap", metavar="TOKEN", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)
    if opts.n is None:
        opts.n = 5 if opts.quick else 20
    if opts.repeat is None:
        opts.repeat = 1 if opts.quick else 3
    if opts.n < 1 or opts.repeat < 1:
        parser.error("-n and --repeat must be at least 1")
    return opts


def on_sigterm(signum: int, frame: t.Any) -> None:
    raise KeyboardInterrupt


def prepare(opts: argparse.Namespace, token: str, work: str) -> dict[str, t.Any]:
    """Finds ansible-playbook and the collection, writes the inventory; the context of every repeat."""
    ansible_playbook = find_ansible_playbook(opts.ansible_playbook)
    if not os.path.isdir(os.path.join(opts.collections_path, "ansible_collections", "detached", "jobs")):
        raise BenchError(f"detached.jobs is not in {opts.collections_path} (run `make setup`, or give --collections-path)")
    inventory = os.path.join(work, "inventory.ini")
    with open(inventory, "w", encoding="utf-8") as stream:
        stream.write(
            "[bench]\n"
            f"localhost ansible_connection=local ansible_python_interpreter={opts.python}"
            f" ansible_async_dir={work}/async ansible_remote_tmp={work}/tmp\n"
        )
    return {"token": token, "work": work, "inventory": inventory, "ansible_playbook": ansible_playbook}


def benchmark(opts: argparse.Namespace, ctx: dict[str, t.Any]) -> dict[str, t.Any]:
    """Every repeat, then the results (what results.json holds)."""
    version = core_version(ctx["ansible_playbook"])
    host_python = subprocess.run([opts.python, "-c", "import platform; print(platform.python_version())"], capture_output=True, text=True, check=True)
    print(f"benchmark: N={opts.n}, {opts.repeat} repeat(s), ansible-core {version}, host Python {host_python.stdout.strip()} ({opts.python})", flush=True)
    runs = []
    load_before = os.getloadavg()[0]
    for index in range(opts.repeat):
        t0 = time.time()
        runs.append(run_repeat(index, opts, ctx))
        print(f"  repeat {index + 1}/{opts.repeat} done in {time.time() - t0:.0f} s", flush=True)
    comps, med = summarise(runs)
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "n": opts.n,
        "repeat": opts.repeat,
        "quick": opts.quick,
        "ansible_core": version,
        "controller_python": platform.python_version(),
        "host_python": host_python.stdout.strip(),
        "machine": machine(),
        "load_average": {"before": load_before, "after": os.getloadavg()[0]},
        "memory_metric": med["memory_metric"],
        "comparisons": comps,
        "median": med,
        "runs": runs,
    }


def report(opts: argparse.Namespace, results: dict[str, t.Any]) -> None:
    """Prints the tables, writes results.json and the chart (copied to the docs with --docs)."""
    print()
    print(table(results))
    print()
    if opts.repeat > 1:
        print(spread(results))
        print()
    load = results["load_average"]
    print(f"load average (1 min) before/after: {load['before']:.2f} / {load['after']:.2f} on {results['machine']['cpus']} CPUs")
    os.makedirs(opts.out, exist_ok=True)
    with open(os.path.join(opts.out, "results.json"), "w", encoding="utf-8") as stream:
        json.dump(results, stream, indent=2)
        stream.write("\n")
    png = os.path.join(opts.out, "benchmark.png")
    skipped = chart(results, png)
    if skipped:
        print(f"note: no chart: {skipped}")
    else:
        print(f"chart: {png}")
        if opts.docs:
            shutil.copyfile(png, os.path.join(ROOT, "docs", "performance.png"))
            print(f"chart copied to {os.path.join(ROOT, 'docs', 'performance.png')}")
    print(f"results: {os.path.join(opts.out, 'results.json')}")
    missed = [c["id"] for c in results["comparisons"] if not c["met"]]
    print("targets: all met" if not missed else f"targets missed: {', '.join(missed)}")


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    if opts.reap:
        reap(opts.reap, opts.work)
        return 0
    if not os.path.isdir("/proc/self/fd"):
        print("benchmark failed: it reads processes from /proc (Linux only)", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, on_sigterm)
    token = f"{random.randrange(10**6):06d}"
    work = tempfile.mkdtemp(prefix=f"dj-bench-{token}-")
    try:
        report(opts, benchmark(opts, prepare(opts, token, work)))
        return 0
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("benchmark interrupted", file=sys.stderr)
        return 130
    finally:
        try:
            reap(token, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
