#!/usr/bin/env bash
# Runs every test stage and cell (after hack/setup.sh --test); prints one closing line "suite: N passed, M failed".
#   hack/test.sh                 every stage and cell
#   hack/test.sh unit lint ...   only the named ones ("matrix": every integration and keyword cell,
#                                "core-2.21": the ones run on ansible-core 2.21)
# They run in lanes (see items): DJ_LANES (default 2) for any of them, and one that runs those that
# use the SSH test hosts, one at a time, then takes any. Each is reported when it ends, with its wall
# and CPU seconds; its whole log is kept in .build/logs/NAME.log. One named alone runs with its
# output shown as it comes.
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
# logs_of NAME: where the whole log of a stage or cell is kept.
logs_of() { echo "$root/.build/logs/$1.log"; }
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
# Its path names the checkout, so that runs from two checkouts never share one.
at_copy() {
  local base
  base="${TMPDIR:-/tmp}/detached-jobs-ansible-test-$(printf %s "$root" | sha256sum | cut -c1-8)${1:+-$1}"
  local dest="$base/ansible_collections/detached/jobs"
  rm -rf "$base" && mkdir -p "$dest"
  git ls-files --cached --others --exclude-standard -z | rsync -a --from0 --files-from=- ./ "$dest/"
  echo "$dest"
}

# lint [VENV]: the linters, and the checks that use ansible-core (its docs, syntax) with the
# ansible-core of VENV (default .venv); the linters that do not depend on it (ruff, mypy, the
# changelog, ansible-lint) run once, with .venv.
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
  ansible --version | sed -n 1p   # (sed reads it all: head would close the pipe on ansible)
  python hack/check_docs.py "$examples" || rc=1
  python hack/check_role_specs.py || rc=1
  (cd "$examples" && ansible-playbook -i localhost, --syntax-check ./*.yml >/dev/null) || rc=1
  # ansible-lint once (its rules are its own; the syntax under another ansible-core is checked
  # above): from the collection's root with no path, as Galaxy's importer runs it over the tarball
  # (tests/ and benchmarks/ included; settings in .ansible-lint); then the docs' examples, which
  # are in .build/ (git ignores it, and so does ansible-lint unless it is named).
  if [ -z "${1:-}" ]; then
    ansible-lint --profile production --offline --nocolor || rc=1
    ansible-lint --profile production --offline --nocolor "$examples" || rc=1
  fi
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
# on_core V FUNCTION [ARGS...]: FUNCTION VENV ARGS... with the venv of ansible-core V (skipped when its Python is missing).
on_core() { local venv; venv=$(core_venv "$1") || return; "$2" "$venv" "${@:3}"; }
# integration [VENV [HOST_PYTHON [TARGET...]]]: the integration suite (or the TARGETs) with the
# ansible-core of VENV (default .venv) on VENV's Python, in a copy of its own. With HOST_PYTHON
# (3.8 ...; "-": none) the managed host (localhost) runs the pyenv Python of that version, not VENV's.
integration() {
  local venv=${1:-.venv} hostpy=${2:--} py interp tag=${1:+${1#.venv-}} target
  shift $(($# < 2 ? $# : 2))
  [ "$hostpy" != - ] || hostpy=
  py=$(venv_python_version "$venv") || return 1
  target=(--local --python "$py")
  if [ -n "$hostpy" ]; then
    interp=$(pyenv_python "$hostpy")
    [ -n "$interp" ] || { echo "skipping host Python $hostpy: no Python $hostpy at $(pyenv_root)/versions/$hostpy.*/bin/python3"; return $skip_rc; }
    target=(--controller "origin:python=$py" --target "controller:python=$hostpy@$interp"); tag+=-py$hostpy
  fi
  local dest; dest=$(at_copy "$tag")
  (cd "$dest" && PATH="$root/$venv/bin:$PATH" own_pids ansible-test integration "${target[@]}" --color no "$@") 2>&1 | stamp_targets
  return "${PIPESTATUS[0]}"
}
# stamp_targets: the output as it is, with the time in front of each "Running TARGET ..." line of
# ansible-test, so that a log tells how long each target took.
stamp_targets() {
  local line
  while IFS= read -r line; do
    case $line in "Running "*" integration test "*) printf '%(%H:%M:%S)T %s\n' -1 "$line" ;; *) printf '%s\n' "$line" ;; esac
  done
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

# Where each integration target runs. A target runs where its code path can differ from the runs
# already there, not everywhere (issue 27): every ansible-core version and every managed-host
# Python gets the targets that reach its code, and no target runs twice where nothing differs.
# Each ansible-core version runs once with the managed host on a Python of its own (main 2.19 on
# 3.11, 2.16 on 3.10, 2.17 on 3.8, 2.18 on 3.13, 2.20 on 3.12, 2.21 on 3.9, the oldest it supports:
# see items).
# controller_targets: the controller side (the action plugins, keyword mode on ansible-core's own
# async action and poll loop, ansible-core's async_status on the collection's jobs, check mode,
# Ctrl-C of ansible-playbook) and the host operations each of them reaches (start, status, kill,
# wait; a re-run that attaches to its named jobs: reliability_interrupt), and the modules that run
# them where the lean runner cannot (fallback): every ansible-core version, each with its host
# Python. (Each Python from 3.8 to 3.13 is the host of one version; ansible-core's payload on the
# others is its own: the collection's lean runner and supervisor are the same code under every
# version.)
controller_targets=(target_python start_status wait_basic compat check_mode keyword_mode reliability_interrupt fallback)
# host_targets: the host code under faults, attacks and races (the job directory's modes, bad ids,
# symlinks; timeouts and kills of whole process trees), and its features (live output, retries,
# slots, listing, pruning, the rules of named jobs: attach, if_running=fail and restart). Their
# controller side is the controller targets'; their host code is the same code on every Python,
# whose calls into the standard library the controller targets reach on every Python. They run
# where the host code meets the oldest Python (3.8, under 2.17) and the newest (3.13, under 2.18):
# under the controllers that cost the least CPU per task (before 2.19's data tagging; their
# controller side is the controller targets'). The SSH test hosts run the main one (3.11).
host_targets=(job_info prune live_output retries slots named_jobs security security_shared_dir timeout_kill reliability_corrupt
  reliability_fulldisk reliability_kill9 reliability_otheruser reliability_output reliability_pidreuse)
# load_targets: the host code under load: 200 jobs at once (reliability_load) and four runs that
# claim one name at once (named_race). Their calls into the standard library are the host targets'
# (start, wait, the store's lock and name index: job_info, named_jobs), which run on 3.13 too;
# what they add is timing, which does not depend on the Python: on the oldest (3.8) alone.
load_targets=(reliability_load named_race)
# pattern_targets: every pattern playbook, and keyword mode's switch and check playbook, which add
# to the controller targets only ansible-core's templating of loops, registered results and
# module_defaults, and how it finds `library`. The templating changed at 2.19 (data tagging), so:
# 2.16 (before) and 2.21 (after; 2.19 and 2.20 template as it does).
pattern_targets=(playbooks keyword_switch)
# main_only_targets: marked disabled, run by the main stage alone (ansible-test --allow-disabled):
# the docs' examples and the keyword form of the pattern playbooks.
main_only_targets=(docs_examples keyword_patterns)

# check_targets: every target of tests/integration/targets is in exactly one list above (a new
# target must say where it runs).
check_targets() {
  local t rc=0 n
  for t in tests/integration/targets/*/; do
    t=$(basename "$t")
    n=$(printf '%s\n' "${controller_targets[@]}" "${host_targets[@]}" "${load_targets[@]}" "${pattern_targets[@]}" "${main_only_targets[@]}" | grep -c -x -F "$t")
    [ "$n" -eq 1 ] || { echo "hack/test.sh: integration target $t is in $n of the target lists (controller_targets, host_targets, load_targets, pattern_targets, main_only_targets): put it in one" >&2; rc=1; }
  done
  return $rc
}

# items: every stage and cell of the suite, one line each: "NAME LANE FUNCTION ARGS...". LANE
# "hosts": it uses the SSH test hosts (tests/hosts/hosts.sh), which one item at a time may have;
# those run in order in one lane, which then takes "any" items. The "any" items run in DJ_LANES
# (default 2) other lanes, in the order below: about the longest first (from the run times of
# clean-clone runs), so that the lanes end together.
items() {
  local v
  echo "integration any cell_host_python - main --allow-disabled ${controller_targets[*]} ${main_only_targets[*]}"
  echo "integration-core2.18-py3.13 any cell_host_python 3.13 2.18 ${controller_targets[*]} ${host_targets[*]}"
  echo "integration-core2.17-py3.8 any cell_host_python 3.8 2.17 ${controller_targets[*]} ${host_targets[*]} ${load_targets[*]}"
  echo "integration-core2.21-py3.9 any cell_host_python 3.9 2.21 ${controller_targets[*]} ${pattern_targets[*]}"
  echo "lint any lint"
  for v in $(core_versions); do
    case $v in
      2.16) echo "integration-core$v-py3.10 any cell_host_python 3.10 $v ${controller_targets[*]} ${pattern_targets[*]}" ;;
      2.17 | 2.18 | 2.21) ;;  # above
      *) echo "integration-core$v any cell_host_python - $v ${controller_targets[*]}" ;;
    esac
  done
  # ansible-core's own async targets with keyword mode on, from the newest version (keyword mode on
  # every version: the keyword_mode target).
  echo "keyword-core2.21 any cell_keyword_core 2.21"
  echo "sanity-core2.21 any on_core 2.21 sanity"
  echo "sanity any sanity"
  echo "unit-core2.21 any on_core 2.21 unit"
  echo "lint-core2.21 any on_core 2.21 lint"
  echo "unit any unit"
  echo "package any package"
  echo "package-core2.21 any on_core 2.21 package"
  echo "mitogen any mitogen_suite"
  echo "runner any runner_suite"
  echo "ssh hosts ssh_suite"
  echo "molecule hosts molecule_suite"
  # (2.21's SSH run leaves out the case of other users' attacks and the slots of two controllers
  # (watch_retry_slots): host code, the same under 2.19's.
  # The roles' molecule scenarios run once: a role is templating, 2.19's engine on 2.19 to 2.21,
  # and the collection's actions, which 2.21 runs in its integration cell and its SSH run.)
  echo "ssh-core2.21 hosts on_core 2.21 ssh_suite link_drop wait_drop become become_pipelining all_hosts counting"
  echo "bench-smoke hosts bench_smoke"
}
# cell_keyword_core CORE: ansible-core CORE's ("main": .venv) own async targets, keyword mode on.
cell_keyword_core() {
  local venv=.venv
  [ "$1" = main ] || venv=$(core_venv "$1") || return
  own_pids tests/keyword_core/run.sh "$venv"
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
# item_run NAME FUNCTION ARGS...: run one item, its output in its log (logs_of); it records its
# exit code, start, end and CPU seconds in .build/run/NAME.done.
item_run() {
  local name=$1 start rc; shift
  start=$(date +%s)
  with_cpu ".build/run/$name.cpu" "$@" > "$(logs_of "$name")" 2>&1; rc=$?
  echo "$rc $start $(date +%s) $(cat ".build/run/$name.cpu" 2>/dev/null || echo '?')" > ".build/run/$name.tmp" && mv ".build/run/$name.tmp" ".build/run/$name.done"
}
# lane QUEUE...: take items from the queues (.build/run/queue-QUEUE), in turn, until all are empty.
lane() {
  local queue item
  for queue in "$@"; do
    # shellcheck disable=SC2016 # $1: the inner shell's
    while item=$(flock ".build/run/queue-$queue" sh -c 'head -n 1 "$1"; sed -i 1d "$1"' _ ".build/run/queue-$queue") && [ -n "$item" ]; do
      # shellcheck disable=SC2086 # an item line is NAME FUNCTION ARGS...
      item_run $item
    done
  done
}
# item_selected NAME: the item is to run (no names given; its name; "matrix" for the integration
# and keyword cells; "core-V" for the items of ansible-core V).
item_selected() {
  local v=${1#*core}
  [[ $1 == *core* ]] || v=none
  selected "$1" "core-${v%%-*}" || { [[ $1 == integration-core* || $1 == keyword-core* ]] && selected "$1" matrix; }
}
# run_items: start the selected items in the lanes (in the foreground, its output shown as it
# comes, when only one is selected); .build/run/items lists them.
run_items() {
  mkdir -p .build/run .build/logs && rm -f .build/run/*
  items | while read -r name lane rest; do
    item_selected "$name" && { echo "$name" >> .build/run/items; echo "$name $rest" >> ".build/run/queue-$lane"; }
  done
  [ -s .build/run/items ] || { echo "hack/test.sh: no stage or cell is named ${only[*]} (see items in hack/test.sh)"; exit 2; }
  touch .build/run/queue-any .build/run/queue-hosts
  if [ "$(wc -l < .build/run/items)" -eq 1 ]; then
    local item; item=$(cat .build/run/queue-*)
    echo "=== stage: ${item%% *}"
    # shellcheck disable=SC2086 # an item line is NAME FUNCTION ARGS...
    item_run $item &
    local pid=$! log; log=$(logs_of "${item%% *}")
    tail -n +1 -F --pid=$pid "$log" 2>/dev/null
    wait $pid
    return
  fi
  echo "=== $(wc -l < .build/run/items) stages and cells in $((${DJ_LANES:-2} + 1)) lanes (logs: $root/.build/logs)"
  lane hosts any &
  local lanes=${DJ_LANES:-2}
  while [ "$lanes" -gt 0 ]; do lane any & lanes=$((lanes-1)); done
}
# result NAME: report an item that has ended: its line, its warnings, and when it failed the end of
# its log and its first failed task.
result() {
  local name=$1 log rc start end cpu
  log=$(logs_of "$name")
  read -r rc start end cpu < ".build/run/$name.done"
  grep -E '\[(DEPRECATION )?WARNING\]' "$log" | sort | uniq -c | sort -rn | head -n 20
  if [ "$rc" -ne 0 ] && [ "$rc" -ne $skip_rc ]; then
    tail -n 40 "$log"
    # An item killed from outside (exit 137: SIGKILL, the OOM killer) ends its log mid-task.
    echo "$name: exit code $rc$( [ "$rc" -gt 128 ] && echo " (signal $((rc-128)))")"
    grep -q -E '^(FATAL|ERROR):|PLAY RECAP|passed|failed' "$log" || echo "$name: its log ends without a verdict"
    [ "$(id -u)" -ne 0 ] || dmesg 2>/dev/null | grep -i -E 'out of memory|oom-kill|killed process' | tail -n 5
    first_failure "$name" "$log"
  fi
  report "$name" "$rc" $((end-start)) "$cpu" "$(skip_reason "$rc" "$log")"
}
# results: report each item as it ends, until every one has.
results() {
  local left name
  mapfile -t left < .build/run/items
  while [ ${#left[@]} -gt 0 ]; do
    local still=()
    for name in "${left[@]}"; do
      if [ -f ".build/run/$name.done" ]; then result "$name"; else still+=("$name"); fi
    done
    left=("${still[@]}")
    [ ${#left[@]} -eq 0 ] || sleep 2
  done
  wait
}
# ssh_suite [VENV [CASE...]]: real SSH test hosts (network namespaces, one sshd and login user each:
# tests/hosts/hosts.sh) with the ansible-core of VENV (default .venv). Their Pythons: 3.11, 3.8 and
# 3.13; 3.9 instead of 3.8 from ansible-core 2.20 on, which no longer supports 3.8 on hosts.
ssh_suite() {
  [ -z "${1:-}" ] || export PATH="$root/$1/bin:$PATH"
  host_pythons "${1:-.venv}"
  tests/ssh/run.sh "${@:2}"
}
# host_pythons VENV: the test hosts' Pythons (DJ_HOSTS_PYTHONS) for the ansible-core of VENV.
host_pythons() {
  if "$1/bin/python" -c 'import ansible.release as r, sys; sys.exit(tuple(map(int, r.__version__.split(".")[:2])) < (2, 20))'; then
    export DJ_HOSTS_PYTHONS="system 3.9 3.13"
  else
    export DJ_HOSTS_PYTHONS="system 3.8 3.13"
  fi
}
# molecule_suite [VENV]: the roles' molecule scenarios against an SSH test host (dj-h1, the
# system Python), with the molecule and ansible-core of VENV (default .venv). One host: a role's
# tasks are each host's own (no role looks at another host: no run_once, delegate_to or hostvars),
# so a second host would run the same tasks again; the host code on the other Pythons runs in the
# integration cells, and many hosts in one wait in the SSH cases link_drop, wait_drop, all_hosts.
molecule_suite() {
  [ -z "${1:-}" ] || export PATH="$root/$1/bin:$PATH" DJ_MOLECULE_VENV="$root/$1"
  host_pythons "${1:-.venv}"
  tests/hosts/hosts.sh up 1 >/dev/null || return 1
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
# doc_pages COUNT ARGS...: ansible-doc ARGS shows COUNT pages and no warning (it only warns about
# a plugin it cannot find).
doc_pages() {
  local out
  out=$(ANSIBLE_NOCOLOR=1 ansible-doc "${@:2}" 2>&1) || { echo "$out"; return 1; }
  if [ "$(grep -c '^> ' <<< "$out")" -ne "$1" ] || grep -q WARNING <<< "$out"; then
    echo "ansible-doc ${*:2}: expected $1 pages and no warning:"; grep -i 'warning\|^> ' <<< "$out"; return 1
  fi
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
    # Every module's page, in one ansible-doc.
    doc_pages 7 detached.jobs.{start,wait,async_status,job_info,prune,async_wrapper,host_operation} || exit 1
    ansible-playbook detached.jobs.demo && test -f "$installed/playbooks/demo.yml" || exit 1
    # Keyword mode from the installed copy: its modules' docs, and a keyword playbook with the switch on.
    doc_pages 2 -M "$installed/keyword" async_wrapper async_status || exit 1
    ANSIBLE_LIBRARY="$installed/keyword" ansible-playbook "$installed/playbooks/keyword/02_fire_and_forget.yml"
  )
}

only=("$@")
check_targets || exit 1
trap 'kill $(jobs -p) 2>/dev/null; exit 130' INT TERM
run_items
results
echo "stage timings: ${timings[*]}"
if [ ${#failures[@]} -gt 0 ]; then
  echo "failed stages: ${failures[*]}"
  printf 'first failure of %s\n%s\n' "${causes[@]}"
fi
echo "suite: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
