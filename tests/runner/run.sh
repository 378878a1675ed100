#!/usr/bin/env bash
# ansible-runner suite (how AWX runs playbooks): the collection is built and installed from its
# tarball into a private path, then `ansible-runner run` runs, from the installed copy, the demo
# (detached.jobs.demo) and a wait-for-many pattern (detached.jobs.04_jobs_on_one_host: module
# and command jobs started in one round trip, waited for in one task) against localhost;
# check_artifacts.py asserts status successful, rc 0 and the jobs' results in the events.
# check_ee.py checks execution-environment.yml (parsed, no image built).
#
#   tests/runner/run.sh
#
# Uses the runner venv (hack/setup.sh --test builds it from requirements/runner.txt; another one
# with DJ_RUNNER_VENV). Work and artifacts go to $DJ_RUNNER_WORK (default .build/runner).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
venv=${DJ_RUNNER_VENV:-$root/.venv-runner}
work=${DJ_RUNNER_WORK:-$root/.build/runner}
say() { echo "runner-suite: $*"; }

[ -x "$venv/bin/ansible-runner" ] || { say "no $venv/bin/ansible-runner (run hack/setup.sh --test)"; exit 2; }
export PATH="$venv/bin:$PATH"
say "$(python -c 'import ansible, importlib.metadata as m; print("ansible-runner", m.version("ansible-runner"), "ansible-core", ansible.__version__)')"

failed=(); passed=0
result() {  # result NAME RC
  if [ "$2" -eq 0 ]; then passed=$((passed+1)); say "$1: passed"; else failed+=("$1"); say "$1: FAILED"; fi
}

python "$here/check_ee.py" "$root"
result execution-environment $?

rm -rf "$work" && mkdir -p "$work/pdd/env" "$work/pdd/inventory" "$work/pdd/project" || exit 1
installed=$work/coll/ansible_collections/detached/jobs
if ansible-galaxy collection build --output-path "$work/dist" "$root" >"$work/build.log" 2>&1 &&
  env -u ANSIBLE_COLLECTIONS_PATH ansible-galaxy collection install --force -p "$work/coll" "$work"/dist/detached-jobs-*.tar.gz >>"$work/build.log" 2>&1 &&
  [ -f "$installed/MANIFEST.json" ] && [ -f "$installed/playbooks/demo.yml" ] && [ ! -L "$installed" ]; then
  result package 0
else
  cat "$work/build.log"; result package 1
fi
py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3)
printf 'localhost ansible_connection=local ansible_python_interpreter=%s\n' "$py" > "$work/pdd/inventory/hosts"
# Only the installed copy: proves the package, not the checkout.
printf 'ANSIBLE_COLLECTIONS_PATH: %s\nANSIBLE_NOCOLOR: "1"\nANSIBLE_DEPRECATION_WARNINGS: "0"\n' "$work/coll" > "$work/pdd/env/envvars"

for spec in demo:demo jobs_on_one_host:04_jobs_on_one_host; do
  case=${spec%%:*} playbook=detached.jobs.${spec#*:}
  t0=$SECONDS
  (cd "$work" && env -u ANSIBLE_COLLECTIONS_PATH timeout --kill-after=10 300 \
    ansible-runner run pdd -p "$playbook" --ident "$case" >"$work/$case.log" 2>&1)
  rc=$?
  say "$case: ansible-runner run -p $playbook: rc $rc ($((SECONDS-t0)) s)"
  if [ -d "$work/pdd/artifacts/$case" ] && python "$here/check_artifacts.py" "$work/pdd/artifacts/$case" "$case" "$installed" && [ $rc -eq 0 ]; then
    result "$case" 0
  else
    tail -n 40 "$work/$case.log"; result "$case" 1
  fi
done
say "$passed passed, ${#failed[@]} failed${failed:+ (${failed[*]})}"
[ ${#failed[@]} -eq 0 ]
