.PHONY: setup demo test unit integration package clean
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.build/collections

setup:
	hack/setup.sh

demo: setup
	.venv/bin/ansible-playbook playbooks/demo.yml

test:
	hack/setup.sh --test
	hack/test.sh

clean:
	rm -rf .venv .build
