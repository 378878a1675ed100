#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
#
# The race of named jobs: four ansible-playbook runs start the same name at the same moment (they
# wait at a barrier file and are let go together); exactly one job may start, the others attach to
# it (race_check.yml). The name claim is host code (the store's lock and name index), so this runs
# with the host targets (hack/test.sh).
#
# ansible-test calls this script with its verbosity and extra-vars options in "$@" and the
# inventory in INVENTORY_PATH.

set -eu -o pipefail

inventory=${INVENTORY_PATH:-../../inventory}
runs=4

race=$(mktemp -d)
cleanup() {
    pkill -f "sleep 6022" || true
    rm -rf "$race"
}
trap cleanup EXIT

pids=()
for i in $(seq "$runs"); do
    ansible-playbook -i "$inventory" race.yml -e "nj_race_dir=$race" -e "nj_race_i=$i" "$@" > "$race/log.$i" 2>&1 &
    pids+=($!)
done

# The barrier: once every run is ready (or after 120 s, if one of them died), let them all go.
for _ in $(seq 1200); do
    ready=$(find "$race" -maxdepth 1 -name 'ready.*' | wc -l)
    [ "$ready" -ge "$runs" ] && break
    sleep 0.1
done
touch "$race/go"

rc=0
for pid in "${pids[@]}"; do
    wait "$pid" || rc=1
done
for i in $(seq "$runs"); do
    echo "== race run $i"
    cat "$race/log.$i"
done
[ "$rc" = 0 ] || { echo "runme.sh: a race run failed" >&2; exit 1; }

ansible-playbook -i "$inventory" race_check.yml -e "nj_race_dir=$race" -e "nj_race_runs=$runs" "$@"
