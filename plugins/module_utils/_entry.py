# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""The entry points of the collection's modules. Private to detached.jobs.

Two modules run code; the others only document their actions. async_wrapper (the host side of
start) is `_entry.main(AnsibleModule, "start")`: parse the arguments with the operation's spec
(_specs.SPECS, where every spec is declared once), run the operation (_ops.run, the same functions
the lean runner calls) and exit with its result. host_operation (the host side of the other
actions, where their lean runner cannot be used) is `_entry.operation_main`: the same, for the
operation and parameters it is given.
Host code: the controller never imports it (it imports _specs). Standard library only
(AnsibleModule is handed in by the module), Python 3.8+.
"""

from __future__ import annotations

import typing as t

from ansible_collections.detached.jobs.plugins.module_utils import _ops
from ansible_collections.detached.jobs.plugins.module_utils._specs import HOST_OPERATION_SPEC, SPECS


def main(module_class: t.Any, op: str) -> None:
    """Run one operation as a module: module_class is ansible.module_utils.basic.AnsibleModule."""
    module = module_class(argument_spec=SPECS[op], supports_check_mode=True)
    _exit(module, _ops.run(op, module.params, module.check_mode))


def operation_main(module_class: t.Any, validator_class: t.Any) -> None:
    """Run the operation the module is given (host_operation): its parameters are checked against
    the operation's spec as AnsibleModule checks a module's own; validator_class is
    ansible.module_utils.common.arg_spec.ArgumentSpecValidator."""
    module = module_class(argument_spec=HOST_OPERATION_SPEC, supports_check_mode=True)
    op = module.params["operation"]
    checked = validator_class(SPECS[op]).validate(module.params["params"] or {})
    if checked.error_messages:
        module.fail_json(msg=f"detached.jobs host operation {op}: {'; '.join(checked.error_messages)}")
    _exit(module, _ops.run(op, checked.validated_parameters, module.check_mode))


def _exit(module: t.Any, result: dict) -> None:
    if result.get("failed"):
        module.fail_json(**result)
    module.exit_json(**result)
