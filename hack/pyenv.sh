# shellcheck shell=bash
# Sourced by hack/setup.sh and hack/test.sh: the pyenv-installed interpreters (full paths: the
# pyenv shims fail outside a pyenv shell).
pyenv_root() { pyenv root 2>/dev/null || echo ~/.pyenv; }
# pyenv_python 3.13: the newest $(pyenv root)/versions/3.13.*/bin/python3, or nothing.
pyenv_python() {
  local p
  p=$(printf '%s\n' "$(pyenv_root)/versions/$1".*/bin/python3 | sort -V | tail -n 1)
  if [ -x "$p" ]; then echo "$p"; fi
}
# core_python REQUIREMENTS: the controller Python its first line names ("controller Python 3.13"), or nothing.
core_python() { sed -nE '1s/.*controller Python (3\.[0-9]+).*/\1/p' "$1"; }
