#!/usr/bin/env bash
# Sets up .venv (pinned Python requirements) and the collection path used from a checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
python3 -m venv --help >/dev/null 2>&1 || need+=(python3-venv)
if [ "${1:-}" = "--test" ]; then
  command -v rsync >/dev/null 2>&1 || need+=(rsync)
  command -v pgrep >/dev/null 2>&1 || need+=(procps)
fi
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null
fi
stamp=$(cat requirements/dev.txt | sha256sum | cut -c1-16)
if [ ! -f ".venv/.stamp-$stamp" ]; then
  rm -rf .venv
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r requirements/dev.txt
  touch ".venv/.stamp-$stamp"
fi
mkdir -p .build/collections/ansible_collections/detached
ln -sfn ../../../.. .build/collections/ansible_collections/detached/jobs
