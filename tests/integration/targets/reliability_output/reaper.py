# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""Run a command as a child subreaper and record the peak memory of every orphan it reaps.

Usage: reaper.py DIR COMMAND...  Job supervisors started under COMMAND are orphaned (their
launcher exits at once) and become children of this process; when one exits, its peak
resident set size (ru_maxrss, KiB, from wait4) is written to DIR/<pid>. Linux only.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys


def main() -> int:
    out = sys.argv[1]
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(36, 1, 0, 0, 0) != 0:  # PR_SET_CHILD_SUBREAPER
        print("reaper.py: cannot become a child subreaper", file=sys.stderr)
        return 2
    main_child = subprocess.Popen(sys.argv[2:])
    code: int | None = None
    while True:
        try:
            # Once the command has ended, only collect what has already exited.
            pid, status, usage = os.wait4(-1, 0 if code is None else os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
        if pid == main_child.pid:
            code = os.waitstatus_to_exitcode(status)
            main_child.returncode = code
            continue
        tmp = os.path.join(out, f".{pid}.tmp")
        with open(tmp, "w") as f:
            f.write(str(usage.ru_maxrss))
        os.rename(tmp, os.path.join(out, str(pid)))
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
