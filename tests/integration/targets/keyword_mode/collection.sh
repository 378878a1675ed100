#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
#
# Prints the collection's root, found through ANSIBLE_COLLECTIONS_PATH as ansible-test sets it
# (used by the keyword_mode and keyword_patterns runme.sh).
set -eu
IFS=:
for path in ${ANSIBLE_COLLECTIONS_PATH:-}; do
    if [ -d "$path/ansible_collections/detached/jobs/keyword" ]; then
        echo "$path/ansible_collections/detached/jobs"
        exit 0
    fi
done
echo "cannot find the collection's keyword/ directory in ANSIBLE_COLLECTIONS_PATH" >&2
exit 1
