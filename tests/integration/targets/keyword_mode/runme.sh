#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
#
# Keyword mode, switched on as a user does it:
# 1. keyword_on.yml with the switch in an ansible.cfg (library = <collection>/keyword);
# 2. no_collection.yml with the switch as ANSIBLE_LIBRARY and an empty collections path: keyword
#    mode needs only `library` (its modules carry the collection's code they run).
# These run on every ansible-core version (its async action and poll loop read the collection's
# results). The other ways to switch it (ANSIBLE_LIBRARY, off again) and the check playbook
# detached.jobs.keyword_check: target keyword_switch. The 14 pattern playbooks in their keyword
# form: target keyword_patterns.
# ansible-test sets ANSIBLE_LIBRARY=/dev/null (which would override the ansible.cfg line), so it
# is unset for the ansible.cfg run.

set -eu -o pipefail

inventory=${INVENTORY_PATH:-../../inventory}
collection=$(./collection.sh)
kw_tmp=$(mktemp -d)
trap 'pkill -f "^sleep 71[0-9][0-9]$" || true; rm -rf "$kw_tmp"' EXIT

cat > "$kw_tmp/ansible.cfg" <<CFG
[defaults]
library = $collection/keyword
CFG

echo "== keyword mode on (ansible.cfg: library = $collection/keyword)"
(unset ANSIBLE_LIBRARY; ANSIBLE_CONFIG="$kw_tmp/ansible.cfg" ansible-playbook -i "$inventory" -e "kw_tmp=$kw_tmp" keyword_on.yml "$@")

echo "== keyword mode on (ANSIBLE_LIBRARY), the collection missing from the collections path"
mkdir "$kw_tmp/no-collections"
ANSIBLE_LIBRARY="$collection/keyword" ANSIBLE_COLLECTIONS_PATH="$kw_tmp/no-collections" \
    ansible-playbook -i "$inventory" -e "kw_tmp=$kw_tmp" no_collection.yml "$@"

echo "runme.sh: keyword mode on, with and without the collection on the collections path, passed"
