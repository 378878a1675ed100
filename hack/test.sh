#!/usr/bin/env bash
# Runs every test stage; prints one closing line "suite: N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export ANSIBLE_COLLECTIONS_PATH="$root/.build/collections"
export PATH="$root/.venv/bin:$PATH"
passed=0; failed=0; failures=()
stage() {
  local name=$1; shift
  echo "=== stage: $name"
  if "$@"; then passed=$((passed+1)); echo "=== $name: passed"
  else failed=$((failed+1)); failures+=("$name"); echo "=== $name: FAILED"; fi
}
unit() { python -m pytest -q -p no:cacheprovider tests/unit; }
integration() {
  local dest="$root/.build/ansible-test/ansible_collections/detached/jobs"
  rm -rf "$root/.build/ansible-test" && mkdir -p "$dest"
  git ls-files --cached --others --exclude-standard -z | rsync -a --from0 --files-from=- ./ "$dest/"
  (cd "$dest" && ansible-test integration --local --python 3.11 -v)
}
package() {
  local tmp; tmp=$(mktemp -d)
  ansible-galaxy collection build --force --output-path "$tmp/dist" . >/dev/null &&
  ansible-galaxy collection install -p "$tmp/coll" "$tmp"/dist/detached-jobs-*.tar.gz >/dev/null &&
  for p in start wait async_status job_info prune async_wrapper; do
    ANSIBLE_COLLECTIONS_PATH="$tmp/coll" ansible-doc "detached.jobs.$p" >/dev/null || return 1
  done &&
  ANSIBLE_COLLECTIONS_PATH="$tmp/coll" ansible-playbook "$root/playbooks/demo.yml"
}
stage unit unit
stage integration integration
stage package package
[ ${#failures[@]} -eq 0 ] || echo "failed stages: ${failures[*]}"
echo "suite: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
