#!/usr/bin/python
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
# A module of the test with no documentation: the start cannot check its arguments, the module does.
from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule


def main() -> None:
    module = AnsibleModule(argument_spec={"message": {"type": "str", "default": "hello"}})
    module.exit_json(changed=False, message=module.params["message"])


if __name__ == "__main__":
    main()
