# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""The job of the wait-latency benchmark: end at a common deadline and record when.

    python3 deadline_job.py DIR INDEX

Waits for DIR/deadline (an absolute epoch, written by the playbook once every job has been
started), sleeps until that moment, writes the time it ends to DIR/end.INDEX and exits. So the
moment the last job ended is known precisely (the largest DIR/end.*), whatever the launch took.
Gives up after 300 seconds without a deadline, so a broken run leaves nothing behind.
"""

from __future__ import annotations

import os
import sys
import time


def main(directory: str, index: str) -> int:
    path = os.path.join(directory, "deadline")
    give_up = time.time() + 300
    deadline = None
    while deadline is None:
        try:
            with open(path, encoding="ascii") as stream:
                deadline = float(stream.read().strip())
        except (OSError, ValueError):
            if time.time() > give_up:
                return 2
            time.sleep(0.02)
    while True:
        left = deadline - time.time()
        if left <= 0:
            break
        time.sleep(left)
    ended = time.time()
    tmp = os.path.join(directory, f".end.{index}.tmp")
    with open(tmp, "w", encoding="ascii") as stream:
        stream.write(repr(ended))
    os.rename(tmp, os.path.join(directory, f"end.{index}"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
