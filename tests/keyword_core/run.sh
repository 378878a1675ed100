#!/usr/bin/env bash
# ansible-core's own integration targets for the async keyword, run with keyword mode on
# (the collection's keyword/ directory first in the module search path) against localhost.
#   tests/keyword_core/run.sh VENV [TARGET...]
# VENV holds the ansible-core to test (.venv: 2.19, .venv-core2.21: 2.21). Its source distribution,
# which carries the targets and ansible-test, is downloaded by hack/setup.sh --test into
# .build/coresrc. The targets run unmodified; only ansible-test is told where the switch and the
# collection are: it sets ANSIBLE_LIBRARY and ANSIBLE_COLLECTIONS_PATH itself (to its support
# plugins), so the keyword directory is put in front of its library path and the collection
# after its collections path. See docs/keyword.md.
set -euo pipefail
cd "$(dirname "$0")/../.." || exit 1
root=$PWD
venv=$1; shift
case $venv in /*) ;; *) venv="$root/$venv" ;; esac
# The targets for the keyword itself, and no_log (that async results keep no_log). Other targets
# that use async: in passing also pass (docs/keyword.md says which and how to run them); they
# are left out of make test for its run time.
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(async async_fail async_extra_data no_log)
version=$("$venv/bin/python" -c 'import ansible.release as r; print(r.__version__)')
py=$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
sdist="$root/.build/coresrc/ansible_core-$version.tar.gz"
[ -f "$sdist" ] || { echo "no $sdist: run hack/setup.sh --test"; exit 1; }
work="$root/.build/keyword-core/$version"
rm -rf "$work" && mkdir -p "$work"
tar xzf "$sdist" -C "$work"
src="$work/ansible_core-$version"
"$venv/bin/python" - "$src/test/lib/ansible_test/_internal/ansible_util.py" <<'PY'
import sys
path = sys.argv[1]
text = open(path, encoding="utf-8").read()
anchor = "    if data_context().content.is_ansible:\n        env.update(configure_plugin_paths(args))\n\n    return env\n"
if text.count(anchor) != 1:
    sys.exit(f"{path}: the place to set the module search path was not found; this ansible-test is not supported")
switch = (
    "    if data_context().content.is_ansible:\n        env.update(configure_plugin_paths(args))\n\n"
    "    # detached.jobs keyword mode: the collection's keyword/ directory first in the module search path.\n"
    "    env['ANSIBLE_LIBRARY'] = os.environ['DJ_KEYWORD_LIBRARY'] + (':' + env['ANSIBLE_LIBRARY'] if env.get('ANSIBLE_LIBRARY') else '')\n"
    "    env['ANSIBLE_COLLECTIONS_PATH'] = ':'.join(p for p in (env.get('ANSIBLE_COLLECTIONS_PATH'), os.environ['DJ_COLLECTIONS_PATH']) if p)\n\n"
    "    return env\n"
)
open(path, "w", encoding="utf-8").write(text.replace(anchor, switch))
PY
cd "$src"
export DJ_KEYWORD_LIBRARY="$root/.build/collections/ansible_collections/detached/jobs/keyword"
export DJ_COLLECTIONS_PATH="$root/.build/collections"
export PYTHONPATH="$src/test/lib"
log="$work/run.log"
set +e
PATH="$venv/bin:$PATH" "$venv/bin/python" test/lib/ansible_test/_util/target/cli/ansible_test_cli_stub.py \
  integration --local --python "$py" --color no "${targets[@]}" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
[ "$rc" -eq 0 ] || { echo "keyword-core $version: ansible-test failed (rc $rc)"; exit "$rc"; }
# The proof that the switch took: the results the targets print (debug var=async_result) carry the
# collection's "detached" record, which ansible-core's own wrapper never writes.
n=$(grep -c '"detached": {' "$log" || true)
[ "$n" -gt 0 ] || { echo "keyword-core $version: no result carries \"detached\": the targets ran on ansible-core's own wrapper"; exit 1; }
echo "keyword-core $version: ${targets[*]} passed with keyword mode on ($n results from the collection's engine)"
