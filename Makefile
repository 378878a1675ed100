.PHONY: setup demo test bench hosts-up hosts-down clean
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.build/collections

setup:
	hack/setup.sh

demo: setup
	.venv/bin/ansible-playbook playbooks/demo.yml

test:
	hack/setup.sh --test
	hack/test.sh

bench:
	hack/setup.sh --test
	.venv/bin/python benchmarks/run.py $(BENCH_ARGS)
	PATH="$(CURDIR)/.venv/bin:$$PATH" .venv/bin/python benchmarks/fleet.py $(FLEET_ARGS)

hosts-up:
	hack/setup.sh --test
	tests/hosts/hosts.sh up

hosts-down:
	tests/hosts/hosts.sh down

clean:
	rm -rf .venv .build
