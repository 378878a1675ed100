# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""Keyword mode: the `async:` keyword's wrapper and poller running on the collection's engine. Private to detached.jobs.

With the collection's keyword/ directory in the module search path (ansible.cfg `library`, or
ANSIBLE_LIBRARY), ansible-core's `async:` keyword runs keyword/async_wrapper.py in place of its
own async_wrapper, and its poller (and the async_status action) runs keyword/async_status.py.
This module turns ansible-core's wrapper command line into one job for _launch.start (the
same launch, supervisor and status file as detached.jobs.start: there is no second engine), and
answers the poller as ansible-core's async_status module does. Standard library only, Python 3.8+.

The wrapper's command line, as ansible-core's _execute_module builds it:
  2.16 to 2.20:  <jid> <limit> <module_path> <args_path or _> [-preserve_tmp]
  2.21:          <jid> <limit> <true|false: preserve tmp> <module_path> <interpreter...> <module_path> [<args_path>]
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import sys
import typing as t

from ansible_collections.detached.jobs.plugins.module_utils import _control, _launch
from ansible_collections.detached.jobs.plugins.module_utils import _ids as ids
from ansible_collections.detached.jobs.plugins.module_utils import _jobstore as js

USAGE = "usage: async_wrapper <jid> <time_limit> [<preserve_tmp>] <module_path> <args>...: it is run by the async keyword, not by hand"

# ansible-core's async_status words for a job it has no file of (a job not found: reason ids.NOT_FOUND).
NOT_FOUND = "could not find job"


class Invocation:
    """What ansible-core asked its wrapper to run: the job id base, limit, module file, how to run it."""

    def __init__(self, argv: list[str]) -> None:
        if len(argv) < 4:
            raise ids.KeywordError(USAGE)
        self.jid_base = argv[0]
        try:
            self.limit = int(argv[1])
        except ValueError:
            raise ids.KeywordError(f"the time limit must be a whole number of seconds, got {argv[1]!r}") from None
        self.args_path: str | None = None
        self.interpreter: list[str] | None = None
        if argv[2] in ("true", "false"):
            # 2.21: the command that runs the module follows its path.
            self.preserve_tmp = argv[2] == "true"
            self.module_path = argv[3]
            command = argv[4:]
            if self.module_path not in command:
                raise ids.KeywordError(f"cannot run {command!r}: the module {self.module_path} is not in its command line")
            at = command.index(self.module_path)
            self.interpreter = command[:at]
            rest = command[at + 1 :]
            if len(rest) > 1:
                raise ids.KeywordError(f"cannot run {command!r}: more than one argument after the module")
            self.args_path = rest[0] if rest else None
        else:
            self.module_path = argv[2]
            self.args_path = None if argv[3] == "_" else argv[3]
            self.preserve_tmp = "-preserve_tmp" in argv[4:]
        self.jid = ids.validate_jid(f"{self.jid_base}.{os.getpid()}")

    @property
    def module(self) -> str:
        name = os.path.basename(self.module_path)
        for prefix in ("AnsiballZ_",):
            if name.startswith(prefix):
                name = name[len(prefix) :]
        return os.path.splitext(name)[0] or name

    def job_spec(self) -> _control.JobSpec:
        """The job to launch: the module file (and its arguments file) become the job's payload."""
        if self.limit > ids.MAX_SECONDS:
            # Refused before anything starts (and, in launch, the task's tmp dir removed): the supervisor could not arm it.
            raise ids.KeywordError(f"invalid async {self.limit}: at most {ids.MAX_SECONDS} seconds (10 years)")
        try:
            with open(self.module_path, "rb") as f:
                payload = f.read()
            args_data = None
            if self.args_path is not None:
                with open(self.args_path, "rb") as f:
                    args_data = f.read().decode("utf-8", errors="surrogateescape")
        except OSError as ex:
            raise ids.KeywordError(f"cannot read the module to run: {ex}", ids.IO) from ex
        interpreter = self.interpreter
        if interpreter is None:
            interpreter = _shebang(payload)
        style = "new" if interpreter else "binary"
        return _control.JobSpec(
            {
                "jid": self.jid,
                "module": self.module,
                "payload": base64.b64encode(payload).decode("ascii"),
                "interpreter": interpreter,
                "style": style,
                "args_data": args_data,
                "timeout": builtin_deadline(self.limit),
                # The module may use the task's tmp dir while it runs: it goes when the job ends.
                "remove_after": None if self.preserve_tmp else os.path.dirname(self.module_path),
            }
        )


def builtin_deadline(limit: int) -> int:
    """When ansible-core's own wrapper stops a job of this async limit, in seconds (0: never).

    It checks every 5 seconds (every limit/2 below that), so a job of a limit above 5 runs until
    the next multiple of 5: async 6 gives 10 s. Keyword mode keeps that, so that a playbook tuned
    against ansible-core's wrapper is not cut short; detached.timeout shows the limit applied.

    A limit of 0 or less means no limit, as in ansible-core. It wraps a task in its async_wrapper
    whenever async is not 0 (`wrap_async = self._task.async_val ...` in action/normal.py and
    command.py, so async: -1 too), but polls it only when async > 0 (task_executor.py
    `if self._task.async_val > 0`): the task returns the started job. From 2.18 on, its wrapper's
    watcher sets its step to limit/2 for a limit of 5 or less (the rule above) and, for a negative
    one, dies in time.sleep(-0.5) (ValueError): the module runs to its end with no limit and its
    result is written as usual. (2.16 and 2.17, checking every 5 s whatever the limit, killed it at
    their second check, 10 s in, as they did any limit of 5 or less.) 0 is never wrapped (the task
    runs without async); given by hand, it means no limit too.
    """
    if limit <= 0:
        return 0
    if limit <= 5:
        return limit
    return -(-limit // 5) * 5


def _shebang(payload: bytes) -> list[str]:
    """The interpreter command of a module file's #! line (none: a binary module)."""
    if not payload.startswith(b"#!"):
        return []
    line = payload.split(b"\n", 1)[0][2:].decode("utf-8", errors="replace").strip()
    return shlex.split(line)


def launch(argv: list[str], environ: t.Mapping[str, str]) -> dict:
    """Start the job ansible-core's wrapper command line describes; the wrapper's answer."""
    inv = Invocation(argv)
    async_dir = environ.get("ANSIBLE_ASYNC_DIR") or ids.DEFAULT_ASYNC_DIR
    try:
        store = js.JobStore(async_dir, create=True)
        result = _launch.start(store, [inv.job_spec()])[0]
        if result.get("failed"):
            raise ids.KeywordError(str(result.get("msg")), str(result.get("reason") or ids.LAUNCH))
    except (ids.KeywordError, ids.JobError) as ex:
        # No job will remove the task's tmp dir: do it here, as ansible-core's wrapper would.
        if not inv.preserve_tmp:
            import shutil

            shutil.rmtree(os.path.dirname(inv.module_path), ignore_errors=True)
        raise ids.KeywordError(str(ex), ex.reason) from ex
    return start_answer(inv, store.job_path(inv.jid), result.get("detached"))


def start_answer(inv: Invocation, results_file: str, detached: dict | None) -> dict:
    """The wrapper's answer: ansible-core's keys, and the job's `detached` record as it started.

    A `poll: 0` task returns this answer as its result, so it carries `detached` as every other
    keyword-mode result does (state `running`, the supervisor's pid, times, the limit applied);
    that is also how a playbook (and detached.jobs.keyword_check) tells that the collection's
    engine started the job, not ansible-core's own wrapper.
    """
    answer = {
        "failed": False,
        "started": True,
        "finished": False,
        "ansible_job_id": inv.jid,
        "results_file": results_file,
        "_ansible_suppress_tmpdir_delete": not inv.preserve_tmp,
    }
    if detached is not None:
        answer["detached"] = detached
    return answer


def wrapper_main() -> None:
    """keyword/async_wrapper.py: print one JSON answer, as ansible-core's async_wrapper does."""
    try:
        answer = launch(sys.argv[1:], os.environ)
        code = 0
    except (ids.KeywordError, ids.JobError) as ex:
        answer = ids.failure(ids.KeywordError(f"detached.jobs keyword mode: {ex}", ex.reason))
        code = 1
    # The wrapper is no AnsibleModule (it takes no module arguments): it answers as ansible-core's does.
    print(json.dumps(answer))  # pylint: disable=ansible-bad-function
    sys.stdout.flush()
    sys.exit(code)  # pylint: disable=ansible-bad-function


def status_main(module_class: t.Any) -> None:
    """keyword/async_status.py: ansible-core's async_status module, answered from the collection's job files.

    A status answer is the job's stored result as it is (as ansible-core's module prints it);
    cleanup removes every file of the job; kill is there too (detached.jobs.async_status offers it).
    """
    # Here, not at the top: the wrapper, which runs for every async task, does not need them.
    from ansible_collections.detached.jobs.plugins.module_utils import _ops
    from ansible_collections.detached.jobs.plugins.module_utils._specs import SPECS

    module = module_class(argument_spec=SPECS["status"], supports_check_mode=True)
    result = _ops.status(module.params, module.check_mode)
    if result.get("failed"):
        msg = str(result.get("msg", ""))
        if result.get("reason") == ids.NOT_FOUND:
            # ansible-core's words, which playbooks compare with; the collection's explanation beside them.
            result.update(msg=NOT_FOUND, detail=msg)
        module.fail_json(**result)
    job = result.pop("job", None)
    if job is None:
        module.exit_json(**result)
    # The stored result as it is, bypassing exit_json's processing, which it went through already
    # in the job's own module (as ansible-core's async_status does).
    print(json.dumps(job))  # pylint: disable=ansible-bad-function
    sys.exit(0)  # pylint: disable=ansible-bad-function
