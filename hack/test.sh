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
  # Outside the checkout: ansible-test lists files with git when it finds a repository above it.
  local base="${TMPDIR:-/tmp}/detached-jobs-ansible-test"
  local dest="$base/ansible_collections/detached/jobs"
  rm -rf "$base" && mkdir -p "$dest"
  git ls-files --cached --others --exclude-standard -z | rsync -a --from0 --files-from=- ./ "$dest/"
  (cd "$dest" && ansible-test integration --local --python 3.11 -v)
}
package() {
  local tmp="$root/.build/package"
  rm -rf "$tmp" && mkdir -p "$tmp"
  ansible-galaxy collection build --force --output-path "$tmp/dist" . || return 1
  ansible-galaxy collection install --force -p "$tmp/coll" "$tmp"/dist/detached-jobs-*.tar.gz || return 1
  local installed="$tmp/coll/ansible_collections/detached/jobs"
  (
    # Only the installed copy: proves the package, not the checkout.
    export ANSIBLE_COLLECTIONS_PATH="$tmp/coll"
    cd "$tmp" || exit 1
    for p in start wait async_status job_info prune async_wrapper; do
      ansible-doc "detached.jobs.$p" >/dev/null || exit 1
    done
    ansible-playbook detached.jobs.demo && test -f "$installed/playbooks/demo.yml"
  )
}
stage unit unit
stage integration integration
stage package package
[ ${#failures[@]} -eq 0 ] || echo "failed stages: ${failures[*]}"
echo "suite: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
