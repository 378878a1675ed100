#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
#
# The 14 pattern playbooks in their keyword form (playbooks/keyword/): each with keyword mode on
# (ANSIBLE_LIBRARY), then each with it off (-e keyword_mode=false); both runs must pass, and each
# playbook checks its own outcome. Two run at a time (they use scratch directories of their own).

set -eu -o pipefail

inventory=${INVENTORY_PATH:-../../inventory}
collection=$(../keyword_mode/collection.sh)
logs=$(mktemp -d)
# A job directory of this run's own, as in the playbooks target (the default one is shared with
# the runs in other PID namespaces): a second inventory gives it to testhost. A playbook that sets
# its own (a block's vars) still wins over it.
# shellcheck disable=SC2088 # a literal ~: ansible expands it for the user each task runs as
jobs_dir="~/.ansible_async.$(basename "$logs")"
printf 'all:\n  hosts:\n    testhost:\n      ansible_async_dir: "%s"\n' "$jobs_dir" > "$logs/jobs_dir.yml"
trap 'rm -rf "$logs" "$HOME/${jobs_dir#\~/}"' EXIT
off_library=${ANSIBLE_LIBRARY:-}

playbooks=("$collection"/playbooks/keyword/[0-9][0-9]_*.yml)
if [ "${#playbooks[@]}" -ne 14 ]; then
    echo "runme.sh: expected the 14 pattern playbooks in their keyword form in $collection/playbooks/keyword, found ${#playbooks[@]}" >&2
    exit 1
fi

run_one() {
    local mode=$1 playbook=$2 name start rc=0
    name=$(basename "$playbook")
    start=$(date +%s)
    if [ "$mode" = on ]; then
        ANSIBLE_LIBRARY="$collection/keyword" ansible-playbook -i "$inventory" -i "$logs/jobs_dir.yml" -e target=testhost "$playbook" "${extra[@]}" > "$logs/$mode.$name.log" 2>&1 || rc=$?
    else
        ANSIBLE_LIBRARY="$off_library" ansible-playbook -i "$inventory" -i "$logs/jobs_dir.yml" -e target=testhost -e keyword_mode=false "$playbook" "${extra[@]}" > "$logs/$mode.$name.log" 2>&1 || rc=$?
    fi
    echo "$rc $(( $(date +%s) - start ))" > "$logs/$mode.$name.rc"
}

extra=("$@")
for mode in on off; do
    for playbook in "${playbooks[@]}"; do
        while [ "$(jobs -rp | wc -l)" -ge 2 ]; do wait -n || true; done
        run_one "$mode" "$playbook" &
    done
done
wait || true
failed=()
for mode in on off; do
    for playbook in "${playbooks[@]}"; do
        name=$(basename "$playbook")
        read -r rc secs < "$logs/$mode.$name.rc"
        if [ "$rc" = 0 ]; then
            echo "== keyword $mode: $name passed in ${secs}s"
        else
            cat "$logs/$mode.$name.log"
            echo "== keyword $mode: $name FAILED (exit code $rc)"
            failed+=("$mode:$name")
        fi
    done
done
if [ "${#failed[@]}" -gt 0 ]; then
    echo "runme.sh: pattern playbooks failed: ${failed[*]}" >&2
    exit 1
fi
echo "runme.sh: the 14 patterns in their keyword form passed with keyword mode on and off"
