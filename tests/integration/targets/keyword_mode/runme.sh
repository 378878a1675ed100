#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
#
# Keyword mode, switched on as a user does it, then off:
# 1. keyword_on.yml with the switch in an ansible.cfg (library = <collection>/keyword);
# 2. env_switch.yml with the switch as ANSIBLE_LIBRARY;
# 3. switch_off.yml with the switch off: ansible-core's own wrapper again.
# (The 14 pattern playbooks in their keyword form: target keyword_patterns.)
# ansible-test sets ANSIBLE_LIBRARY=/dev/null (which would override the ansible.cfg line), so it
# is unset for the ansible.cfg runs.

set -eu -o pipefail

inventory=${INVENTORY_PATH:-../../inventory}
collection=$(./collection.sh)
kw_tmp=$(mktemp -d)
trap 'pkill -f "^sleep 71[0-9][0-9]$" || true; rm -rf "$kw_tmp"' EXIT

cat > "$kw_tmp/ansible.cfg" <<CFG
[defaults]
library = $collection/keyword
CFG
off_library=${ANSIBLE_LIBRARY:-}

echo "== keyword mode on (ansible.cfg: library = $collection/keyword)"
(unset ANSIBLE_LIBRARY; ANSIBLE_CONFIG="$kw_tmp/ansible.cfg" ansible-playbook -i "$inventory" -e "kw_tmp=$kw_tmp" keyword_on.yml "$@")

echo "== keyword mode on (ANSIBLE_LIBRARY)"
ANSIBLE_LIBRARY="$collection/keyword" ansible-playbook -i "$inventory" -e "kw_tmp=$kw_tmp" env_switch.yml "$@"

echo "== keyword mode off"
ANSIBLE_LIBRARY="$off_library" ansible-playbook -i "$inventory" -e "kw_tmp=$kw_tmp" switch_off.yml "$@"

echo "runme.sh: keyword mode on and off passed"
