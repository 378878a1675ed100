#!/usr/bin/env bash
# Runs every test stage (after hack/setup.sh --test); prints one closing line "suite: N passed, M failed".
#   hack/test.sh                 every stage
#   hack/test.sh unit lint ...   only the named stages and cells ("matrix": every cell of the matrix,
#                                "core-2.21": the stages run on ansible-core 2.21)
# Matrix cells (the integration suite on other ansible-core versions and managed-host Pythons) run
# in the background, DJ_MATRIX_LANES (default 2) at a time; each records its own start and end.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
root=$PWD
# shellcheck source=hack/pyenv.sh
. hack/pyenv.sh
export ANSIBLE_COLLECTIONS_PATH="$root/.build/collections"
export PATH="$root/.venv/bin:$PATH"
export ANSIBLE_FORCE_COLOR=0 PY_COLORS=0 NO_COLOR=1
passed=0; failed=0; skipped=0; failures=(); timings=(); causes=()
skip_rc=77   # a stage or cell that cannot run here (an interpreter is missing) exits with this, saying why

# selected NAME [GROUP]: NAME is to run (no names given, or NAME or GROUP among them).
selected() { [ ${#only[@]} -eq 0 ] || [[ " ${only[*]} " == *" $1 "* || " ${only[*]} " == *" ${2:-none} "* ]]; }
# report NAME RC SECONDS CPU [WHY]: the one line of a stage or cell, and the counts. CPU: the CPU
# seconds (user + system) of all it ran (see with_cpu).
report() {
  local name=$1 rc=$2 secs=$3 cpu=$4 why=${5:-} result
  if [ "$rc" -eq 0 ]; then result=passed; passed=$((passed+1))
  elif [ "$rc" -eq $skip_rc ]; then result=skipped; skipped=$((skipped+1))
  else result=FAILED; failed=$((failed+1)); failures+=("$name"); fi
  echo "=== $name: $result ($secs s, $cpu CPU-s)${why:+: $why}"
  timings+=("$name ${secs}s/${cpu}cpu")
}
# with_cpu FILE COMMAND...: run COMMAND in a subshell that then writes the CPU seconds of all it
# ran (every process it waited for, and theirs) to FILE; its exit code is COMMAND's.
with_cpu() {
  local file=$1; shift
  (
    "$@"; rc=$?
    times > "$file.times"   # (not in a pipeline: there it would run in a subshell of its own)
    awk 'NR == 2 { n = split($0, t, " "); s = 0; for (i = 1; i <= n; i++) { split(t[i], p, "m"); s += p[1] * 60 + p[2] } printf "%d\n", s + 0.5 }' "$file.times" > "$file"
    rm -f "$file.times"
    exit $rc
  )
}
# logs_of NAME: where the whole log of a stage is kept (a cell's: .build/matrix/NAME.log).
logs_of() { echo "$root/.build/logs/$1.log"; }
# stage [-g GROUP] NAME FUNCTION ARGS...: run a stage in the foreground; its log is kept (logs_of).
stage() {
  local group=none; [ "$1" = -g ] && { group=$2; shift 2; }
  local name=$1; shift
  selected "$name" "$group" || return 0
  echo "=== stage: $name"
  local t0=$SECONDS out rc cpu
  mkdir -p .build/logs; out=$(logs_of "$name"); cpu=$(mktemp)
  with_cpu "$cpu" "$@" 2>&1 | tee "$out"; rc=${PIPESTATUS[0]}
  report "$name" "$rc" $((SECONDS-t0)) "$(cat "$cpu")" "$(skip_reason "$rc" "$out")"
  [ "$rc" -eq 0 ] || [ "$rc" -eq $skip_rc ] || first_failure "$name" "$out"
  rm -f "$cpu"
}
# first_failure NAME LOG: a line naming the first failed task of LOG (and the task it was in), kept
# for the end of the run: the last lines are what a CI summary shows.
first_failure() {
  local line
  # (A failure that the task ignores is followed by "...ignoring" and is not the cause.)
  line=$(awk '
    /^\.\.\.ignoring/ { found = "" }
    /^(TASK \[|PLAY RECAP)/ { if (found) exit; task = $0 }
    /^(fatal|failed): |^FATAL:|^ERROR: / { if (!found) found = (task ? task " " : "") substr($0, 1, 400) }
    END { if (found) print found }' "$2")
  causes+=("$1: ${line:-no failed task in its log}; whole log: $2; its last lines:" "$(tail -n 15 "$2" | sed 's/^/    /')")
}
# skip_reason RC LOG: the reason a skipped stage or cell gave ("skipping ..." line), else nothing.
skip_reason() { [ "$1" -eq $skip_rc ] && grep -m1 -o 'skipping .*' "$2"; }

# The ansible-core versions other than the main one: requirements/core-<v>.txt, .venv-core<v>.
core_versions() { local req v; for req in requirements/core-*.txt; do v=${req##*/core-}; echo "${v%.txt}"; done; }
# core_venv V: the venv of ansible-core V, or (exit $skip_rc) a "skipping" line when the Python it
# needs is missing (hack/setup.sh skipped it), or a failure when setup was not run.
core_venv() {
  local v=$1 want
  [ -x ".venv-core$v/bin/python" ] && { echo ".venv-core$v"; return 0; }
  want=$(core_python "requirements/core-$v.txt")
  if [ -n "$want" ] && [ -z "$(pyenv_python "$want")" ]; then
    echo "skipping core $v: no Python $want at $(pyenv_root)/versions/$want.*/bin/python3" >&2; return $skip_rc
  fi
  echo "no .venv-core$v: run hack/setup.sh --test" >&2; return 1
}
venv_python_version() { "$1/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])'; }

# A copy of the collection at ansible_collections/detached/jobs outside the checkout, for
# ansible-test (it lists files with git when it finds a repository above the collection).
at_copy() {
  local base="${TMPDIR:-/tmp}/detached-jobs-ansible-test${1:+-$1}"
  local dest="$base/ansible_collections/detached/jobs"
  rm -rf "$base" && mkdir -p "$dest"
  git ls-files --cached --others --exclude-standard -z | rsync -a --from0 --files-from=- ./ "$dest/"
  echo "$dest"
}

# lint [VENV]: the linters, and the checks that use ansible-core (its docs, syntax, ansible-lint's
# rules) with the ansible-core of VENV (default .venv); the Python-only linters (ruff, mypy, the
# changelog) run once, with .venv.
lint() {
  local rc=0 examples=.build/examples${1:+-${1#.venv-}}
  if [ -z "${1:-}" ]; then
    ruff check plugins keyword tests hack benchmarks || rc=1
    # The plugins by their import names, through the .build/collections symlink.
    (cd .build && MYPYPATH="$root/.build/collections" mypy --config-file "$root/pyproject.toml" -p ansible_collections.detached.jobs.plugins) || rc=1
    mypy --config-file pyproject.toml tests hack benchmarks || rc=1
    python hack/keyword_wrapper.py --check || rc=1
    antsibull-changelog lint || rc=1
  else
    export PATH="$root/$1/bin:$PATH"   # lint runs in a subshell of its own (stage)
  fi
  ansible --version | head -n 1
  python hack/check_docs.py "$examples" || rc=1
  python hack/check_role_specs.py || rc=1
  (cd "$examples" && ansible-playbook -i localhost, --syntax-check ./*.yml >/dev/null) || rc=1
  ansible-lint --profile production --offline --nocolor roles playbooks extensions "$examples" || rc=1
  return $rc
}
# sanity [VENV]: ansible-test sanity with the ansible-core of VENV (default .venv) on its Python.
sanity() {
  local venv=${1:-.venv} py dest
  py=$(venv_python_version "$venv") || return 1
  dest=$(at_copy "sanity${1:+-${venv#.venv-}}")
  (cd "$dest" && PATH="$root/$venv/bin:$PATH" ansible-test sanity --local --python "$py" --color no)
}
# unit [VENV]: the unit tests on the Python (and ansible-core) of VENV (default .venv).
unit() { "$root/${1:-.venv}/bin/python" -m pytest -q -p no:cacheprovider tests/unit; }
# on_core V FUNCTION: FUNCTION with the venv of ansible-core V (skipped when its Python is missing).
on_core() { local venv; venv=$(core_venv "$1") || return; "$2" "$venv"; }
# integration [VENV [HOST_PYTHON [TARGET...]]]: the integration suite (or the TARGETs) with the
# ansible-core of VENV (default .venv) on VENV's Python, in a copy of its own. With HOST_PYTHON
# (3.8 ...) the managed host (localhost) runs the pyenv Python of that version, not VENV's.
integration() {
  local venv=${1:-.venv} hostpy=${2:-} py interp tag=${1:+${1#.venv-}} target
  shift $(($# < 2 ? $# : 2))
  py=$(venv_python_version "$venv") || return 1
  target=(--local --python "$py")
  if [ -n "$hostpy" ]; then
    interp=$(pyenv_python "$hostpy")
    [ -n "$interp" ] || { echo "skipping host Python $hostpy: no Python $hostpy at $(pyenv_root)/versions/$hostpy.*/bin/python3"; return $skip_rc; }
    target=(--controller "origin:python=$py" --target "controller:python=$hostpy@$interp"); tag+=-py$hostpy
  fi
  local dest; dest=$(at_copy "$tag")
  (cd "$dest" && PATH="$root/$venv/bin:$PATH" own_pids ansible-test integration "${target[@]}" --color no "$@")
}
# own_pids COMMAND...: COMMAND in a PID namespace of its own (as root, where unshare can): the
# integration runs that go on at the same time (the stage and the matrix cells) then cannot see,
# pgrep or pkill each other's job processes, which their targets find by fixed markers.
# The namespace's PID 1 is a shell that reaps orphans, as init does on a real host (the detached
# supervisors end as orphans; under ansible-test as PID 1 they would stay zombies all run long).
own_pids() {
  if [ "$(id -u)" -eq 0 ] && unshare --pid --fork --mount-proc true 2>/dev/null; then
    # (In the foreground: a background job of a non-interactive shell would ignore SIGINT, and so
    # would everything it starts, which reliability_interrupt's Ctrl-C must reach.)
    unshare --pid --fork --mount-proc bash -c '"$@"; exit $?' own_pids "$@"
  else
    "$@"
  fi
}

# The matrix: each cell is the integration suite on another ansible-core version or another
# managed-host Python. The cells run in the background (while the ssh, molecule, bench-smoke and
# package stages run: those use other users, network namespaces and markers; every integration
# run works in its own copy and its targets in job directories of their own), DJ_MATRIX_LANES at
# a time, and each is reported at the end with its own result and run time.
# A subset of targets for the host Pythons that get no full run (see matrix_cells).
core_targets=(target_python start_status timeout_kill wait_basic named_jobs compat security check_mode fallback)
# Targets of host-side features (live output, retries, slots, the hardening against other local
# users) that run where the host code meets the oldest and the newest Python (3.8 under 2.19, 3.13
# under 2.21) and in the main stage (3.11), not in the cells of the other ansible-core versions,
# whose controller code they share.
host_feature_targets=(live_output retries slots security_shared_dir)
# matrix_cells: one line per cell, "NAME FUNCTION ARGS...", the longest first (but for keyword-core).
# Every managed-host Python gets the whole suite once: 3.11 (the main stage), 3.8 (2.19, the last
# ansible-core that supports it), 3.9 (2.17), 3.10 (2.16), 3.12 (2.20 on its controller Python),
# 3.13 (2.21 on its controller Python); 2.18 (host 3.11, as in the main stage) runs the core subset,
# and so does the newest ansible-core, 2.21, with the host on 3.9, 3.10 and 3.12 (2.20 and 2.21
# support 3.9 to 3.14: ansible_test constants.py).
matrix_cells() {
  # ansible-core's own async targets with keyword mode on (tests/keyword_core/run.sh): one first,
  # one last, as they take turns (cell_keyword_core).
  echo "keyword-core2.19 cell_keyword_core main"
  # The whole suite, the longest cells first: the newest ansible-core (host 3.13) with every
  # target, 3.8 under 2.19, then the other versions without the host-side feature targets.
  local v py skip
  skip=$(printf -- ' --exclude %s' "${host_feature_targets[@]}")
  echo "integration-core2.21 cell_host_python - 2.21"
  echo "integration-core2.19-py3.8 cell_host_python 3.8 main"
  for v in $(core_versions); do
    case $v in
      2.16) echo "integration-core$v-py3.10 cell_host_python 3.10 $v$skip" ;;
      2.17) echo "integration-core$v-py3.9 cell_host_python 3.9 $v$skip" ;;
      2.18 | 2.21) ;;  # below, above
      *) echo "integration-core$v cell_host_python - $v$skip" ;;
    esac
  done
  # The core subset: 2.18, whose host is its controller's Python (3.11, which the main stage gives
  # the whole suite), and 2.21 with the host on 3.9, 3.10 and 3.12.
  echo "integration-core2.18 cell_host_python - 2.18 ${core_targets[*]}"
  echo "sanity sanity"  # (not next to sanity-core2.21: the two would start at once)
  for py in 3.9 3.10 3.12; do echo "integration-core2.21-py$py-subset cell_host_python $py 2.21 ${core_targets[*]}"; done
  # Stages that share nothing with the others (sanity, and 2.21's sanity and unit) run here too,
  # so that the lanes and the stages in the foreground take about as long.
  echo "sanity-core2.21 on_core 2.21 sanity"
  echo "unit-core2.21 on_core 2.21 unit"
  echo "keyword-core2.21 cell_keyword_core 2.21"
}
# cell_keyword_core CORE: ansible-core CORE's ("main": .venv) own async targets, keyword mode on.
# ansible-core's async target makes and removes ~/.ansible_async_test (the user's home, which a
# cell cannot change: ansible-core finds it in the password database), so the two cells take
# turns; the second one's log says how long it waited, and its time includes the wait.
cell_keyword_core() {
  local venv=.venv
  [ "$1" = main ] || venv=$(core_venv "$1") || return
  # shellcheck disable=SC2016 # expanded by the inner shell, once the lock is held
  own_pids flock .build/matrix/keyword-core.lock bash -c \
    'echo "keyword-core: started after waiting $(( $(date +%s) - $1 )) s for the other keyword-core cell"; shift; exec "$@"' \
    _ "$(date +%s)" tests/keyword_core/run.sh "$venv"
}
# cell_host_python PY CORE [TARGET...]: the suite on ansible-core CORE ("main": .venv) with the
# managed host on Python PY ("-": the controller's own, as --local has it); it passes only if the
# target_python target reports that Python.
cell_host_python() {
  local py=$1 venv=.venv out rc expect; shift
  [ "$1" = main ] || venv=$(core_venv "$1") || return; shift
  expect=$py
  if [ "$py" = - ]; then py=; expect=$(venv_python_version "$venv") || return 1; fi
  out=$(mktemp)
  integration "$venv" "$py" "$@" | tee "$out"; rc=${PIPESTATUS[0]}
  if [ "$rc" -eq 0 ] && ! grep -q "\"target Python: $expect\." "$out"; then echo "FAILED: target_python did not report Python $expect"; rc=1; fi
  rm -f "$out"; return "$rc"
}
# cell_run NAME FUNCTION ARGS...: run one cell; it records its own result, start and end.
cell_run() {
  local name=$1 start rc; shift
  start=$(date +%s)
  with_cpu ".build/matrix/$name.cpu" "$@" > ".build/matrix/$name.log" 2>&1; rc=$?
  echo "$rc $start $(date +%s) $(cat ".build/matrix/$name.cpu" 2>/dev/null || echo '?')" > ".build/matrix/$name.tmp" && mv ".build/matrix/$name.tmp" ".build/matrix/$name.done"
}
# matrix_lane: take cells from the queue until it is empty.
matrix_lane() {
  local cell
  while cell=$(flock .build/matrix/queue sh -c 'head -n 1 .build/matrix/queue; sed -i 1d .build/matrix/queue') && [ -n "$cell" ]; do
    # shellcheck disable=SC2086 # a cell line is NAME FUNCTION ARGS...
    cell_run $cell
  done
}
cell_selected() { local v=${1#*core}; selected "$1" matrix || selected "$1" "core-${v%%-*}"; }
matrix_start() {
  mkdir -p .build/matrix && rm -f .build/matrix/*
  matrix_cells | while read -r name rest; do cell_selected "$name" && echo "$name $rest"; done > .build/matrix/queue
  cut -d' ' -f1 .build/matrix/queue > .build/matrix/cells
  local lanes=${DJ_MATRIX_LANES:-2}
  while [ "$lanes" -gt 0 ]; do matrix_lane & lanes=$((lanes-1)); done
}
# matrix_result NAME: wait for the cell, show its warnings (and its log's end if it failed), report it.
matrix_result() {
  local name=$1 log=.build/matrix/$1.log rc start end
  while [ ! -f ".build/matrix/$name.done" ]; do sleep 2; done
  read -r rc start end cpu < ".build/matrix/$name.done"
  echo "=== cell: $name ($log)"
  grep -E '\[(DEPRECATION )?WARNING\]' "$log" | sort | uniq -c | sort -rn | head -n 20
  if [ "$rc" -ne 0 ] && [ "$rc" -ne $skip_rc ]; then
    tail -n 40 "$log"
    # A cell killed from outside (exit 137: SIGKILL, the OOM killer) ends its log mid-task.
    echo "cell $name: exit code $rc$( [ "$rc" -gt 128 ] && echo " (signal $((rc-128)))")"
    grep -q -E '^(FATAL|ERROR):|PLAY RECAP' "$log" || echo "cell $name: its log ends without ansible-test's verdict"
    [ "$(id -u)" -ne 0 ] || dmesg 2>/dev/null | grep -i -E 'out of memory|oom-kill|killed process' | tail -n 5
    first_failure "$name" "$log"
  fi
  report "$name" "$rc" $((end-start)) "$cpu" "$(skip_reason "$rc" "$log")"
}
# ssh_suite [VENV]: real SSH test hosts (network namespaces, one sshd and login user each:
# tests/hosts/hosts.sh) with the ansible-core of VENV (default .venv). Their Pythons: 3.11, 3.8 and
# 3.13; 3.9 instead of 3.8 from ansible-core 2.20 on, which no longer supports 3.8 on hosts.
ssh_suite() {
  [ -z "${1:-}" ] || export PATH="$root/$1/bin:$PATH"
  host_pythons "${1:-.venv}"
  tests/ssh/run.sh
}
# host_pythons VENV: the test hosts' Pythons (DJ_HOSTS_PYTHONS) for the ansible-core of VENV.
host_pythons() {
  if "$1/bin/python" -c 'import ansible.release as r, sys; sys.exit(tuple(map(int, r.__version__.split(".")[:2])) < (2, 20))'; then
    export DJ_HOSTS_PYTHONS="system 3.9 3.13"
  else
    export DJ_HOSTS_PYTHONS="system 3.8 3.13"
  fi
}
# molecule_suite [VENV]: the roles' molecule scenarios against the SSH test hosts, with the
# molecule and ansible-core of VENV (default .venv).
molecule_suite() {
  [ -z "${1:-}" ] || export PATH="$root/$1/bin:$PATH" DJ_MOLECULE_VENV="$root/$1"
  host_pythons "${1:-.venv}"
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
  python benchmarks/run.py --quick --out .build/bench || return
  # The fleet benchmark over SSH, 2 test hosts with 2 jobs each (docs/performance.md, "Fleet").
  python benchmarks/fleet.py --quick --out .build/fleet
}
# package [VENV]: build, install the tarball, ansible-doc and the demo with the ansible-core of VENV.
package() {
  local tmp="$root/.build/package${1:+-${1#.venv-}}"
  rm -rf "$tmp" && mkdir -p "$tmp"
  [ -z "${1:-}" ] || export PATH="$root/$1/bin:$PATH"   # package runs in a subshell of its own (stage)
  ansible-galaxy collection build --force --output-path "$tmp/dist" . || return 1
  ansible-galaxy collection install --force -p "$tmp/coll" "$tmp"/dist/detached-jobs-*.tar.gz || return 1
  local installed="$tmp/coll/ansible_collections/detached/jobs"
  (
    # Only the installed copy: proves the package, not the checkout.
    export ANSIBLE_COLLECTIONS_PATH="$tmp/coll"
    cd "$tmp" || exit 1
    for p in start wait async_status job_info prune async_wrapper host_operation; do
      ansible-doc "detached.jobs.$p" >/dev/null || exit 1
    done
    ansible-playbook detached.jobs.demo && test -f "$installed/playbooks/demo.yml" || exit 1
    # Keyword mode from the installed copy: its modules' docs, and a keyword playbook with the switch on.
    ansible-doc -M "$installed/keyword" async_wrapper >/dev/null && ansible-doc -M "$installed/keyword" async_status >/dev/null || exit 1
    ANSIBLE_LIBRARY="$installed/keyword" ansible-playbook "$installed/playbooks/keyword/02_fire_and_forget.yml"
  )
}

only=("$@")
# The matrix starts first: its cells run in the background while the stages below run.
matrix=no
selected matrix && matrix=yes
[ $matrix = no ] && for cell in $(matrix_cells | cut -d' ' -f1); do cell_selected "$cell" && matrix=yes; done
[ $matrix = yes ] && matrix_start
stage lint lint
stage -g core-2.21 lint-core2.21 on_core 2.21 lint
stage unit unit
# The main stage also runs the targets marked disabled (keyword_patterns), which the cells leave out.
stage integration integration .venv "" --allow-disabled
stage ssh ssh_suite
stage -g core-2.21 ssh-core2.21 on_core 2.21 ssh_suite
stage molecule molecule_suite
stage -g core-2.21 molecule-core2.21 on_core 2.21 molecule_suite
stage bench-smoke bench_smoke
stage package package
stage -g core-2.21 package-core2.21 on_core 2.21 package
stage mitogen mitogen_suite
stage runner runner_suite
if [ $matrix = yes ]; then
  while read -r cell; do matrix_result "$cell"; done < .build/matrix/cells
fi
echo "stage timings: ${timings[*]}"
if [ ${#failures[@]} -gt 0 ]; then
  echo "failed stages: ${failures[*]}"
  printf 'first failure of %s\n%s\n' "${causes[@]}"
fi
echo "suite: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
