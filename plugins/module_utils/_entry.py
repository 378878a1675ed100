# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""The one entry point of the collection's modules. Private to detached.jobs.

Every module's main() is `_entry.main(AnsibleModule, "<operation>")`: parse the arguments with
the operation's spec (_specs.SPECS, where every spec is declared once), run the operation
(_ops.run, the same functions the lean runner calls) and exit with its result.
Host code: the controller never imports it (it imports _specs). Standard library only
(AnsibleModule is handed in by the module), Python 3.8+.
"""

from __future__ import annotations

import typing as t

from ansible_collections.detached.jobs.plugins.module_utils import _ops
from ansible_collections.detached.jobs.plugins.module_utils._specs import SPECS


def main(module_class: t.Any, op: str) -> None:
    """Run one operation as a module: module_class is ansible.module_utils.basic.AnsibleModule."""
    module = module_class(argument_spec=SPECS[op], supports_check_mode=True)
    result = _ops.run(op, module.params, module.check_mode)
    if result.get("failed"):
        module.fail_json(**result)
    module.exit_json(**result)
