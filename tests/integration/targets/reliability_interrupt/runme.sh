#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
#
# Ctrl-C during a wait: start_and_wait.yml starts two named jobs (held at a gate) and waits for
# them; while its wait is running on the host, SIGINT goes to ansible-playbook's whole process
# group, as a terminal's Ctrl-C would (the host-side wait process included). Then:
# - ansible-playbook stops (non-zero exit);
# - the jobs go on: their supervisors and processes are alive, their status files say running;
# - rerun.yml attaches to them by name (same ids, changed false) and collects their results.
set -eu -o pipefail

inventory=${INVENTORY_PATH:-../../inventory}
work=$(mktemp -d)
jobs_dir=$work/jobs
mkfifo -m 0600 "$work/gate"

job_field() {  # job_field NAME FIELD: a field of the job's detached record
    "${ANSIBLE_TEST_PYTHON_INTERPRETER:-python3}" -c '
import json, sys
jobs, name, field = sys.argv[1:]
jid = open(f"{jobs}/.names/{name}").read().strip()
print(jid if field == "jid" else json.load(open(f"{jobs}/{jid}"))["detached"][field])
' "$jobs_dir" "$1" "$2"
}

alive() {  # alive PID: a live process (not gone, not a zombie)
    local state
    state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || true
    case "$state" in ''|Z|X) return 1 ;; *) return 0 ;; esac
}

cleanup() {
    # Open the gate (jobs still held there finish), then stop whatever is left of the jobs.
    timeout 2 sh -c ": > '$work/gate'" 2>/dev/null || true
    for name in ri-a ri-b; do
        if [ -f "$jobs_dir/.names/$name" ] && [ -f "$jobs_dir/$(job_field "$name" jid)" ]; then
            kill -9 "$(job_field "$name" pid)" 2>/dev/null || true
            kill -9 -- "-$(job_field "$name" child_pid)" 2>/dev/null || true
        fi
    done
    rm -rf "$work"
}
trap cleanup EXIT

fail() {
    echo "runme.sh: $*" >&2
    [ -f "$work/first.log" ] && cat "$work/first.log" >&2
    exit 1
}

# Job control: the playbook runs in a process group of its own (which a terminal's Ctrl-C would
# signal) and does not inherit the ignored SIGINT of a non-interactive shell's background job.
# SIGINT is set back to its default first, as a terminal has it: a test harness that runs this in
# the background (hack/test.sh's matrix lanes) hands it down ignored, and ansible-core 2.16 and 2.17
# then ignore Ctrl-C (later versions install their own handler).
set -m
"${ANSIBLE_TEST_PYTHON_INTERPRETER:-python3}" -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp(sys.argv[1], sys.argv[1:])' \
    ansible-playbook -i "$inventory" start_and_wait.yml -e "ri_dir=$work" "$@" > "$work/first.log" 2>&1 &
playbook=$!
set +m

descendants() {  # descendants PID: every process below PID
    local child
    for child in $(ps -o pid= --ppid "$1"); do
        echo "$child"
        descendants "$child"
    done
}

host_side_running() {  # the lean host-side runner (python -I -S -c ...) runs below the playbook
    local pid
    for pid in $(descendants "$playbook"); do
        tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q -- "-I -S -c" && return 0
    done
    return 1
}

# Wait (at most 60 s) until the wait task is running on the host. (The local connection runs
# the host side in a session of its own, so Ctrl-C does not reach it; it ends with its poll.)
in_wait=no
for _ in $(seq 600); do
    if grep -q "TASK \[Wait for the named jobs\]" "$work/first.log" && host_side_running; then
        in_wait=yes
        break
    fi
    kill -0 "$playbook" 2>/dev/null || fail "the first run ended before its wait"
    sleep 0.1
done
[ "$in_wait" = yes ] || fail "the first run did not reach its wait within 60 s"

ids=$(printf '{"ri-a": "%s", "ri-b": "%s"}' "$(job_field ri-a jid)" "$(job_field ri-b jid)")
echo "== jobs $ids; the wait is running; sending SIGINT to the playbook's process group"
kill -INT -- "-$playbook"
rc=0
wait "$playbook" || rc=$?
cat "$work/first.log"
echo "== the first run exited with code $rc"
[ "$rc" -ne 0 ] || fail "the interrupted run exited with code 0"
grep -q "User interrupted execution" "$work/first.log" || fail "the first run does not say it was interrupted"
pgrep -g "$playbook" >/dev/null && fail "processes of the interrupted run are left: $(ps -o pid,args -g "$playbook")"

for name in ri-a ri-b; do
    for field in pid child_pid; do
        pid=$(job_field "$name" "$field")
        alive "$pid" || fail "job $name: its $field $pid did not survive the interrupt"
    done
    state=$(job_field "$name" state)
    [ "$state" = running ] || fail "job $name: state $state after the interrupt, expected running"
done
echo "== both jobs are still running; re-running"

ansible-playbook -i "$inventory" rerun.yml -e "ri_dir=$work" -e "{\"ri_ids\": $ids}" "$@"
