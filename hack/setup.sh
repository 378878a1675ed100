#!/usr/bin/env bash
# Sets up everything from the project's own files.
#   hack/setup.sh          .venv with requirements/demo.txt (enough for `make demo`)
#   hack/setup.sh --test   also the test tools (requirements/dev.txt, pinned by constraints.txt), the
#                          ansible-core version matrix (.venv-core2.16 ... from requirements/core-*.txt, each
#                          with the Python its header names, from pyenv; requirements/dev-<v>.txt when present),
#                          Debian packages the tests need, and the pip bootstrap stand-in for ansible-test.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-demo}

need=()
python3 -m venv --help >/dev/null 2>&1 && python3 -c 'import ensurepip' 2>/dev/null || need+=(python3-venv)
if [ "$mode" = "--test" ]; then
  for tool in rsync:rsync shellcheck:shellcheck pgrep:procps sshd:openssh-server ssh:openssh-client sudo:sudo ip:iproute2 runuser:util-linux setfacl:acl; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${tool%%:*}" ] || need+=("${tool#*:}")
  done
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# venv DIR REQUIREMENTS [CONSTRAINTS] [PYTHON]: (re)build DIR with PYTHON (default python3) when
# its requirement files change.
venv() {
  local dir=$1 req=$2 con=${3:-} python=${4:-python3}
  local stamp
  stamp=$(cat requirements/*.txt | sha256sum | cut -c1-16)
  [ -f "$dir/.stamp-$(basename "$req")-$stamp" ] && return 0
  echo "setup: building $dir from $req with $python"
  [ -x "$dir/bin/python" ] || "$python" -m venv "$dir"
  "$dir/bin/pip" install -q --disable-pip-version-check --no-compile -r "$req" ${con:+-c "$con"}
  rm -f "$dir"/.stamp-"$(basename "$req")"-*
  touch "$dir/.stamp-$(basename "$req")-$stamp"
}

# shellcheck source=hack/pyenv.sh
. hack/pyenv.sh

if [ "$mode" = "--test" ]; then
  # Every venv at once, each one's pip output in its log (shown if it fails): the main venv alone
  # keeps one CPU busy for a minute, and the others need the CPUs too.
  mkdir -p .build/setup .build/coresrc
  pids=(); dirs=()
  # background NAME COMMAND...: run COMMAND in the background, its output in NAME's log.
  background() {
    local dir=$1 log=.build/setup/${1#.}.log
    "${@:2}" >"$log" 2>&1 &
    pids+=($!); dirs+=("$dir")
  }
  background_venv() { background "$1" venv "$@"; }
  # ansible-core's own integration targets for the async keyword (tests/keyword_core/run.sh) come
  # from its source distribution, of the versions pinned for .venv (2.19) and .venv-core2.21:
  # fetched with .venv's pip once it is built, beside the other venvs' builds.
  coresrc() {
    local req v
    for req in requirements/constraints.txt requirements/core-2.21.txt; do
      v=$(sed -nE 's/^ansible-core==([0-9.]+).*/\1/p' "$req")
      [ -f ".build/coresrc/ansible_core-$v.tar.gz" ] && continue
      echo "setup: downloading the source distribution of ansible-core $v"
      .venv/bin/pip download -q --disable-pip-version-check --no-deps --no-binary :all: --python-version 3.13 \
        -d .build/coresrc "ansible-core==$v" || return
    done
  }
  # The main venv, then (with its pip) the source distributions.
  main_venv() { venv .venv requirements/dev.txt requirements/constraints.txt && coresrc; }
  background .venv main_venv
  for req in requirements/core-*.txt; do
    v=$(basename "$req" .txt); v=${v#core-}
    # The controller Python a version needs is named in its header: "controller Python 3.13".
    want=$(core_python "$req")
    python=python3
    if [ -n "$want" ]; then
      python=$(pyenv_python "$want")
      if [ -z "$python" ]; then
        echo "setup: skipping core $v: no Python $want at $(pyenv_root)/versions/$want.*/bin/python3"
        continue
      fi
    fi
    # requirements/dev-<v>.txt, when there is one, adds the test tools (every stage runs on <v>).
    [ -f "requirements/dev-$v.txt" ] && req=requirements/dev-$v.txt
    background_venv ".venv-core$v" "$req" "" "$python"
  done
  background_venv .venv-mitogen requirements/mitogen.txt
  background_venv .venv-runner requirements/runner.txt
  failed=()
  for i in "${!pids[@]}"; do
    if wait "${pids[$i]}"; then
      grep -h '^setup: ' ".build/setup/${dirs[$i]#.}.log" || true
    else
      failed+=("${dirs[$i]}"); echo "setup: building ${dirs[$i]} failed:"; tail -n 30 ".build/setup/${dirs[$i]#.}.log"
    fi
  done
  [ ${#failed[@]} -eq 0 ] || { echo "setup: failed: ${failed[*]}"; exit 1; }
  # ansible-test bootstraps pip in its venvs with a script it downloads from a host that may be
  # unreachable; it uses a cached copy first. The stand-in bootstraps pip with ensurepip.
  mkdir -p ~/.ansible/test/cache
  for py in .venv/lib/python3*/site-packages .venv-core*/lib/python3*/site-packages; do
    sed -nE "s/.*pip='([0-9.]+)'.*/\\1/p" "$py"/ansible_test/_internal/python_requirements.py 2>/dev/null | sort -u |
      while read -r pip_version; do
        cp hack/get_pip_standin.py ~/.ansible/test/cache/get_pip_"${pip_version//./_}".py
      done
  done
  # ansible-test makes the user's SSH key pair (~/.ansible/test/id_rsa) at its first run when it
  # is missing. The suite runs several ansible-test cells at once, and on a fresh machine two of
  # them raced to make it: the second ssh-keygen found the file and failed. Made here once, the
  # way ansible-test makes it (PEM, RSA, no passphrase), so every cell finds it.
  if [ ! -e ~/.ansible/test/id_rsa ] && [ ! -e ~/.ansible/test/id_rsa.pub ]; then
    ssh-keygen -m PEM -q -t rsa -N '' -f ~/.ansible/test/id_rsa
    sed -i -E 's/(BEGIN|END) PRIVATE KEY/\1 RSA PRIVATE KEY/' ~/.ansible/test/id_rsa
  fi
else
  venv .venv requirements/demo.txt requirements/constraints.txt
fi

mkdir -p .build/collections/ansible_collections/detached
ln -sfn ../../../.. .build/collections/ansible_collections/detached/jobs
