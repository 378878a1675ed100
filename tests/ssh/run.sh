#!/usr/bin/env bash
# SSH integration suite: ansible-playbook against real SSH hosts (tests/hosts/hosts.sh).
#
#   tests/ssh/run.sh                 every case
#   tests/ssh/run.sh CASE...         only these cases (see CASES below)
#
# Brings the test hosts up when they are not (3 hosts), runs each case's playbook, and takes the
# hosts down again at the end, unless KEEP_HOSTS=1 or the hosts were already up before the run
# (then they are somebody else's and stay). Exits non-zero when any case failed and names the
# failed cases; a failed case's log is printed and kept under $DJ_SSH_LOGS
# (default .build/ssh-logs).
#
# Uses the ansible-playbook on PATH (or $ANSIBLE_PLAYBOOK) and ANSIBLE_COLLECTIONS_PATH (default
# .build/collections of this checkout). Needs root (network namespaces, links). About 2 minutes.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
hosts_sh=$root/tests/hosts/hosts.sh
export ANSIBLE_COLLECTIONS_PATH=${ANSIBLE_COLLECTIONS_PATH:-$root/.build/collections}
export ANSIBLE_FORCE_COLOR=0 ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=0 ANSIBLE_DEPRECATION_WARNINGS=0
playbook_bin=${ANSIBLE_PLAYBOOK:-ansible-playbook}
logs=${DJ_SSH_LOGS:-$root/.build/ssh-logs}
case_timeout=${DJ_SSH_CASE_TIMEOUT:-300}
CASES=(link_drop wait_drop become become_pipelining all_hosts watch_retry_slots counting security_shared_dir)

say() { echo "ssh-suite: $*"; }

command -v "$playbook_bin" >/dev/null || { say "no $playbook_bin on PATH"; exit 2; }
[ "$(id -u)" -eq 0 ] || { say "must run as root (network namespaces)"; exit 2; }

selected=("$@")
[ ${#selected[@]} -gt 0 ] || selected=("${CASES[@]}")
for c in "${selected[@]}"; do
  [[ " ${CASES[*]} " == *" $c "* ]] || { say "unknown case $c (cases: ${CASES[*]})"; exit 2; }
done

brought_up=0
if inventory=$("$hosts_sh" status); then
  say "using the test hosts that are already up ($inventory)"
else
  brought_up=1
  inventory=$("$hosts_sh" up 3 | tail -n 1) || { say "could not bring the test hosts up"; exit 1; }
fi
state=$(dirname "$inventory")
mapfile -t links < <(sed -n 's/.* dj_link=\([^ ]*\).*/\1/p' "$inventory")
bg_pid=

finish() {
  [ -z "$bg_pid" ] || kill "$bg_pid" 2>/dev/null
  local l
  for l in "${links[@]}"; do ip link set "$l" up 2>/dev/null; done  # never leave a host cut off
  if [ "$brought_up" = 1 ] && [ "${KEEP_HOSTS:-0}" != 1 ]; then
    "$hosts_sh" down >/dev/null 2>&1 || say "tests/hosts/hosts.sh down failed"
  elif [ "${KEEP_HOSTS:-0}" = 1 ]; then
    say "KEEP_HOSTS=1: the hosts stay up; inventory $inventory; remove them with $hosts_sh down"
  fi
}
trap finish EXIT
trap 'exit 130' INT TERM

play() {  # play PLAYBOOK [ansible-playbook args...]
  local pb=$1; shift
  (cd "$here" && timeout --kill-after=10 "$case_timeout" "$playbook_bin" -i "$inventory" "$pb" "$@")
}

# --- cases: each returns non-zero on failure; its output goes to its log ($case_log) -------
# The cases about many hosts (link_drop, wait_drop, all_hosts) use every host; the others are
# about one host at a time (become, the counting rule, slots, retries and live output of two
# controllers, other users' attacks) and run on dj-h1 alone (--limit dj-h1: the system Python):
# what they test over SSH does not depend on the host's Python, and the host code on 3.8 and
# 3.13 runs in make test's integration cells (issue 27: the same thing once).
case_log=
case_link_drop() { play link_drop.yml; }

case_become() { ANSIBLE_PIPELINING=false play become.yml --limit dj-h1; }

case_become_pipelining() { ANSIBLE_PIPELINING=true play become.yml --limit dj-h1; }

case_all_hosts() { play all_hosts.yml; }

# Other local users attack root's jobs (the integration target security_shared_dir's tasks, become).
# With pipelining: its ~80 remote calls then take about 50 s; through AnsiballZ and sudo each,
# about 3 minutes. On dj-h1 alone: the integration target attacks the same host code on 3.8 and
# 3.13 (make test's 2.17 and 2.18 cells); this adds SSH, become and the pipelined path.
case_security_shared_dir() { ANSIBLE_PIPELINING=true play security_shared_dir.yml --limit dj-h1; }

# The counting rule for 2 and for 12 jobs per host, and with rounds of 1 s (tests/ssh/counting.yml).
case_counting() {
  play counting.yml --limit dj-h1 -e dj_jobs=2 && play counting.yml --limit dj-h1 -e dj_jobs=12 &&
    play counting.yml --limit dj-h1 -e dj_jobs=12 -e dj_poll=1
}

# Two controllers start jobs of one slot on every host at the same moment; then the checks.
case_watch_retry_slots() {
  play watch_retry_slots.yml --limit dj-h1 -e dj_phase=prepare || return
  local a b rc=0
  play watch_retry_slots.yml --limit dj-h1 -e dj_phase=start -e dj_ctl=1 & a=$!
  play watch_retry_slots.yml --limit dj-h1 -e dj_phase=start -e dj_ctl=2 & b=$!
  wait "$a" || rc=1
  wait "$b" || rc=1
  [ "$rc" = 0 ] || return 1
  play watch_retry_slots.yml --limit dj-h1 -e dj_phase=check
}

# The wait task of wait_drop.yml is running when dj-h1's link goes down; the link stays down
# until the wait has noticed the lost connection (it then retries), the jobs are let go, and
# the link comes back. The playbook checks the results; this checks that the connection was
# really lost and retried.
case_wait_drop() {
  local log=$case_log go=$state/wait_drop.go link=${links[0]} user addr t0 rc survived=0
  user=$(sed -n 's/^dj-h1 .*ansible_user=\([^ ]*\).*/\1/p' "$inventory")
  addr=$(sed -n 's/^dj-h1 .*ansible_host=\([^ ]*\).*/\1/p' "$inventory")
  rm -f "$go"
  play wait_drop.yml -e "dj_go=$go" &
  bg_pid=$!
  t0=$SECONDS
  # In progress: the task has begun and a host-side wait call (lean runner or module) runs.
  until grep -q 'TASK \[Wait for the jobs' "$log" && pgrep -u "$user" -f 'import base64;exec|AnsiballZ_wait' >/dev/null; do
    kill -0 "$bg_pid" 2>/dev/null || { echo "CASE ERROR: the playbook ended before its wait was in progress"; return 1; }
    [ $((SECONDS - t0)) -lt 120 ] || { echo "CASE ERROR: the wait did not start within 120 s"; return 1; }
    sleep 0.2
  done
  echo "CASE: the wait is in progress; cutting $link"
  ip link set "$link" down
  t0=$SECONDS
  # Down until the controller's SSH connection to the host is gone (ServerAliveInterval of the
  # inventory: about 6 s); ansible shows the wait's "connection lost" warnings only at the end
  # of the task, so they are checked afterwards.
  while ss -Htn state established "dst $addr" | grep -q .; do
    kill -0 "$bg_pid" 2>/dev/null || break
    [ $((SECONDS - t0)) -lt 60 ] || { echo "CASE ERROR: the SSH connection survived 60 s without a link"; survived=1; break; }
    sleep 0.2
  done
  echo "CASE: link down for $((SECONDS - t0)) s; letting the jobs go and restoring $link"
  touch "$go"
  ip link set "$link" up
  wait "$bg_pid"; rc=$?
  bg_pid=
  rm -f "$go"
  [ "$rc" -eq 0 ] || { echo "CASE ERROR: the playbook failed (rc $rc)"; return 1; }
  [ "$survived" -eq 0 ] || return 1
  grep -q 'dj-h1: connection lost' "$log" || { echo "CASE ERROR: the wait never lost its connection"; return 1; }
  if grep -q 'dj-h[23]: connection lost' "$log"; then echo "CASE ERROR: hosts whose link stayed up lost their connection"; return 1; fi
  echo "CASE: the wait lost its connection to dj-h1, retried, and returned every result"
}

mkdir -p "$logs"
passed=0; failed=(); t_all=$SECONDS
for c in "${selected[@]}"; do
  log=$logs/$c.log
  : >"$log"
  t0=$SECONDS
  case_log=$log
  "case_$c" >>"$log" 2>&1
  rc=$?
  if [ $rc -eq 0 ]; then
    passed=$((passed + 1)); say "case $c: passed ($((SECONDS - t0)) s)"
  else
    failed+=("$c"); say "case $c: FAILED ($((SECONDS - t0)) s, rc $rc); log $log:"
    tail -n 80 "$log" | sed 's/^/    /'
  fi
done
say "${passed} passed, ${#failed[@]} failed in $((SECONDS - t_all)) s${failed:+; failed: ${failed[*]}}"
[ ${#failed[@]} -eq 0 ]
