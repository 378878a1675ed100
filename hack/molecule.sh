#!/usr/bin/env bash
# Runs the molecule scenarios of extensions/molecule/ (one per role) from the collection root.
#   hack/molecule.sh                  every scenario
#   hack/molecule.sh parallel ...     only the named scenarios
# The scenarios run against localhost, or against the hosts of the inventory file named by
# DJ_HOSTS_INVENTORY when it is set (tests/hosts/hosts.sh up prints one).
# Exits non-zero when a scenario fails.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
root=$PWD
export ANSIBLE_COLLECTIONS_PATH="${ANSIBLE_COLLECTIONS_PATH:-$root/.build/collections}"
export ANSIBLE_FORCE_COLOR=0 PY_COLORS=0 NO_COLOR=1 ANSIBLE_NOCOLOR=1
if [ -n "${DJ_HOSTS_INVENTORY:-}" ]; then
  DJ_HOSTS_INVENTORY=$(realpath "$DJ_HOSTS_INVENTORY") || exit 1
  export DJ_HOSTS_INVENTORY
fi
if [ ! -e "$ANSIBLE_COLLECTIONS_PATH/ansible_collections/detached/jobs/galaxy.yml" ]; then
  echo "molecule.sh: detached.jobs is not in $ANSIBLE_COLLECTIONS_PATH (run make setup)" >&2
  exit 2
fi
# molecule (and ansible-playbook) from the venv $DJ_MOLECULE_VENV (hack/test.sh: another
# ansible-core), else from the project's venv when there is one, else from PATH.
venv=${DJ_MOLECULE_VENV:-$root/.venv}
if [ -x "$venv/bin/molecule" ]; then export PATH="$venv/bin:$PATH"; fi
command -v molecule >/dev/null || { echo "molecule.sh: molecule is not installed" >&2; exit 2; }

if [ $# -gt 0 ]; then
  scenarios=("$@")
else
  scenarios=()
  for f in extensions/molecule/*/molecule.yml; do scenarios+=("$(basename "$(dirname "$f")")"); done
fi
failed=()
for s in "${scenarios[@]}"; do
  t0=$SECONDS
  if molecule test -s "$s"; then
    echo "=== molecule $s: passed ($((SECONDS - t0)) s)"
  else
    echo "=== molecule $s: FAILED ($((SECONDS - t0)) s)"
    failed+=("$s")
  fi
done
echo "molecule: $((${#scenarios[@]} - ${#failed[@]})) passed, ${#failed[@]} failed${failed[*]:+ (${failed[*]})}"
[ ${#failed[@]} -eq 0 ]
