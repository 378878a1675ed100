#!/usr/bin/env bash
# Runs every test stage (after hack/setup.sh --test); prints one closing line "suite: N passed, M failed".
#   hack/test.sh                 every stage
#   hack/test.sh unit lint ...   only the named stages ("matrix": the older ansible-core versions)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
root=$PWD
export ANSIBLE_COLLECTIONS_PATH="$root/.build/collections"
export PATH="$root/.venv/bin:$PATH"
export ANSIBLE_FORCE_COLOR=0 PY_COLORS=0 NO_COLOR=1
passed=0; failed=0; failures=(); timings=()

stage() {
  local name=$1; shift
  if [ ${#only[@]} -gt 0 ] && [[ " ${only[*]} " != *" $name "* && " ${only[*]} " != *" ${group:-none} "* ]]; then return 0; fi
  echo "=== stage: $name"
  local t0=$SECONDS
  if "$@"; then passed=$((passed+1)); echo "=== $name: passed ($((SECONDS-t0)) s)"
  else failed=$((failed+1)); failures+=("$name"); echo "=== $name: FAILED ($((SECONDS-t0)) s)"; fi
  timings+=("$name $((SECONDS-t0))s")
}

# A copy of the collection at ansible_collections/detached/jobs outside the checkout, for
# ansible-test (it lists files with git when it finds a repository above the collection).
at_copy() {
  local base="${TMPDIR:-/tmp}/detached-jobs-ansible-test${1:+-$1}"
  local dest="$base/ansible_collections/detached/jobs"
  rm -rf "$base" && mkdir -p "$dest"
  git ls-files --cached --others --exclude-standard -z | rsync -a --from0 --files-from=- ./ "$dest/"
  echo "$dest"
}

lint() {
  local rc=0
  ruff check plugins tests hack benchmarks || rc=1
  # The plugins by their import names, through the .build/collections symlink.
  (cd .build && MYPYPATH="$root/.build/collections" mypy --config-file "$root/pyproject.toml" -p ansible_collections.detached.jobs.plugins) || rc=1
  mypy --config-file pyproject.toml tests hack benchmarks || rc=1
  python hack/check_docs.py .build/examples || rc=1
  python hack/check_role_specs.py || rc=1
  (cd .build/examples && ansible-playbook -i localhost, --syntax-check ./*.yml >/dev/null) || rc=1
  ansible-lint --profile production --offline --nocolor roles playbooks extensions .build/examples || rc=1
  antsibull-changelog lint || rc=1
  return $rc
}
sanity() {
  local dest; dest=$(at_copy)
  (cd "$dest" && ansible-test sanity --local --python 3.11 --color no)
}
unit() { python -m pytest -q -p no:cacheprovider tests/unit; }
integration() {
  # integration [VENV]: the integration suite with the ansible-core of VENV (default .venv), in a copy of its own.
  local venv=${1:-.venv} dest; dest=$(at_copy "${1:+${venv#.venv-}}")
  (cd "$dest" && PATH="$root/$venv/bin:$PATH" ansible-test integration --local --python 3.11 --color no)
}
# The older ansible-core versions run the integration suite one after the other, in the
# background while the ssh, molecule, bench-smoke and package stages run (those use other users,
# network namespaces and markers); each version is reported as a stage of its own at the end.
matrix_start() {
  mkdir -p .build/matrix && rm -f .build/matrix/*
  (
    for venv in .venv-core*; do
      [ -d "$venv" ] || continue
      integration "$venv" > ".build/matrix/$venv.log" 2>&1; echo $? > ".build/matrix/$venv.rc"
    done
  ) &
}
matrix_result() {
  local venv=$1
  while [ ! -f ".build/matrix/$venv.rc" ]; do sleep 2; done
  tail -n 40 ".build/matrix/$venv.log"
  return "$(cat ".build/matrix/$venv.rc")"
}
ssh_suite() {
  # Real SSH test hosts (network namespaces, one sshd and login user each): tests/hosts/hosts.sh.
  tests/ssh/run.sh
}
molecule_suite() {
  # The roles' molecule scenarios, against the SSH test hosts.
  tests/hosts/hosts.sh up 2 >/dev/null || return 1
  local rc=0
  DJ_HOSTS_INVENTORY=/run/detached-jobs-hosts/inventory.ini hack/molecule.sh || rc=1
  tests/hosts/hosts.sh down >/dev/null
  return $rc
}
mitogen_suite() { tests/mitogen/run.sh; }  # under Mitogen's strategy (.venv-mitogen)
runner_suite() { tests/runner/run.sh; }  # through ansible-runner, from the tarball (.venv-runner)
bench_smoke() {
  # The benchmark runs (figures are not asserted here; they belong in docs/performance.md).
  python benchmarks/run.py --quick --out .build/bench
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

only=("$@")
stage lint lint
stage sanity sanity
stage unit unit
stage integration integration
matrix=no
if [ ${#only[@]} -eq 0 ] || [[ " ${only[*]} " == *" matrix "* ]]; then matrix=yes; matrix_start; fi
stage ssh ssh_suite
stage molecule molecule_suite
stage bench-smoke bench_smoke
stage package package
stage mitogen mitogen_suite
stage runner runner_suite
if [ $matrix = yes ]; then
  for venv in .venv-core*; do
    [ -d "$venv" ] && group=matrix stage "integration-${venv#.venv-}" matrix_result "$venv"
  done
fi
echo "stage timings: ${timings[*]}"
[ ${#failures[@]} -eq 0 ] || echo "failed stages: ${failures[*]}"
echo "suite: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
