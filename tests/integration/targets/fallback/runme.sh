#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
#
# The actions' fallback path (plugin_utils/_remote.run_host): with become and without pipelining
# the lean runner is not used; start runs as the async_wrapper module and the other actions as the
# internal host_operation module, which takes their internal options inside its params. fallback.yml
# checks the results; the log shows that the modules ran (AnsiballZ), not the lean runner.
set -eu -o pipefail
log=$(mktemp)
trap 'rm -f "$log"' EXIT
ansible-playbook -vvv -i "${INVENTORY_PATH:-../../inventory}" fallback.yml "$@" | tee "$log"
for module in async_wrapper host_operation; do
  grep -q "AnsiballZ_$module.py" "$log" || { echo "the $module module did not run: the fallback path was not taken" >&2; exit 1; }
done
