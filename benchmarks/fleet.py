# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""Fleet benchmark: the async keyword against detached.jobs over SSH, on many test hosts at once.

    python benchmarks/fleet.py [--quick] [--hosts 1,5,10,20] [--jobs 10] [--methods M,...] [--out DIR] [--docs]

Brings up SSH test hosts (tests/hosts/hosts.sh: network namespaces, one sshd and one login user
each, every host on /usr/bin/python3), measures how long that takes and the memory of each host,
then runs one playbook of benchmarks/fleet/ (one per method: keyword.yml, collection.yml,
role.yml, floor.yml) once per configuration: H hosts (--hosts), M jobs per host (--jobs), each job a 3 s
sleep, by each method:

- keyword-d1 and keyword-d10: ``async: 600, poll: 0`` in a loop of M, then one
  ``ansible.builtin.async_status`` until loop per job with ``delay: 1`` (the tightest) and
  ``delay: 10`` (the guides' usual value);
- collection: one ``detached.jobs.start`` with ``jobs:`` (M) and one ``detached.jobs.wait``;
- role: the ``detached.jobs.parallel`` role with every job at once;
- floor: no jobs, two ``ansible.builtin.ping`` tasks: what any two tasks on every host cost (a
  reference for the collection's start and wait, not a method).

Every H runs with forks 20 and ssh as ansible-core sets it up (pipelining on, ControlPersist); at
the largest H, keyword-d1 and collection also run with forks 5, and with ssh without pipelining
and without ControlPersist (a new connection per command). Figures per run:

- wall: from the moment the first start task began to the moment the last result arrived
  (bench_timer callback; playbook start-up not counted);
- after_end: from the moment the last job ended (each job records it) to the last result;
- cpu: controller CPU seconds of the whole ansible-playbook process tree, the ssh ControlPersist
  masters it leaves behind included (a cpuacct cgroup of the run's own; where there is none, the
  rusage of the processes it waited for);
- execs: remote executions, counted on the hosts: the sessions their sshd logged (LogLevel
  VERBOSE; one per command the controller ran, one per file transfer);
- rounds (collection): the wait's remote calls per host.

Writes DIR/fleet.json and DIR/fleet.png (matplotlib, if installed); --docs copies the chart to
docs/fleet.png. --quick: 2 hosts, 2 jobs, keyword-d1 and collection only (the test suite's smoke
run; figures are not asserted). Needs root (the hosts), and leaves them down.
"""

from __future__ import annotations

import argparse
import datetime
import glob
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PLAYBOOKS = os.path.join(HERE, "fleet")
HOSTS_SH = os.path.join(ROOT, "tests", "hosts", "hosts.sh")
STATE = os.environ.get("DJ_HOSTS_STATE", "/run/detached-jobs-hosts")
DURATION = 3
METHODS = {"keyword-d1": ("keyword", 1), "keyword-d10": ("keyword", 10), "collection": ("collection", 0), "role": ("role", 0), "floor": ("floor", 0)}
# ssh as ansible-core sets it up, and without pipelining or ControlPersist.
SSH_PERSIST = "-C -o ControlMaster=auto -o ControlPersist=60s -o ConnectTimeout=10"
SSH_PLAIN = "-C -o ControlMaster=no -o ControlPath=none -o ConnectTimeout=10"


class BenchError(Exception):
    pass


def hosts(cmd: str, *args: str, env: dict | None = None) -> str:
    out = subprocess.run([HOSTS_SH, cmd, *args], check=True, capture_output=True, text=True, env=env)
    return out.stdout


def sessions() -> dict[str, int]:
    return {name: int(count) for name, count in (line.split() for line in hosts("sessions").splitlines())}


def write_inventory(path: str, base: str, n: int, ssh_args: str, cp_dir: str) -> None:
    """The first n hosts of hosts.sh's inventory, with ssh_args and a ControlPersist socket directory of the run's own."""
    with open(base, encoding="utf-8") as stream:
        lines = stream.read().splitlines()
    out = []
    for line in lines:
        m = re.match(r"dj-h(\d+) ", line)
        if m and int(m.group(1)) > n:
            continue
        if line.startswith("ansible_ssh_args="):
            line = f"ansible_ssh_args='{ssh_args}'"
        elif line.startswith("ansible_control_path_dir="):
            line = f"ansible_control_path_dir={cp_dir}"
        out.append(line)
    with open(path, "w", encoding="utf-8") as stream:
        stream.write("\n".join(out) + "\n")


CPUACCT = "/sys/fs/cgroup/cpuacct"


class CpuMeter:
    """CPU time of a process tree: a cpuacct cgroup of its own (every descendant, daemonized ssh
    ControlPersist masters included), else the rusage of the children this process waited for."""

    def __init__(self, tag: str) -> None:
        self.path = os.path.join(CPUACCT, f"dj-fleet-{os.getpid()}-{tag}")
        try:
            os.mkdir(self.path)
        except OSError:
            self.path = ""
        self.usage = resource.getrusage(resource.RUSAGE_CHILDREN)

    def enter(self) -> None:
        """In the child, before exec: join the cgroup."""
        if self.path:
            with open(os.path.join(self.path, "cgroup.procs"), "w", encoding="ascii") as stream:
                stream.write(str(os.getpid()))

    def seconds(self) -> float:
        if self.path:
            with open(os.path.join(self.path, "cpuacct.usage"), encoding="ascii") as stream:
                return int(stream.read()) / 1e9
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return (after.ru_utime - self.usage.ru_utime) + (after.ru_stime - self.usage.ru_stime)

    def close(self) -> None:
        if self.path:
            give_up = time.monotonic() + 5
            while True:
                try:
                    os.rmdir(self.path)
                    return
                except OSError:
                    if time.monotonic() > give_up:
                        raise
                    time.sleep(0.1)


def close_masters(cp_dir: str) -> None:
    """Close the ssh ControlPersist masters whose sockets are in cp_dir."""
    for sock in glob.glob(os.path.join(cp_dir, "*")):
        subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "dummy"], capture_output=True, check=False)


def job_ends() -> list[float]:
    ends: list[float] = []
    for path in glob.glob("/home/djuser*/.fleet-ends"):
        with open(path, encoding="utf-8") as stream:
            ends.extend(float(x) for x in stream.read().split())
    return ends


def run_one(work: str, base_inv: str, n: int, m: int, method: str, forks: int, ssh: str) -> dict:
    kind, delay = METHODS[method]
    tag = f"{method}-h{n}-m{m}-f{forks}-{ssh}"
    out = os.path.join(work, tag)
    cp_dir = os.path.join(out, "cp")
    os.makedirs(cp_dir)
    inventory = os.path.join(out, "inventory.ini")
    write_inventory(inventory, base_inv, n, SSH_PERSIST if ssh == "persist" else SSH_PLAIN, cp_dir)
    for path in glob.glob("/home/djuser*/.fleet-ends"):
        os.unlink(path)
    timings = os.path.join(out, "timings.jsonl")
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=os.environ.get("ANSIBLE_COLLECTIONS_PATH") or os.path.join(ROOT, ".build", "collections"),
        ANSIBLE_CALLBACK_PLUGINS=os.path.join(HERE, "callback_plugins"),
        ANSIBLE_CALLBACKS_ENABLED="bench_timer",
        BENCH_TIMINGS=timings,
        ANSIBLE_FORKS=str(forks),
        ANSIBLE_PIPELINING="true" if ssh == "persist" else "false",
        ANSIBLE_HOST_KEY_CHECKING="false",
        ANSIBLE_DEPRECATION_WARNINGS="false",
        ANSIBLE_NOCOLOR="1",
    )
    before = sessions()
    meter = CpuMeter(tag)
    extra = {"fleet_jobs": m, "fleet_duration": DURATION}
    if kind == "keyword":
        extra["fleet_delay"] = delay
    # A playbook per method: tasks of the others, skipped by `when:`, would still cost a worker per host.
    playbook = os.path.join(PLAYBOOKS, f"{kind}.yml")
    cmd = [shutil.which("ansible-playbook") or "ansible-playbook", "-i", inventory, playbook, "-e", json.dumps(extra)]
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False, preexec_fn=meter.enter)
        close_masters(cp_dir)
        cpu = meter.seconds()
    finally:
        meter.close()
    after = sessions()
    with open(os.path.join(out, "playbook.log"), "w", encoding="utf-8") as stream:
        stream.write(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise BenchError(f"{tag}: ansible-playbook failed (rc {proc.returncode}); see {out}/playbook.log")
    with open(timings, encoding="utf-8") as stream:
        rows = [json.loads(line) for line in stream if line.strip()]
    timed = [r for r in rows if r["start"] is not None]
    first = min(r["start"] for r in timed)
    last = max(r["end"] for r in timed)
    ends = job_ends()
    if kind != "floor" and len(ends) != n * m:
        raise BenchError(f"{tag}: {len(ends)} jobs recorded their end, expected {n * m}")
    used = [f"dj-h{i}" for i in range(1, n + 1)]
    result = {
        "method": method,
        "hosts": n,
        "jobs": m,
        "forks": forks,
        "ssh": ssh,
        "wall": round(last - first, 3),
        "after_end": round(last - max(ends), 3) if kind != "floor" else None,
        "cpu": round(cpu, 2),
        "execs": sum(after[h] - before.get(h, 0) for h in used),
    }
    calls = [r["remote_calls"] for r in rows if "remote_calls" in r and r["task"] == "Fleet: collection wait"]
    if kind == "collection":
        if len(calls) != n:
            raise BenchError(f"{tag}: {len(calls)} wait results, expected {n}")
        result["rounds"] = max(calls)
        result["wait_calls"] = sum(calls)
    return result


def plan(hosts_list: list[int], m: int, quick: bool, methods: list[str]) -> list[tuple[int, int, str, int, str]]:
    if quick:
        return [(hosts_list[-1], m, method, 5, "persist") for method in ("keyword-d1", "collection")]
    runs = [(n, m, method, 20, "persist") for n in hosts_list for method in methods]
    top = hosts_list[-1]
    for method in ("keyword-d1", "collection"):
        if method in methods:
            runs.append((top, m, method, 5, "persist"))
            runs.append((top, m, method, 20, "plain"))
    return runs


def chart(results: list[dict], path: str) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    main = [r for r in results if r["forks"] == 20 and r["ssh"] == "persist"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    panels = (("wall", "wall time, first start to last result (s)"), ("cpu", "controller CPU (s)"), ("execs", "remote executions (sshd sessions)"))
    for ax, (key, label) in zip(axes, panels):
        for method in METHODS:
            if method == "floor" and key != "cpu":
                continue  # no jobs: only its CPU is a reference
            points = sorted((r["hosts"], r[key]) for r in main if r["method"] == method)
            if points:
                ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=method)
        ax.set_xlabel("hosts (10 jobs each)")
        ax.set_xticks(sorted({r["hosts"] for r in main}))
        if key == "execs":
            ax.set_yscale("log")
        ax.set_title(label, fontsize=10)
        ax.grid(True, alpha=0.3)
    axes[0].legend()
    if any(r["method"] == "floor" for r in main):
        axes[1].legend()  # the floor is drawn in the CPU panel only
    fig.suptitle("detached.jobs against the async keyword over SSH (forks 20, pipelining, ControlPersist; 2 CPUs)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return True


def ratios(results: list[dict]) -> list[str]:
    lines = []
    by = {(r["method"], r["hosts"], r["forks"], r["ssh"]): r for r in results}
    for (method, n, forks, ssh), r in sorted(by.items(), key=lambda kv: (kv[0][2], kv[0][3], kv[0][1])):
        if method != "collection":
            continue
        floor = by.get(("floor", n, forks, ssh))
        if floor:
            lines.append(f"H={n} forks={forks} ssh={ssh}: controller CPU of collection {r['cpu']:.2f}s, of two ping tasks (floor) {floor['cpu']:.2f}s")
        for other in ("keyword-d1", "keyword-d10"):
            k = by.get((other, n, forks, ssh))
            if k:
                lines.append(
                    f"H={n} forks={forks} ssh={ssh}: collection vs {other}: wall {k['wall'] / max(r['wall'], 1e-9):.1f}x, "
                    f"cpu {k['cpu'] / max(r['cpu'], 1e-9):.1f}x, execs {k['execs']} vs {r['execs']}, after_end {k['after_end']:.2f}s vs {r['after_end']:.2f}s"
                )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--quick", action="store_true", help="2 hosts, 2 jobs each, keyword-d1 and collection (smoke run)")
    parser.add_argument("--hosts", default="1,5,10,20", help="numbers of hosts, comma-separated (default 1,5,10,20)")
    parser.add_argument("--jobs", type=int, default=10, help="jobs per host (default 10)")
    parser.add_argument("--out", default=os.path.join(ROOT, ".build", "fleet"), help="where results go")
    parser.add_argument("--docs", action="store_true", help="copy the chart to docs/fleet.png")
    parser.add_argument("--methods", default=",".join(METHODS), help=f"methods, comma-separated (default {','.join(METHODS)})")
    parser.add_argument("--chart", metavar="JSON", help="only draw the chart of an earlier run's fleet.json (to --out)")
    args = parser.parse_args()
    if args.chart:
        with open(args.chart, encoding="utf-8") as stream:
            earlier = json.load(stream)
        os.makedirs(args.out, exist_ok=True)
        png = os.path.join(args.out, "fleet.png")
        if not chart(earlier["results"], png):
            print("fleet: no matplotlib, no chart", file=sys.stderr)
            return 1
        print(f"fleet: chart {png}")
        if args.docs:
            shutil.copy(png, os.path.join(ROOT, "docs", "fleet.png"))
        return 0
    methods = [x for x in args.methods.split(",") if x]
    unknown = [x for x in methods if x not in METHODS]
    if unknown:
        parser.error(f"unknown method {unknown[0]!r}: one of {', '.join(METHODS)}")
    hosts_list = [2] if args.quick else sorted(int(x) for x in args.hosts.split(","))
    m = 2 if args.quick else args.jobs
    if os.geteuid() != 0:
        print("fleet: needs root (tests/hosts/hosts.sh)", file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="run-", dir=args.out)
    env = dict(os.environ, DJ_HOSTS_PYTHONS="system")
    t0 = time.monotonic()
    base_inv = hosts("up", str(hosts_list[-1]), env=env).strip().splitlines()[-1]
    up_s = time.monotonic() - t0
    mem = {name: int(kib) for name, kib in (line.split() for line in hosts("mem").splitlines())}
    results = []
    try:
        for n, mm, method, forks, ssh in plan(hosts_list, m, args.quick, methods):
            result = run_one(work, base_inv, n, mm, method, forks, ssh)
            print(f"fleet: {json.dumps(result)}", flush=True)
            results.append(result)
    finally:
        t1 = time.monotonic()
        hosts("down")
        down_s = time.monotonic() - t1
    count = hosts_list[-1]
    summary: dict = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "harness": {"hosts": count, "up_s": round(up_s, 1), "down_s": round(down_s, 1), "pss_kib_per_host": round((mem["total"]) / count)},
        "results": results,
        "ratios": ratios(results),
    }
    with open(os.path.join(args.out, "fleet.json"), "w", encoding="utf-8") as stream:
        json.dump(summary, stream, indent=2)
    print(f"fleet: {count} hosts up in {up_s:.1f} s, down in {down_s:.1f} s, {summary['harness']['pss_kib_per_host']} KiB PSS per idle host")
    for line in summary["ratios"]:
        print(f"fleet: {line}")
    png = os.path.join(args.out, "fleet.png")
    if chart(results, png):
        print(f"fleet: chart {png}")
        if args.docs:
            shutil.copy(png, os.path.join(ROOT, "docs", "fleet.png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
