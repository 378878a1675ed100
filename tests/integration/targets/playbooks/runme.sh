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

echo "== syntax check of ${#playbooks[@]} playbooks"
ansible-playbook -i "$inventory" -e "target=$target" --syntax-check "${playbooks[@]}" "$@"

# Run the playbooks two at a time (PLAYBOOK_JOBS): they use their own scratch directories and
# job names, so they can share a host; this also proves that. Each playbook's output goes to a
# log that is printed when it ends (in full when it failed or when ansible-test runs with -v).
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

run_one() {
    local playbook=$1 name start rc
    name=$(basename "$playbook")
    start=$(date +%s)
    rc=0
    ansible-playbook -i "$inventory" -i "$logs/jobs_dir.yml" -e "target=$target" "$playbook" ${extra[@]+"${extra[@]}"} > "$logs/$name.log" 2>&1 || rc=$?
    echo "$rc $(( $(date +%s) - start ))" > "$logs/$name.rc"
}

report() {
    local name=$1 rc secs
    read -r rc secs < "$logs/$name.rc"
    if [ "$rc" = 0 ]; then
        [ "$verbose" = yes ] && cat "$logs/$name.log"
        echo "== $name: passed in ${secs}s"
    else
        cat "$logs/$name.log"
        echo "== $name: FAILED (exit code $rc, ${secs}s)"
        failed+=("$name")
    fi
}

extra=("$@")
failed=()
running=()
for playbook in "${playbooks[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$parallel" ]; do
        wait -n || true
    done
    run_one "$playbook" &
    running+=("$(basename "$playbook")")
done
wait || true
for name in "${running[@]}"; do
    report "$name"
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "runme.sh: ${#failed[@]} of ${#playbooks[@]} playbooks failed: ${failed[*]}" >&2
    exit 1
fi
echo "runme.sh: all ${#playbooks[@]} playbooks passed"
