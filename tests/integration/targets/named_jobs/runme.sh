#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
#
# Named jobs. named.yml runs tasks/main.yml (attach, if_running=fail, if_running=restart). The
# race of concurrent starts of one name is the target named_race.
#
# ansible-test calls this script with its verbosity and extra-vars options in "$@" and the
# inventory in INVENTORY_PATH.

set -eu -o pipefail

inventory=${INVENTORY_PATH:-../../inventory}

ansible-playbook -i "$inventory" named.yml "$@"
