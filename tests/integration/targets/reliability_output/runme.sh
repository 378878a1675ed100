#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
#
# Runs output.yml under reaper.py, a child subreaper: the job supervisors (orphaned as soon as
# their launcher exits) become its children, and when one exits its peak memory (from wait4)
# lands in a file that the playbook reads. That is the supervisor's true peak, including the
# moment it loads the job's output to build the result, which sampling /proc could miss.
set -eu -o pipefail

rusage=$(mktemp -d)
trap 'rm -rf "$rusage"' EXIT
"${ANSIBLE_TEST_PYTHON_INTERPRETER:-python3}" reaper.py "$rusage" \
    ansible-playbook -i "${INVENTORY_PATH:-../../inventory}" output.yml -e "ro_rusage_dir=$rusage" "$@"
