#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
#
# The 14 pattern playbooks in their keyword form (playbooks/keyword/): each with keyword mode on
# (ANSIBLE_LIBRARY), then each with it off (-e keyword_mode=false); both runs must pass, and each
# playbook checks its own outcome. The two modes run at the same time, each one ansible-playbook
# process over the 14 playbooks in order (a process costs about 1.5 CPU-s to start; one per
# playbook was 28 of them); the playbooks use scratch directories of their own, and each sets what
# it checks. A playbook that fails stops its mode's run there; the run's log shows which.

set -eu -o pipefail

inventory=${INVENTORY_PATH:-../../inventory}
collection=$(../keyword_mode/collection.sh)
logs=$(mktemp -d)
# A job directory of each mode's own, as in the playbooks target (the default one is shared with
# the runs in other PID namespaces, and the two modes, which run at once, share nothing either: one
# run of the suite under two busy loops saw the mode off read a finished job without its output,
# its cause not found): a second inventory gives it to testhost. A playbook that sets its own (a
# block's vars) still wins over it.
# shellcheck disable=SC2088 # a literal ~: ansible expands it for the user each task runs as
jobs_dir="~/.ansible_async.$(basename "$logs")"
for mode in on off; do
    printf 'all:\n  hosts:\n    testhost:\n      ansible_async_dir: "%s"\n' "$jobs_dir.$mode" > "$logs/jobs_dir.$mode.yml"
done
trap 'rm -rf "$logs" "$HOME/${jobs_dir#\~/}".on "$HOME/${jobs_dir#\~/}".off' EXIT
off_library=${ANSIBLE_LIBRARY:-}

playbooks=("$collection"/playbooks/keyword/[0-9][0-9]_*.yml)
if [ "${#playbooks[@]}" -ne 14 ]; then
    echo "runme.sh: expected the 14 pattern playbooks in their keyword form in $collection/playbooks/keyword, found ${#playbooks[@]}" >&2
    exit 1
fi

run_mode() {
    local mode=$1 start rc=0
    start=$(date +%s)
    if [ "$mode" = on ]; then
        ANSIBLE_LIBRARY="$collection/keyword" ansible-playbook -i "$inventory" -i "$logs/jobs_dir.$mode.yml" -e target=testhost "${playbooks[@]}" "${extra[@]}" > "$logs/$mode.log" 2>&1 || rc=$?
    else
        ANSIBLE_LIBRARY="$off_library" ansible-playbook -i "$inventory" -i "$logs/jobs_dir.$mode.yml" -e target=testhost -e keyword_mode=false "${playbooks[@]}" "${extra[@]}" > "$logs/$mode.log" 2>&1 || rc=$?
    fi
    echo "$rc $(( $(date +%s) - start ))" > "$logs/$mode.rc"
}

extra=("$@")
run_mode on &
run_mode off &
wait || true
failed=()
for mode in on off; do
    read -r rc secs < "$logs/$mode.rc"
    if [ "$rc" = 0 ]; then
        echo "== keyword $mode: the 14 playbooks passed in ${secs}s"
    else
        cat "$logs/$mode.log"
        echo "== keyword $mode: FAILED (exit code $rc, ${secs}s; the log above shows which playbook)"
        failed+=("$mode")
    fi
done
if [ "${#failed[@]}" -gt 0 ]; then
    echo "runme.sh: pattern playbooks failed with keyword mode ${failed[*]}" >&2
    exit 1
fi
echo "runme.sh: the 14 patterns in their keyword form passed with keyword mode on and off"
