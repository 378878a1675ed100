#!/usr/bin/python
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""A test module that misbehaves on request (reliability_output integration target only)."""

from __future__ import annotations

import json
import os
import sys

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: rel_output
short_description: Misbehaves on request (test module)
description: Prints what the reliability_output target needs: junk, a traceback, a lot, bytes that are not UTF-8.
options:
  how:
    description: What to do.
    type: str
    required: true
    choices: [junk, crash, noisy, big, bytes]
  size:
    description: Bytes to print for C(how=big).
    type: int
    default: 0
author: detached.jobs contributors
"""


def main() -> None:
    module = AnsibleModule(argument_spec={"how": {"type": "str", "required": True}, "size": {"type": "int", "default": 0}})
    how = module.params["how"]
    if how == "junk":
        print("this is not JSON at all")
        sys.stdout.flush()
        os._exit(0)
    if how == "crash":
        raise RuntimeError("rel_output crashed on purpose")
    if how == "noisy":
        print("a line of junk before the result")
        print(json.dumps({"changed": False, "noisy": "kept"}))
        print("and a line after it")
        sys.stdout.flush()
        os._exit(0)
    if how == "big":
        chunk = b"y" * 65536
        left = module.params["size"]
        while left > 0:
            sys.stdout.buffer.write(chunk[: min(left, len(chunk))])
            left -= len(chunk)
        sys.stdout.flush()
        module.exit_json(changed=False)
    if how == "bytes":
        # A JSON result whose string holds bytes that are not UTF-8, and some on stderr.
        sys.stdout.buffer.write(b'{"changed": false, "raw": "ok\xff\xfeend"}\n')
        sys.stdout.flush()
        sys.stderr.buffer.write(b"warn\xc3\x28\n")
        sys.stderr.flush()
        os._exit(0)
    module.fail_json(msg=f"unknown how {how!r}")


if __name__ == "__main__":
    main()
