#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
#
# Host-side slots. slots.yml runs its race play on 10 hosts that are all this host (one worker
# per host, forks 10): their 10 starts of one slot race each other as separate tasks would.
set -eu -o pipefail
ANSIBLE_FORKS=10 ansible-playbook -i "${INVENTORY_PATH:-../../inventory}" slots.yml "$@"
