#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
#
# Runs every pattern playbook of the collection's playbooks/ directory (one per pattern of the
# guides; demo.yml and keyword_check.yml run elsewhere, see below) against the ansible-test
# inventory, so that each pattern is proven by the test suite: each playbook asserts its own
# outcome and fails loudly when its pattern breaks.
#
# ansible-test calls this script with its verbosity and extra-vars options in "$@" (not the
# inventory: that comes as INVENTORY_PATH, ../../inventory relative to this directory).
# PLAYBOOKS limits the run to some playbooks (PLAYBOOKS="01_async_poll.yml demo.yml").

set -eu -o pipefail

inventory=${INVENTORY_PATH:-../../inventory}
target=${PLAYBOOK_TARGET:-testgroup}

# The playbooks live at the collection root. ansible-test runs this script from a copy of the
# target inside the collection (tests/output/.tmp/...), so look in the collection search path
# first, then in the directories above this one.
find_playbooks() {
    local path dir
    local IFS=:
    for path in ${ANSIBLE_COLLECTIONS_PATH:-} ${ANSIBLE_COLLECTIONS_PATHS:-}; do
        dir="$path/ansible_collections/detached/jobs/playbooks"
        if [ -f "$dir/demo.yml" ]; then
            echo "$dir"
            return 0
        fi
    done
    dir=$(pwd -P)
    while [ "$dir" != "/" ]; do
        if [ -f "$dir/playbooks/demo.yml" ] && [ -d "$dir/plugins" ]; then
            echo "$dir/playbooks"
            return 0
        fi
        dir=$(dirname "$dir")
    done
    echo "runme.sh: cannot find the collection's playbooks/ directory" >&2
    return 1
}

playbooks_dir=$(find_playbooks)

if [ -n "${PLAYBOOKS:-}" ]; then
    read -r -a names <<< "$PLAYBOOKS"
    playbooks=()
    for name in "${names[@]}"; do
        playbooks+=("$playbooks_dir/$name")
    done
else
    playbooks=()
    for playbook in "$playbooks_dir"/*.yml; do
        # keyword_check.yml checks the keyword mode set-up of the run (ansible-test's has it off):
        # the keyword_switch target runs it, with keyword mode on, off and broken. demo.yml: the
        # package stage of make test runs it from the installed tarball (ansible-core 2.19, 2.21).
        case ${playbook##*/} in keyword_check.yml | demo.yml) ;; *) playbooks+=("$playbook") ;; esac
    done
fi
if [ "${#playbooks[@]}" -lt 15 ] && [ -z "${PLAYBOOKS:-}" ]; then
    echo "runme.sh: expected the 15 pattern playbooks in $playbooks_dir, found ${#playbooks[@]}" >&2
    exit 1
fi

# The playbooks run in PLAYBOOK_JOBS (2) groups at the same time, each group one ansible-playbook
# process over its playbooks in order (a process costs about 1.5 CPU-s to start; one per playbook
# was 15 of them). A playbook whose syntax is wrong fails its group when it is loaded; one that
# fails stops its group there (its hosts leave the run), and the group's log shows which.
# Each playbook sets what it checks: none reads a variable an earlier one registered. The groups
# share the host (the playbooks use their own scratch directories and job names; this proves it).
parallel=${PLAYBOOK_JOBS:-2}
verbose=no
for arg in "$@"; do
    case "$arg" in -v*) verbose=yes ;; esac
done
logs=$(mktemp -d)
# A job directory of this run's own (the playbooks use the default one, which the runs of the
# other matrix cells share; their PID namespaces cannot see each other's supervisors, so a reader
# in one would take the other's running jobs for vanished): a second inventory gives it to testhost.
# shellcheck disable=SC2088 # a literal ~: ansible expands it for the user each task runs as
jobs_dir="~/.ansible_async.$(basename "$logs")"
printf 'all:\n  hosts:\n    testhost:\n      ansible_async_dir: "%s"\n' "$jobs_dir" > "$logs/jobs_dir.yml"
trap 'rm -rf "$logs" "$HOME/${jobs_dir#\~/}"' EXIT

declare -a group_playbooks
for i in "${!playbooks[@]}"; do
    group_playbooks[i % parallel]+="${playbooks[i]}"$'\n'
done

run_group() {
    local n=$1 start rc=0
    local -a members
    mapfile -t members <<< "${group_playbooks[n]%$'\n'}"
    start=$(date +%s)
    ansible-playbook -i "$inventory" -i "$logs/jobs_dir.yml" -e "target=$target" "${members[@]}" ${extra[@]+"${extra[@]}"} > "$logs/group-$n.log" 2>&1 || rc=$?
    echo "$rc $(( $(date +%s) - start ))" > "$logs/group-$n.rc"
}

extra=("$@")
failed=()
for n in "${!group_playbooks[@]}"; do
    run_group "$n" &
done
wait || true
for n in "${!group_playbooks[@]}"; do
    listed=$(printf '%s' "${group_playbooks[n]}" | xargs -n1 basename | tr '\n' ' ')
    read -r rc secs < "$logs/group-$n.rc"
    if [ "$rc" = 0 ]; then
        [ "$verbose" = yes ] && cat "$logs/group-$n.log"
        echo "== group $n (${listed% }): passed in ${secs}s"
    else
        cat "$logs/group-$n.log"
        echo "== group $n (${listed% }): FAILED (exit code $rc, ${secs}s)"
        failed+=("group $n")
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "runme.sh: playbooks failed in ${failed[*]} (each group's log is above)" >&2
    exit 1
fi
echo "runme.sh: all ${#playbooks[@]} playbooks passed"
