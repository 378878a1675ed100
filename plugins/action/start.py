# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""Action for detached.jobs.start: launch any module, or a command, as detached jobs."""

from __future__ import annotations

import difflib
import re
import shlex
import typing as t

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.parameters import DEFAULT_TYPE_VALIDATORS
from ansible.plugins.action import ActionBase

from ansible_collections.detached.jobs.plugins.module_utils import _options as opts
from ansible_collections.detached.jobs.plugins.module_utils._ids import MAX_SECONDS
from ansible_collections.detached.jobs.plugins.plugin_utils._jobrefs import JobRef
from ansible_collections.detached.jobs.plugins.plugin_utils._remote import async_dir, build_module_job, run_host
from ansible_collections.detached.jobs.plugins.plugin_utils._waiter import Waiter

# A job's options (and the task's own), from the one table of them (module_utils/_options).
_JOB_OPTIONS: dict[str, dict] = opts.task_spec()
# Options that are sent to the host as they are (after their checks here), and their defaults.
_PASSED = opts.SETTINGS
_DEFAULTS = opts.task_defaults()
_WHAT = ["module", "cmd", "argv"]

ARGUMENT_SPEC: dict[str, dict] = dict(
    _JOB_OPTIONS,
    jobs={"type": "list", "elements": "dict", "options": _JOB_OPTIONS, "mutually_exclusive": [_WHAT], "required_one_of": [_WHAT]},
    **{row.name: row.arg_spec(row.default) for row in opts.TASK_OPTIONS},
)
_SLACK = 30  # seconds a poll waits beyond the job's own limit and grace


class ActionModule(ActionBase):
    _requires_connection = True

    def run(self, tmp: t.Any = None, task_vars: dict | None = None) -> dict:
        result = super().run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        _check_types(self._task.args)
        dummy, args = self.validate_argument_spec(
            argument_spec=ARGUMENT_SPEC,
            mutually_exclusive=[_WHAT + ["jobs"], ["args", "cmd"], ["args", "argv"], ["args", "jobs"]],
            required_one_of=[_WHAT + ["jobs"]],
        )
        error = _limit_error("the task", "poll", args["poll"], self._task.args.get("poll"))
        if error:
            raise AnsibleActionFail(error)
        if args["jobs"] is not None and not args["jobs"]:
            raise AnsibleActionFail("jobs is empty: give at least one job (a module with its args, a cmd or an argv), or leave the task out")
        if args["cleanup"] and not args["poll"]:
            raise AnsibleActionFail("cleanup needs poll > 0: a job that is not waited for keeps its files until it is collected")
        batch = args["jobs"] is not None
        label = self._loop_label()
        if label is not None:
            result["loop_label"] = label
        wanted: list = list(args["jobs"] or []) if batch else [{k: args[k] for k in _JOB_OPTIONS}]
        check = bool(self._task.check_mode)
        try:
            specs = [self._job_spec(i, job, args, task_vars, batch, check) for i, job in enumerate(wanted)]
            _check_names(specs)
            dir_ = async_dir(self)
            answer = run_host(self, "start", {"jobs": specs, "async_dir": dir_}, task_vars, what="start")
            if answer.get("unreachable") or answer.get("failed"):
                result.update(answer)
                return result
            jobs = [dict(job, async_dir=dir_) for job in answer.get("jobs", [])]
            if args["poll"] and not check:
                result.update(self._poll(jobs, specs, args, task_vars, batch))
                return result
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        failed = [job for job in jobs if job.get("failed")]
        changed = any(job.get("changed") for job in jobs)
        if not batch:
            result.update(jobs[0])
            if check and not failed:
                result["msg"] = _check_msg(jobs)
            return result
        result.update(
            jobs=jobs,
            ansible_job_ids=[job.get("ansible_job_id") for job in jobs],
            changed=changed,
            failed=bool(failed),
            msg=_failures(failed) if failed else _check_msg(jobs) if check else f"{len(jobs)} jobs started or attached",
        )
        return result

    def _loop_label(self) -> str | None:
        """This loop item's loop_control.label, templated as ansible-core templates it (after the
        task; ansible-core then keeps it out of the registered result), or None: no loop, no label,
        or a label that needs the task's own result. The result carries it as loop_label, which
        detached.jobs.wait labels the job with."""
        control = getattr(self._task, "loop_control", None)
        label = getattr(control, "label", None) if control is not None else None
        if not label:
            return None
        try:
            value = self._templar.template(label)
        except Exception:  # an undefined variable (the registered result): ansible-core's own label then says it
            return None
        return None if value is None else str(value)

    def _job_spec(self, i: int, job: dict, args: dict, task_vars: dict, batch: bool, check: bool) -> dict:
        where = f"jobs[{i}]" if batch else "the task"

        def opt(key: str) -> t.Any:
            value = job.get(key)
            if value is None:
                value = args.get(key) if batch else None
            return _DEFAULTS.get(key) if value is None else value

        spec: dict[str, t.Any] = {key: opt(key) for key in _PASSED}
        self._check_limits(where, spec, i if batch else None)
        _check_needs(where, spec, job, args if batch else {})
        if job.get("cmd") is not None:
            try:
                spec["argv"] = shlex.split(job["cmd"])
            except ValueError as ex:
                raise AnsibleActionFail(f"{where}: cannot split cmd {job['cmd']!r}: {ex}") from ex
            if not spec["argv"]:
                raise AnsibleActionFail(f"{where}: cmd is empty")
        elif job.get("argv") is not None:
            if not job["argv"]:
                raise AnsibleActionFail(f"{where}: argv is empty")
            spec["argv"] = [str(a) for a in job["argv"]]
        else:
            module = job.get("module")
            if not module:
                raise AnsibleActionFail(f"{where}: give module (with args), cmd or argv")
            module_args = job.get("args") or {}
            _check_module_args(where, module, module_args, self._task.collections)
            # Built in check mode too, so that a module that does not exist fails there as well.
            try:
                built = build_module_job(self, module, module_args, task_vars)
            except AnsibleActionFail:
                raise
            except Exception as ex:
                raise AnsibleActionFail(f"{where}: cannot prepare module {module!r}: {ex}") from ex
            spec.update({"module": module} if check else built)
        return spec

    def _check_limits(self, where: str, spec: dict, i: int | None) -> None:
        """Refuse a number option out of its bounds, before anything is sent to the host."""
        for key in opts.LIMITS:
            if spec.get(key) is not None:
                error = _limit_error(where, key, spec[key], self._given(key, i))
                if error:
                    raise AnsibleActionFail(error)

    def _given(self, key: str, i: int | None) -> t.Any:
        """An option as the task gave it (jobs[i]'s own, else the top level's), before the argument
        spec converted it: true to 1.0 for a float option, 1.5e30 to a whole number for an int one."""
        raw = self._task.args
        jobs = raw.get("jobs")
        if i is not None and isinstance(jobs, list) and i < len(jobs) and isinstance(jobs[i], dict) and jobs[i].get(key) is not None:
            return jobs[i][key]
        return raw.get(key)

    def _poll(self, jobs: list[dict], specs: list[dict], args: dict, task_vars: dict, batch: bool) -> dict:
        limits = [_longest(spec) for spec in specs]
        timeout = 0 if 0 in limits else max(limits) + max(spec.get("grace") or 0 for spec in specs) + _SLACK
        refs = []
        for job in jobs:
            if job.get("ansible_job_id") and not job.get("failed"):
                refs.append(JobRef(job["ansible_job_id"], (job.get("detached") or {}).get("name"), job.get("async_dir")))
            else:
                refs.append(JobRef(None, None, error=str(job.get("msg", "the job did not start"))))
        waited = Waiter(self, task_vars, refs, [], timeout=timeout, poll=args["poll"], cleanup=args["cleanup"], progress_interval=10).run()
        if batch:
            return waited
        job = waited["jobs"][0] if waited["jobs"] else {"failed": True, "msg": waited["msg"]}
        job = dict(job, changed=bool(job.get("changed", True)))
        job.pop("label", None)
        return job


def _longest(spec: dict) -> float:
    """The longest a job can take, queue and retries included (0: no limit)."""
    if spec.get("slot") and not spec.get("queue_timeout"):
        return 0
    queue = spec.get("queue_timeout") or 0
    if spec.get("total_timeout"):
        return queue + spec["total_timeout"]
    if not spec.get("timeout"):
        return 0
    retries = spec.get("retries") or 0
    # Each delay as the supervisor waits it (_results.retry_wait): the back-off formula, at most MAX_SECONDS.
    delays = sum(min(opts.retry_delay(n, spec["retry_delay"], spec["backoff"], spec.get("retry_max_delay") or 0), MAX_SECONDS) for n in range(1, retries + 1))
    return queue + spec["timeout"] * (retries + 1) + delays + (spec.get("grace") or 0) * retries


def _limit_error(where: str, key: str, value: t.Any, raw: t.Any) -> str | None:
    """Why value (raw: as the task gave it) is no valid key, or None (see _options.limit_problem)."""
    if isinstance(raw, (int, float)):  # true is no number, even where the argument spec made it 1.0
        value = raw
    shown = raw.strip() if isinstance(raw, str) else repr(value)  # the value as written: 1.5e30, not its 31 digits
    why = opts.limit_problem(key, value)
    if why is None:
        return None
    least, note = opts.LIMITS[key][1], opts.LIMITS[key][3]
    if not isinstance(value, bool) and isinstance(value, (int, float)) and value < least:
        return f"{where}: {key} must be {least} or more, got {shown}{'; ' + note if note else ''}"
    return f"{where}: invalid {key} {shown}: {why}"


# How a refusal names the type an option's value is not of (the types a value can fail to be).
_TYPES = {"int": "a whole number", "float": "a number", "bool": "a boolean (true or false)", "list": "a list", "dict": "a dictionary"}


def _check_types(raw: t.Any) -> None:
    """Refuse an option whose value is not of its type, naming where, the option and the value (the
    argument spec's own words name neither the job nor, for a float, the value). A value that the
    argument spec converts (the string "5" to 5) is left to it, as any other option."""
    if not isinstance(raw, dict):
        return
    places = [("the task", raw, dict(opts.OPTIONS, **{row.name: row for row in opts.TASK_OPTIONS}))]
    if isinstance(raw.get("jobs"), list):
        places += [(f"jobs[{i}]", job, opts.OPTIONS) for i, job in enumerate(raw["jobs"]) if isinstance(job, dict)]
    for where, given, rows in places:
        for key, value in given.items():
            row = rows.get(key)
            if row is None or row.role == opts.HOST or row.type not in _TYPES or value is None:
                continue
            try:
                DEFAULT_TYPE_VALIDATORS[row.type](value)
                continue
            except (TypeError, ValueError):
                pass
            # (Raised outside the except block: ansible-core before 2.19 puts the traceback of the
            # exception being handled into the failed result, as if the action had crashed.)
            raise AnsibleActionFail(f"{where}: invalid {key} {value!r}: {_TYPES[row.type]}{' of ' + row.unit if row.unit else ''}")


def _check_needs(where: str, spec: dict, job: dict, task: dict) -> None:
    """Refuse an option given (by the job, else the task: its own value, not a default) without the option it needs."""
    for key in _PASSED:
        needed = opts.OPTIONS[key].needs
        if needed and not opts.is_set(spec[needed]) and (opts.is_set(job.get(key)) or opts.is_set(task.get(key))):
            raise AnsibleActionFail(f"{where}: {key} needs {needed} ({opts.OPTIONS[needed].about})")


# The options each module documents (with their aliases), or None where that cannot be known;
# read once per module per process (a start task runs in a process of its own: once per task).
_DOCUMENTED: dict[tuple[str, tuple[str, ...]], frozenset[str] | None] = {}


def _documented_options(module: str, collections: t.Any) -> frozenset[str] | None:
    """The option names (aliases included) module's documentation lists, or None: not found, not a
    Python module, no documentation, or no options section (then its arguments are not checked here)."""
    key = (module, tuple(str(c) for c in collections or ()))
    if key in _DOCUMENTED:
        return _DOCUMENTED[key]
    found: frozenset[str] | None = None
    try:
        from ansible.plugins.loader import fragment_loader, module_loader
        from ansible.utils.plugin_docs import get_docstring

        ctx = module_loader.find_plugin_with_context(module, collection_list=list(key[1]) or None)
        path = ctx.plugin_resolved_path if ctx.resolved else None
        if isinstance(path, str) and path.endswith(".py"):
            try:
                doc = _read_doc(path, fragment_loader)
            except Exception:  # noqa: BLE001 - then the slow way, which says what is wrong
                doc = None
            if doc is None:
                doc = get_docstring(path, fragment_loader, is_module=True)[0]
            options = doc.get("options") if isinstance(doc, dict) else None
            if isinstance(options, dict):
                names = set()
                for name, spec in options.items():
                    names.add(str(name))
                    aliases = spec.get("aliases") if isinstance(spec, dict) else None
                    if isinstance(aliases, (list, tuple)):
                        names.update(str(a) for a in aliases)
                found = frozenset(names)
    except Exception:  # noqa: BLE001 - documentation that cannot be read is no reason to refuse a job: the module checks its arguments itself
        found = None
    _DOCUMENTED[key] = found
    return found


_DOC_RE = re.compile(r"""^DOCUMENTATION\s*=\s*[rR]?(\"\"\"|\'\'\')(.*?)\1""", re.S | re.M)


def _read_doc(path: str, fragment_loader: t.Any) -> dict | None:
    """A module's DOCUMENTATION with its fragments, read the quick way: only that string, found by
    its assignment, parsed with libyaml (about 7 ms where ansible-core's get_docstring, which parses
    the whole module and its EXAMPLES and RETURN, takes 20 to 40); None when this cannot be done."""
    import yaml
    from ansible.utils.plugin_docs import add_fragments

    with open(path, encoding="utf-8") as f:
        found = _DOC_RE.search(f.read())
    if found is None:
        return None
    doc = yaml.load(found.group(2), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 - a safe loader
    if not isinstance(doc, dict):
        return None
    add_fragments(doc, path, fragment_loader=fragment_loader, is_module=True)
    return doc


def _check_module_args(where: str, module: str, module_args: t.Any, collections: t.Any) -> None:
    """Refuse, before anything starts, arguments that module does not document (a typo such as cmdd):
    else the start would report changed and the job fail later. Internal keys (_raw_params...) pass."""
    if not isinstance(module_args, dict) or not module_args:
        return
    known = _documented_options(module, collections)
    if known is None:
        return
    unknown = sorted(str(k) for k in module_args if not str(k).startswith("_") and str(k) not in known)
    if not unknown:
        return
    named = []
    for key in unknown:
        close = difflib.get_close_matches(key, sorted(known), n=1)
        named.append(f"{key} (did you mean {close[0]}?)" if close else key)
    raise AnsibleActionFail(
        f"{where}: unsupported parameter{'s' if len(unknown) > 1 else ''} for module {module}: {', '.join(named)}; nothing was started. "
        f"Supported parameters, as the module documents them: {', '.join(sorted(known)) or 'none'}"
    )


def _check_names(specs: list[dict]) -> None:
    """A name stands for one job: a batch that gives one name twice would start two."""
    seen: dict[str, int] = {}
    for i, spec in enumerate(specs):
        name = spec.get("name")
        if name is None:
            continue
        if name in seen:
            raise AnsibleActionFail(f"jobs[{seen[name]}] and jobs[{i}] have the same name {name!r}: a name stands for one job")
        seen[name] = i


def _check_msg(jobs: list[dict]) -> str:
    """What a check-mode start would have done."""
    restart = sum(1 for job in jobs if job.get("would_start") and job.get("restarted"))
    start = sum(1 for job in jobs if job.get("would_start")) - restart
    attach = sum(1 for job in jobs if job.get("attached"))
    parts = [f"{n} would be {verb}" for n, verb in ((start, "started"), (restart, "restarted"), (attach, "attached to")) if n]
    return "check mode, nothing was started: " + (", ".join(parts) or "no job")


def _failures(failed: list[dict]) -> str:
    return "; ".join(str(job.get("msg")) for job in failed)
