#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
#
# Keyword mode's switch (the target keyword_mode runs it on, as an ansible.cfg line):
# 1. env_switch.yml with the switch as ANSIBLE_LIBRARY;
# 2. switch_off.yml with the switch off: ansible-core's own wrapper again;
# 3. the check playbook detached.jobs.keyword_check with the switch on, with a wrong library path,
#    with the collection missing from the collections path (still on), and with both.
# How ansible-core finds `library` and templates the check playbook: run where the playbooks run
# (hack/test.sh, pattern_targets).

set -eu -o pipefail

inventory=${INVENTORY_PATH:-../../inventory}
collection=$(../keyword_mode/collection.sh)
kw_tmp=$(mktemp -d)
trap 'rm -rf "$kw_tmp"' EXIT
off_library=${ANSIBLE_LIBRARY:-}
mkdir "$kw_tmp/no-collections"

echo "== keyword mode on (ANSIBLE_LIBRARY)"
ANSIBLE_LIBRARY="$collection/keyword" ansible-playbook -i "$inventory" -e "kw_tmp=$kw_tmp" env_switch.yml "$@"

echo "== keyword mode off"
ANSIBLE_LIBRARY="$off_library" ansible-playbook -i "$inventory" -e "kw_tmp=$kw_tmp" switch_off.yml "$@"

# The check playbook (detached.jobs.keyword_check): passes with the switch on (with or without the
# collection on the collections path), and says what to set when the library path is wrong (keyword
# mode silently off).
# check WANT LOG ANSIBLE_LIBRARY ANSIBLE_COLLECTIONS_PATH PLAYBOOK: run it, keep its output; WANT 0:
# it must pass, anything else: it must fail.
check() {
    local want=$1 log=$2 rc=0
    ANSIBLE_LIBRARY=$3 ANSIBLE_COLLECTIONS_PATH=$4 ANSIBLE_ASYNC_DIR="$kw_tmp/jobs-check" \
        ansible-playbook -i "$inventory" -e target=testhost "$5" "${@:6}" > "$log" 2>&1 || rc=$?
    cat "$log"
    if { [ "$want" = 0 ] && [ "$rc" != 0 ]; } || { [ "$want" != 0 ] && [ "$rc" = 0 ]; }; then
        echo "runme.sh: $5 exited $rc" >&2
        return 1
    fi
}
# expect LOG TEXT: the output holds TEXT (fixed string).
expect() {
    grep -qF -- "$2" "$1" || { echo "runme.sh: no '$2' in the output of the check" >&2; return 1; }
}
# no_job_files: the check leaves no job files behind.
no_job_files() {
    local f
    for f in "$kw_tmp/jobs-check"/*; do
        if [ -e "$f" ]; then
            echo "runme.sh: the check left job files: $(ls -A "$kw_tmp/jobs-check")" >&2
            return 1
        fi
    done
}

echo "== keyword_check: keyword mode on"
check 0 "$kw_tmp/check-on.log" "$collection/keyword" "$ANSIBLE_COLLECTIONS_PATH" detached.jobs.keyword_check "$@"
expect "$kw_tmp/check-on.log" "keyword mode is ON on testhost"
expect "$kw_tmp/check-on.log" "status file was mode 0600"
no_job_files

echo "== keyword_check: a library path that does not exist (keyword mode silently off)"
check 2 "$kw_tmp/check-off.log" "$kw_tmp/nowhere/ansible_collections/detached/jobs/keyword" "$ANSIBLE_COLLECTIONS_PATH" detached.jobs.keyword_check "$@"
expect "$kw_tmp/check-off.log" "keyword mode is OFF on testhost"
expect "$kw_tmp/check-off.log" "its status file is mode 0644"
expect "$kw_tmp/check-off.log" "library = $collection/keyword\`"
expect "$kw_tmp/check-off.log" "ANSIBLE_LIBRARY=$collection/keyword for one run"
no_job_files

echo "== keyword_check: the right library, the collection missing from the collections path (keyword mode needs only library)"
check 0 "$kw_tmp/check-missing.log" "$collection/keyword" "$kw_tmp/no-collections" "$collection/playbooks/keyword_check.yml" "$@"
expect "$kw_tmp/check-missing.log" "keyword mode is ON on testhost"
no_job_files

echo "== keyword_check: a wrong library path, the collection missing from the collections path"
check 2 "$kw_tmp/check-both.log" /nowhere/keyword "$kw_tmp/no-collections" "$collection/playbooks/keyword_check.yml" "$@"
expect "$kw_tmp/check-both.log" "keyword mode is OFF on testhost"
expect "$kw_tmp/check-both.log" "ANSIBLE_LIBRARY=$collection/keyword for one run"
no_job_files

echo "runme.sh: keyword mode switched on and off, and the check, passed"
