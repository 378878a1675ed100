#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
#
# Runs every YAML example of README.md and docs/*.md against localhost, as extracted from the docs
# now (extract.py, with the replacements and checks of table.yml), in a scratch directory: the
# examples in order, cut into two playbooks that run at the same time, each with a job directory of
# its own; an HTTP server on 127.0.0.1 stands in for the internet. Whatever the examples leave
# running is killed at the end (cleanup.yml), and the scratch goes.
# ansible-test passes its verbosity options in "$@".

set -eu -o pipefail

here=$(cd "$(dirname "$0")" && pwd)
collection=$(../keyword_mode/collection.sh)
work=$(mktemp -d)
groups=2
server=
cleanup() {
    local rc=$?
    if [ -f "$work/cleanup.ini" ]; then
        ansible-playbook -i "$work/cleanup.ini" "$here/cleanup.yml" > "$work/cleanup.log" 2>&1 || { cat "$work/cleanup.log"; rc=1; }
    fi
    # What the collection cannot kill (jobs of the async keyword record no pid): the processes
    # that run the sandbox's stand-ins, found by the scratch directory's path.
    local left
    left=$(pgrep -f -- "$work/sandbox/" || true)
    if [ -n "$left" ]; then
        echo "runme.sh: stopping what the examples left running:"
        # shellcheck disable=SC2086 # a list of pids
        ps -o pid=,args= -p $left || true
        # shellcheck disable=SC2086
        kill $left 2>/dev/null || true
    fi
    [ -z "$server" ] || kill "$server" 2>/dev/null || true
    rm -rf "$work"
    exit $rc
}
trap cleanup EXIT

port=$(python -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
python "$here/extract.py" "$collection" "$here/table.yml" "$work" "http://127.0.0.1:$port" "$groups"
python -m http.server --bind 127.0.0.1 --directory "$work/www" "$port" > "$work/http.log" 2>&1 &
server=$!
for _ in $(seq 100); do
    python -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null && break
    sleep 0.2
done

# The examples use no facts: the plays that would gather them (those without gather_facts) do not.
export ANSIBLE_GATHERING=explicit
start=$(date +%s)
parts=()
for n in $(seq "$groups"); do
    (cd "$work" && rc=0 && { ansible-playbook -i "inventory-$n.ini" "examples-$n.yml" "$@" > "examples-$n.log" 2>&1 || rc=$?; } && echo "$rc" > "examples-$n.rc") &
    parts+=($!)
done
wait "${parts[@]}"
failed=0
for n in $(seq "$groups"); do
    rc=$(cat "$work/examples-$n.rc")
    if [ "$rc" != 0 ] || [[ " $* " == *" -v"* ]]; then cat "$work/examples-$n.log"; fi
    grep -E '^PLAY \[' "$work/examples-$n.log" | sed "s/^PLAY \[\(.*\)\] \**$/== part $n: \1/"
    if [ "$rc" != 0 ]; then echo "== part $n FAILED (exit code $rc): see its last play above"; failed=1; fi
done
# A warning is a flaw of an example too (a reserved variable name, a deprecated form...).
if grep -h -A3 -E '^\[(DEPRECATION )?WARNING\]' "$work"/examples-*.log; then
    echo "== an example of the docs made Ansible warn (above)"; failed=1
fi
[ "$failed" = 0 ] || { echo "runme.sh: an example of the docs failed" >&2; exit 1; }
echo "runme.sh: every example of the docs ran, in $(( $(date +%s) - start )) s"
