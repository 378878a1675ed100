#!/usr/bin/env bash
# Mitogen suite: the collection's tasks, and jobs of Mitogen's own async, under
# strategy mitogen_linear, against localhost (ansible_connection=local; no SSH needed).
#
#   tests/mitogen/run.sh             every case
#   tests/mitogen/run.sh CASE...     only these (see CASES below)
#
# Uses the Mitogen venv (hack/setup.sh --test builds it from requirements/mitogen.txt; another
# one with DJ_MITOGEN_VENV) and ANSIBLE_COLLECTIONS_PATH (default .build/collections). Each run
# has a job directory of its own (ANSIBLE_ASYNC_DIR: Mitogen's async reads only that variable on
# the host, the collection reads it too) and a marker in its processes' command lines.
# Exits non-zero when a case failed; a failed case's log is printed and kept in $DJ_MITOGEN_LOGS
# (default .build/mitogen-logs).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
venv=${DJ_MITOGEN_VENV:-$root/.venv-mitogen}
logs=${DJ_MITOGEN_LOGS:-$root/.build/mitogen-logs}
CASES=(collection keyword module_mode kill_message)
# Cases known to fail, with the reason; one that passes is reported (strict: it fails the run,
# so that the mark is removed). None at present.
declare -A XFAIL=()

say() { echo "mitogen-suite: $*"; }

[ -x "$venv/bin/ansible-playbook" ] || { say "no $venv/bin/ansible-playbook (run hack/setup.sh --test)"; exit 2; }
strategy=$("$venv/bin/python" -c 'import ansible_mitogen.plugins.strategy as s, os; print(os.path.dirname(s.__file__))') ||
  { say "no ansible_mitogen in $venv"; exit 2; }
versions=$("$venv/bin/python" -c 'import ansible, importlib.metadata as m; print("ansible-core", ansible.__version__, "mitogen", m.version("mitogen"))')

selected=("$@")
[ ${#selected[@]} -gt 0 ] || selected=("${CASES[@]}")
for c in "${selected[@]}"; do
  [[ " ${CASES[*]} " == *" $c "* ]] || { say "unknown case $c (cases: ${CASES[*]})"; exit 2; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/dj-mitogen.XXXXXX")
marker="dj-mitogen-$(basename "$work")"
py=/usr/bin/python3
[ -x "$py" ] || py=$(command -v python3)
printf 'localhost ansible_connection=local ansible_python_interpreter=%s\n' "$py" > "$work/inventory"
finish() {
  # Processes of this run that a failed case may have left (found by the run's marker).
  local pids
  mapfile -t pids < <(pgrep -f -- "$marker")
  [ ${#pids[@]} -eq 0 ] || kill "${pids[@]}" 2>/dev/null
  rm -rf "$work"
}
trap finish EXIT

export ANSIBLE_COLLECTIONS_PATH=${ANSIBLE_COLLECTIONS_PATH:-$root/.build/collections}
export ANSIBLE_STRATEGY_PLUGINS=$strategy ANSIBLE_ASYNC_DIR=$work/jobs DJ_MITOGEN_MARKER=$marker
export ANSIBLE_FORCE_COLOR=0 ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=0 ANSIBLE_DEPRECATION_WARNINGS=0
export ANSIBLE_LOCAL_TEMP=$work/tmp ANSIBLE_HOME=$work/home

say "$versions, strategy mitogen_linear"
mkdir -p "$logs"
failed=(); passed=0; xfailed=0
for c in "${selected[@]}"; do
  log=$logs/$c.log
  t0=$SECONDS
  (cd "$here" && timeout --kill-after=10 300 "$venv/bin/ansible-playbook" -i "$work/inventory" "$c.yml") > "$log" 2>&1
  rc=$?
  # A playbook that stopped early (a syntax error) prints no recap.
  if [ $rc -eq 0 ] && ! grep -q "PLAY RECAP" "$log"; then rc=1; fi
  if [ -n "${XFAIL[$c]:-}" ]; then
    if [ $rc -eq 0 ]; then
      say "$c: UNEXPECTED PASS ($((SECONDS-t0)) s): remove it from XFAIL in tests/mitogen/run.sh"; failed+=("$c")
    else
      say "$c: expected failure ($((SECONDS-t0)) s): ${XFAIL[$c]}"
      grep -E '^fatal:' "$log" | head -n 1 | sed 's/^/    /'
      xfailed=$((xfailed+1))
    fi
  elif [ $rc -eq 0 ]; then
    say "$c: passed ($((SECONDS-t0)) s)"; passed=$((passed+1))
  else
    say "$c: FAILED ($((SECONDS-t0)) s, rc $rc); log $log:"; tail -n 60 "$log"; failed+=("$c")
  fi
done
leftover=$(find "$work/jobs" -mindepth 1 -maxdepth 1 ! -name '.*' 2>/dev/null)
[ -z "$leftover" ] || { say "files left in the job directory: $leftover"; failed+=(leftovers); }
say "${passed} passed, ${#failed[@]} failed${failed:+ (${failed[*]})}, ${xfailed} expected failures"
[ ${#failed[@]} -eq 0 ]
