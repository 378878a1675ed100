#!/usr/bin/env bash
# SSH test hosts for detached.jobs: network namespaces, each with its own sshd and login user.
#
#   tests/hosts/hosts.sh up [N]    bring up hosts 1..N (default 3); prints the inventory path last
#   tests/hosts/hosts.sh down      remove every test host (namespaces, veths, sshd, users, sudoers)
#   tests/hosts/hosts.sh status    exit 0 and print the inventory path when the hosts are up
#   tests/hosts/hosts.sh sessions  per host, how many sessions (remote executions: commands, sftp)
#                                  its sshd has started since it came up: "dj-h<i> N" lines
#   tests/hosts/hosts.sh mem       per host, the memory of its processes (PSS, KiB; an idle host is
#                                  its sshd): "dj-h<i> KIB" lines, then "total KIB"
#
# Host i is:
#   - the network namespace dj-h<i>, joined to the root namespace by a veth pair:
#     dj-h<i>-r (root side, 10.77.<i>.1/24) <-> dj-h<i>-n (in the namespace, 10.77.<i>.2/24);
#     `ip link set dj-h<i>-r down` cuts the host off the network, `... up` brings it back;
#   - an sshd running inside the namespace on 10.77.<i>.2:22 (own config, host key, pid file
#     and log under the state directory; UsePAM no, key authentication only);
#   - the login user djuser<i> (home /home/djuser<i>, so its own ~/.ansible_async), with the
#     harness's key in ~/.ssh/authorized_keys and passwordless sudo
#     (/etc/sudoers.d/detached-jobs-djuser<i>);
#   - a Python of its own: $DJ_HOSTS_PYTHONS lists one per host, in order ("system" is
#     /usr/bin/python3, "3.8" the newest $(pyenv root)/versions/3.8.*/bin/python3); hosts past the
#     list, and versions that pyenv does not have (said on stderr), get /usr/bin/python3. Default
#     "system 3.8 3.13". The inventory names the interpreter (ansible_python_interpreter) and its
#     version (dj_python). The login user may not pass through the directories above a pyenv
#     Python (/root is 0700): it is given search permission (x, not read) on just those, by ACL
#     (setfacl; the acl package is installed when missing), which `down` takes back.
#
# The namespaces share the file system, the process table and the host name with the machine:
# the hosts differ only by network address and by login user (home directory, job directory).
# A job that becomes root writes to /root/.ansible_async on every host alike.
#
# State directory: $DJ_HOSTS_STATE (default /run/detached-jobs-hosts): the key pair (id_ed25519),
# inventory.ini, and h<i>/ with sshd_config, host key, sshd.pid, sshd.log; cp/ holds the
# controller's SSH ControlMaster sockets, so that `down` can close them.
#
# `up` is idempotent (it repairs what is missing: a link left down, a dead sshd) and installs
# openssh-server and sudo with apt-get when they are missing. `down` also deletes the users and
# their homes (so every `up` starts with empty job directories) and kills every process left in
# the namespaces (detached jobs of the test users included). Needs root.
set -euo pipefail

STATE=${DJ_HOSTS_STATE:-/run/detached-jobs-hosts}
PYTHONS=${DJ_HOSTS_PYTHONS:-system 3.8 3.13}
SYSTEM_PYTHON=/usr/bin/python3
# shellcheck source=hack/pyenv.sh
. "$(cd "$(dirname "$0")/../.." && pwd)/hack/pyenv.sh"
KEY=$STATE/id_ed25519
INVENTORY=$STATE/inventory.ini
MAX_HOSTS=50

log() { echo "hosts: $*" >&2; }
die() { log "error: $*"; exit 1; }

need_root() { [ "$(id -u)" -eq 0 ] || die "must run as root (network namespaces, users, sshd)"; }

ensure_packages() {
  local missing=()
  [ -x /usr/sbin/sshd ] || missing+=(openssh-server)
  command -v sudo >/dev/null 2>&1 || missing+=(sudo)
  command -v ssh >/dev/null 2>&1 || missing+=(openssh-client)
  command -v ip >/dev/null 2>&1 || missing+=(iproute2)
  command -v setfacl >/dev/null 2>&1 || missing+=(acl)
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

netns_exists() { ip netns list | awk '{print $1}' | grep -qx "$1"; }

# Hosts known from the namespaces and from the state directory.
known_hosts() {
  {
    ip netns list | awk '{print $1}' | sed -n 's/^dj-h\([0-9][0-9]*\)$/\1/p'
    if [ -d "$STATE" ]; then
      find "$STATE" -maxdepth 1 -name 'h[0-9]*' -printf '%f\n' | sed -n 's/^h\([0-9][0-9]*\)$/\1/p'
    fi
    getent passwd | cut -d: -f1 | sed -n 's/^djuser\([0-9][0-9]*\)$/\1/p'
    find /etc/sudoers.d -maxdepth 1 -name 'detached-jobs-djuser*' -printf '%f\n' | sed -n 's/^detached-jobs-djuser\([0-9][0-9]*\)$/\1/p'
  } | sort -un
}

sshd_pid() {  # the pid of host $1's sshd listener, if it is alive
  local pidfile=$STATE/h$1/sshd.pid pid
  [ -f "$pidfile" ] || return 1
  pid=$(cat "$pidfile")
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "$STATE/h$1/sshd_config" || return 1
  echo "$pid"
}

ensure_key() {
  mkdir -p "$STATE" "$STATE/cp"
  chmod 0755 "$STATE"
  chmod 0700 "$STATE/cp"
  [ -f "$KEY" ] || ssh-keygen -q -t ed25519 -N '' -C detached-jobs-test-hosts -f "$KEY"
}

ensure_user() {  # user, home, authorized key, sudo
  local user=djuser$1 home=/home/djuser$1
  if ! id "$user" >/dev/null 2>&1; then
    useradd --create-home --home-dir "$home" --shell /bin/bash "$user"
  fi
  # Unlocked but without a password: with UsePAM no, sshd refuses locked accounts ("!").
  usermod -p '*' "$user"
  install -d -m 0700 -o "$user" -g "$user" "$home/.ssh"
  install -m 0600 -o "$user" -g "$user" "$KEY.pub" "$home/.ssh/authorized_keys"
  local sudoers=/etc/sudoers.d/detached-jobs-$user tmp
  tmp=$(mktemp)
  printf '%s ALL=(ALL:ALL) NOPASSWD: ALL\n' "$user" >"$tmp"
  visudo -cqf "$tmp" || { rm -f "$tmp"; die "bad sudoers line for $user"; }
  install -m 0440 -o root -g root "$tmp" "$sudoers"
  rm -f "$tmp"
}

ensure_network() {
  local i=$1 ns=dj-h$1 root_if=dj-h$1-r ns_if=dj-h$1-n
  netns_exists "$ns" || ip netns add "$ns"
  ip -n "$ns" link set lo up
  if ! ip link show "$root_if" >/dev/null 2>&1; then
    ip -n "$ns" link del "$ns_if" 2>/dev/null || true
    ip link add "$root_if" type veth peer name "$ns_if" netns "$ns"
  fi
  ip addr replace "10.77.$i.1/24" dev "$root_if"
  ip -n "$ns" addr replace "10.77.$i.2/24" dev "$ns_if"
  ip link set "$root_if" up
  ip -n "$ns" link set "$ns_if" up
}

ensure_sshd() {
  local i=$1 dir=$STATE/h$1 ns=dj-h$1
  mkdir -p "$dir"
  [ -f "$dir/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -C "dj-h$i" -f "$dir/ssh_host_ed25519_key"
  cat >"$dir/sshd_config" <<EOF
# sshd of detached.jobs test host $i (network namespace $ns); written by tests/hosts/hosts.sh
Port 22
ListenAddress 10.77.$i.2
HostKey $dir/ssh_host_ed25519_key
PidFile $dir/sshd.pid
UsePAM no
PermitRootLogin no
AllowUsers djuser$i
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
PrintMotd no
# Many multiplexed sessions and parallel connection attempts from the tests.
MaxSessions 64
MaxStartups 64:30:128
# VERBOSE logs every session ("Starting session: command for ..."), which hosts.sh sessions counts.
LogLevel VERBOSE
# Notice a dead controller quickly (the link-drop tests).
ClientAliveInterval 5
ClientAliveCountMax 3
Subsystem sftp /usr/lib/openssh/sftp-server
EOF
  mkdir -p /run/sshd && chmod 0755 /run/sshd  # privilege separation directory
  if pid=$(sshd_pid "$i"); then
    kill -HUP "$pid"  # re-read the config (it may have changed)
  else
    /usr/sbin/sshd -t -f "$dir/sshd_config"
    rm -f "$dir/sshd.pid"
    ip netns exec "$ns" /usr/sbin/sshd -f "$dir/sshd_config" -E "$dir/sshd.log"
  fi
  local n=0
  until ssh_check "$i"; do
    n=$((n + 1))
    [ $n -lt 50 ] || die "sshd of host $i does not answer (see $dir/sshd.log)"
    sleep 0.2
  done
}

ssh_check() {
  ssh -q -i "$KEY" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
    -o ConnectTimeout=3 -o ControlMaster=no -o ControlPath=none "djuser$1@10.77.$1.2" \
    'sudo -n true' </dev/null >/dev/null 2>&1
}

# host_python I: "PATH VERSION" of host I's Python ($DJ_HOSTS_PYTHONS); `up` keeps it in h<i>/python.
host_python() {
  local want path
  want=$(echo "$PYTHONS" | awk -v i="$1" '{print $i}')
  if [ -n "$want" ] && [ "$want" != system ]; then
    path=$(pyenv_python "$want")
    [ -n "$path" ] || log "host $1: no Python $want at $(pyenv_root)/versions/$want.*/bin/python3; it gets $SYSTEM_PYTHON"
  fi
  path=${path:-$SYSTEM_PYTHON}
  echo "$path $("$path" -c 'import platform; print(platform.python_version())')"
}

# ensure_python_access I PATH: host I's user can run the Python at PATH (search permission on the
# directories above it that it cannot pass; recorded in h<i>/acl for `down`).
ensure_python_access() {
  local user=djuser$1 dir
  dir=$(dirname "$(realpath "$2")")
  while [ "$dir" != / ]; do
    if ! runuser -u "$user" -- test -x "$dir"; then
      setfacl -m "u:$user:x" "$dir"
      grep -qxF "$dir" "$STATE/h$1/acl" 2>/dev/null || echo "$dir" >>"$STATE/h$1/acl"
    fi
    dir=$(dirname "$dir")
  done
  runuser -u "$user" -- "$2" -c '' || die "host $1: $user cannot run $2"
}

# revoke_python_access I: take back what ensure_python_access gave host I's user.
revoke_python_access() {
  local dir
  [ -f "$STATE/h$1/acl" ] || return 0
  while read -r dir; do
    setfacl -x "u:djuser$1" "$dir" 2>/dev/null || true
  done <"$STATE/h$1/acl"
  rm -f "$STATE/h$1/acl"
}

write_inventory() {
  local n=$1 i tmp
  tmp=$(mktemp "$STATE/.inventory.XXXXXX")
  {
    echo "# detached.jobs SSH test hosts (tests/hosts/hosts.sh); network namespaces dj-h1..dj-h$n"
    echo "[djhosts]"
    for i in $(seq 1 "$n"); do
      read -r path version <"$STATE/h$i/python"
      echo "dj-h$i ansible_host=10.77.$i.2 ansible_user=djuser$i dj_link=dj-h$i-r ansible_python_interpreter=$path dj_python=$version"
    done
    echo
    echo "[djhosts:vars]"
    echo "ansible_connection=ssh"
    echo "ansible_ssh_private_key_file=$KEY"
    echo "ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR'"
    # Replaces ssh_args (ssh keeps the first value of an option, so these must not be appended
    # after ansible's defaults): short-lived masters, dead links noticed in about 6 s.
    echo "ansible_ssh_args='-C -o ControlMaster=auto -o ControlPersist=30s -o ServerAliveInterval=2 -o ServerAliveCountMax=3 -o ConnectTimeout=5'"
    echo "ansible_control_path_dir=$STATE/cp"
  } >"$tmp"
  chmod 0644 "$tmp"
  mv -f "$tmp" "$INVENTORY"
}

close_masters() {
  local sock
  [ -d "$STATE/cp" ] || return 0
  for sock in "$STATE"/cp/*; do
    [ -S "$sock" ] || continue
    ssh -o ControlPath="$sock" -O exit dummy >/dev/null 2>&1 || true
    rm -f "$sock"
  done
}

cmd_up() {
  local n=${1:-3}
  if ! [[ "$n" =~ ^[0-9]+$ ]] || [ "$n" -lt 1 ] || [ "$n" -gt $MAX_HOSTS ]; then die "N must be 1..$MAX_HOSTS"; fi
  need_root
  ensure_packages
  ensure_key
  local i
  for i in $(seq 1 "$n"); do
    ensure_user "$i"
    ensure_network "$i"
    ensure_sshd "$i"
    host_python "$i" >"$STATE/h$i/python"
    ensure_python_access "$i" "$(cut -d' ' -f1 "$STATE/h$i/python")"
  done
  echo "$n" >"$STATE/count"
  write_inventory "$n"
  log "$n host(s) up: dj-h1..dj-h$n (10.77.<i>.2, user djuser<i>); Python: $(sed -n 's/^\(dj-h[0-9]*\) .* dj_python=\([^ ]*\).*/\1 \2/p' "$INVENTORY" | paste -sd, | sed 's/,/, /g')"
  echo "$INVENTORY"
}

cmd_down() {
  need_root
  close_masters
  local i ns pid pids sig
  for i in $(known_hosts); do
    ns=dj-h$i
    if pid=$(sshd_pid "$i"); then kill "$pid" 2>/dev/null || true; fi
    if netns_exists "$ns"; then
      # Everything still running in the namespace: sshd sessions, detached jobs of the tests.
      for sig in TERM KILL; do
        pids=$(ip netns pids "$ns" || true)
        [ -n "$pids" ] || break
        # shellcheck disable=SC2086
        kill -s "$sig" $pids 2>/dev/null || true
        sleep 0.5
      done
      ip netns del "$ns"
    fi
    ip link del "dj-h$i-r" 2>/dev/null || true
    rm -f "/etc/sudoers.d/detached-jobs-djuser$i"
    revoke_python_access "$i"
    if id "djuser$i" >/dev/null 2>&1; then
      # Processes of the user outside the namespaces (a job started with `su`, say).
      pids=$(pgrep -u "djuser$i" || true)
      # shellcheck disable=SC2086
      [ -z "$pids" ] || kill -s KILL $pids 2>/dev/null || true
      userdel --remove "djuser$i" 2>/dev/null || userdel "djuser$i"
    fi
    rm -rf "${STATE:?}/h$i"
  done
  rm -rf "$STATE"
  log "down: every test host removed"
}

# The sessions sshd started on host I: one per command the controller ran there (ssh exec), and
# per file transfer (sftp); a ControlPersist connection carries many.
cmd_sessions() {
  local n i
  n=$(cat "$STATE/count" 2>/dev/null) || die "no test hosts are up"
  for i in $(seq 1 "$n"); do
    echo "dj-h$i $(grep -c 'Starting session: ' "$STATE/h$i/sshd.log" 2>/dev/null || true)"
  done
}

# The memory of each host: the PSS of every process in its namespace (smaps_rollup; RSS where missing).
cmd_mem() {
  local n i pid kib total=0 sum
  n=$(cat "$STATE/count" 2>/dev/null) || die "no test hosts are up"
  for i in $(seq 1 "$n"); do
    sum=0
    for pid in $(ip netns pids "dj-h$i" 2>/dev/null); do
      kib=$(awk '/^Pss:/ {print $2; exit}' "/proc/$pid/smaps_rollup" 2>/dev/null || true)
      [ -n "$kib" ] || kib=$(awk '/^VmRSS:/ {print $2; exit}' "/proc/$pid/status" 2>/dev/null || echo 0)
      sum=$((sum + kib))
    done
    echo "dj-h$i $sum"
    total=$((total + sum))
  done
  echo "total $total"
}

cmd_status() {
  [ -f "$INVENTORY" ] && [ -f "$STATE/count" ] || return 1
  local n i
  n=$(cat "$STATE/count")
  for i in $(seq 1 "$n"); do
    netns_exists "dj-h$i" && sshd_pid "$i" >/dev/null || return 1
  done
  echo "$INVENTORY"
}

main() {
  local cmd=${1:-}
  [ $# -gt 0 ] && shift
  mkdir -p "$(dirname "$STATE")"
  # One up/down at a time (two suites may share the hosts).
  exec 9>"$(dirname "$STATE")/.$(basename "$STATE").lock"
  flock 9
  case "$cmd" in
    up) cmd_up "$@" ;;
    down) cmd_down ;;
    status) cmd_status ;;
    sessions) cmd_sessions ;;
    mem) cmd_mem ;;
    *) echo "usage: $0 up [N] | down | status | sessions | mem" >&2; exit 2 ;;
  esac
}

main "$@"
