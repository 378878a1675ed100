# Copyright (c) detached.jobs contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Checks the collection's documentation the way a user meets it.

- DOCUMENTATION, EXAMPLES and RETURN of every module are valid YAML;
- every task of EXAMPLES that calls one of our modules uses only options that module documents
  (and, for list options with suboptions, only documented suboptions), and every task has a name;
- `ansible-doc` renders every module and every role (its argument spec);
- the EXAMPLES are written out as playbooks under the given directory, so that
  `ansible-playbook --syntax-check` and ansible-lint can check them too;
- every YAML block of README.md and docs/*.md is valid YAML, and a block marked as not run
  (`<!-- example: not run: REASON -->` on the line above it) says why. The integration target
  docs_examples runs the others (markdown_blocks below finds them for it).

Usage: check_docs.py OUT_DIR   (run from the collection root, with detached.jobs on ANSIBLE_COLLECTIONS_PATH)
"""

from __future__ import annotations

import ast
import dataclasses
import glob
import os
import re
import subprocess
import sys
import typing as t

import yaml

COLLECTION = "detached.jobs"
TASK_KEYWORDS = {
    "name", "register", "when", "loop", "loop_control", "until", "retries", "delay", "become", "become_user",
    "changed_when", "failed_when", "ignore_errors", "tags", "vars", "notify", "delegate_to", "check_mode",
    "environment", "no_log", "async", "poll", "run_once", "timeout", "any_errors_fatal",
}


class IndentedDumper(yaml.SafeDumper):
    """Indents sequences inside mappings, as yamllint (and ansible-lint) expect."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def constants(path: str) -> dict[str, str]:
    """The module-level string constants DOCUMENTATION, EXAMPLES and RETURN of a plugin file."""
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                found[node.targets[0].id] = node.value.value
    return found


def fragment_options(name: str) -> dict[str, t.Any]:
    """Options a doc fragment of this collection adds (ansible.builtin fragments add none)."""
    prefix = COLLECTION + "."
    if not name.startswith(prefix):
        return {}
    base, dummy, variant = name[len(prefix):].partition(".")
    consts = constants(os.path.join("plugins", "doc_fragments", base + ".py"))
    doc = yaml.safe_load(consts.get(variant.upper() or "DOCUMENTATION", "{}")) or {}
    return doc.get("options") or {}


def module_options(doc: dict[str, t.Any]) -> dict[str, t.Any]:
    options = dict(doc.get("options") or {})
    for fragment in doc.get("extends_documentation_fragment") or []:
        options.update(fragment_options(fragment))
    return options


def check_task(module: str, task: t.Any, docs: dict[str, dict[str, t.Any]], where: str) -> list[str]:
    errors: list[str] = []
    if not isinstance(task, dict):
        return [f"{where}: a task must be a mapping, got {task!r}"]
    if "block" in task:
        for i, sub in enumerate(task["block"] or []):
            errors += check_task(module, sub, docs, f"{where}, block task {i + 1}")
        return errors
    if "name" not in task:
        errors.append(f"{where}: task has no name")
    for key, value in task.items():
        short = key[len(COLLECTION) + 1:] if key.startswith(COLLECTION + ".") else None
        if short is None:
            if key not in TASK_KEYWORDS and "." not in key:
                errors.append(f"{where}: {key!r} is neither a task keyword nor a module FQCN")
            continue
        if short not in docs:
            errors.append(f"{where}: {key} is not a module of this collection")
            continue
        if value is None:
            value = {}
        if not isinstance(value, dict):
            errors.append(f"{where}: arguments of {key} must be a mapping")
            continue
        options = module_options(docs[short])
        for arg, argval in value.items():
            if arg not in options or arg.startswith("_"):
                errors.append(f"{where}: {key} has no option {arg!r} (documented: {', '.join(sorted(options))})")
                continue
            sub = options[arg].get("suboptions")
            if sub and isinstance(argval, list):
                for item in argval:
                    if isinstance(item, dict):
                        for subarg in item:
                            if subarg not in sub:
                                errors.append(f"{where}: {key} option {arg} has no suboption {subarg!r}")
    return errors


# The docs whose YAML blocks are examples that the docs_examples integration target runs.
DOC_FILES = ("README.md", "docs/*.md")
YAML_LANGS = ("yaml", "yml")
# The line just above a block that is not run (the reason is required).
NOT_RUN = re.compile(r"^\s*<!--\s*example:\s*not run:\s*(?P<reason>.*?)\s*-->\s*$")
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>```+|~~~+)\s*(?P<lang>[\w+-]*)")


@dataclasses.dataclass
class DocBlock:
    """A fenced code block of a Markdown file."""

    path: str
    line: int  # of the opening fence, from 1
    lang: str
    section: str  # the number of a numbered heading ("## 15. ..."), else the heading's slug
    number: int  # the block's number among the blocks of its language kind in its section, from 1
    text: str
    not_run: str | None  # the reason given by a "not run" marker above it, else None

    @property
    def key(self) -> str:
        return f"{self.path} §{self.section} #{self.number}"


def heading_section(title: str) -> str:
    numbered = re.match(r"(\d+)\.\s", title)
    if numbered:
        return numbered.group(1)
    return re.sub(r"[^a-z0-9 -]", "", title.lower()).strip().replace(" ", "-")


def doc_files(root: str = ".") -> list[str]:
    """README.md and docs/*.md, relative to root."""
    found: list[str] = []
    for pattern in DOC_FILES:
        found += sorted(os.path.relpath(p, root) for p in glob.glob(os.path.join(root, pattern)))
    return found


def markdown_blocks(path: str, root: str = ".", langs: t.Sequence[str] = YAML_LANGS) -> list[DocBlock]:
    """The fenced blocks in one of langs of the Markdown file root/path, in order."""
    blocks: list[DocBlock] = []
    lines = open(os.path.join(root, path), encoding="utf-8").read().splitlines()
    section, counts, i = "top", {}, 0  # type: str, dict[str, int], int
    while i < len(lines):
        line = lines[i]
        fence = FENCE.match(line)
        if not fence:
            heading = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
            if heading:
                section = heading_section(heading.group(1))
            i += 1
            continue
        end = i + 1
        while end < len(lines) and not lines[end].strip().startswith(fence.group("fence")):
            end += 1
        lang = fence.group("lang").lower()
        if lang in langs:
            counts[section] = counts.get(section, 0) + 1
            above = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
            marker = NOT_RUN.match(above)
            indent = len(fence.group("indent"))
            text = "\n".join(x[indent:] for x in lines[i + 1:end]) + "\n"
            blocks.append(DocBlock(path, i + 1, lang, section, counts[section], text, marker.group("reason") if marker else None))
        i = end + 1
    return blocks


def check_doc_blocks(root: str = ".") -> tuple[int, list[str]]:
    """The number of YAML blocks in the docs, and what is wrong with them (not YAML, no reason)."""
    errors: list[str] = []
    count = 0
    for path in doc_files(root):
        for block in markdown_blocks(path, root):
            count += 1
            if block.not_run is not None and not block.not_run:
                errors.append(f"{path}:{block.line}: a block marked not run must say why")
            try:
                yaml.safe_load(block.text)
            except yaml.YAMLError as ex:
                errors.append(f"{path}:{block.line}: the YAML block ({block.key}) is not valid YAML: {ex}")
    return count, errors


# ansible-core 2.21's `ansible-doc -t role` warns about its own internal collection, whatever role
# it is asked for: "Collection at '.../ansible/_internal/ansible_collections/ansible/_protomatter'
# does not have a MANIFEST.json file, nor has it galaxy.yml: cannot detect version."
CORE_OWN_WARNING = "/ansible/_internal/ansible_collections/ansible/_protomatter' does not have a MANIFEST.json"


def foreign_warnings_removed(stderr: str) -> str:
    """The stderr of ansible-doc without ansible-core's warnings about its own files."""
    return "\n".join(line for line in stderr.splitlines() if CORE_OWN_WARNING not in line)


def main(out_dir: str) -> int:
    errors: list[str] = []
    docs: dict[str, dict[str, t.Any]] = {}
    examples: dict[str, t.Any] = {}
    for entry in sorted(os.listdir("plugins/modules")):
        if not entry.endswith(".py") or entry.startswith("_"):
            continue
        name, path = entry[:-3], os.path.join("plugins/modules", entry)
        consts = constants(path)
        for key in ("DOCUMENTATION", "EXAMPLES", "RETURN"):
            if key not in consts:
                errors.append(f"{path}: no {key}")
                continue
            try:
                parsed = yaml.safe_load(consts[key])
            except yaml.YAMLError as ex:
                errors.append(f"{path}: {key} is not valid YAML: {ex}")
                continue
            if key == "DOCUMENTATION":
                docs[name] = parsed
            elif key == "EXAMPLES":
                examples[name] = parsed
    os.makedirs(out_dir, exist_ok=True)
    for name, tasks in examples.items():
        if not isinstance(tasks, list) or not tasks:
            errors.append(f"plugins/modules/{name}.py: EXAMPLES must be a non-empty list of tasks")
            continue
        for i, task in enumerate(tasks):
            errors += check_task(name, task, docs, f"plugins/modules/{name}.py EXAMPLES task {i + 1}")
        play = [{"name": f"EXAMPLES of {COLLECTION}.{name}", "hosts": "all", "gather_facts": False, "tasks": tasks}]
        with open(os.path.join(out_dir, f"{name}.yml"), "w", encoding="utf-8") as out:
            out.write(f"---\n# Generated by hack/check_docs.py from plugins/modules/{name}.py EXAMPLES\n")
            yaml.dump(play, out, Dumper=IndentedDumper, sort_keys=False, default_flow_style=False, width=1000, explicit_start=False)
    # One ansible-doc per plugin type, all its pages at once (a process costs about 1.2 CPU-s to
    # start); each page must be there, under its heading, and no warning may name it.
    pages = {"module": [f"{COLLECTION}.{name}" for name in sorted(docs)]}
    if os.path.isdir("roles"):
        pages["role"] = [f"{COLLECTION}.{role}" for role in sorted(os.listdir("roles"))]
    for kind, names in pages.items():
        command = ["ansible-doc", "-t", kind, *names]
        run = subprocess.run(command, capture_output=True, text=True, check=False)
        headings = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in run.stdout.splitlines() if line.startswith("> ")]
        # The name in a heading: "> MODULE detached.jobs.start (path)", in bold (colors) or between
        # asterisks (no colors), or in capitals before ansible-core 2.17 ("> DETACHED.JOBS.START").
        missing = [name for name in names if not any(re.search(rf"(?<![\w.]){re.escape(name)}(?![\w.])", line, re.I) for line in headings)]
        warnings = foreign_warnings_removed(run.stderr)
        if run.returncode != 0 or missing or "[WARNING]" in warnings:
            errors.append(
                f"{' '.join(command)} failed (rc {run.returncode}; no page for {', '.join(missing) or 'none'}): "
                f"{(run.stderr or run.stdout).strip()[:500]}"
            )
    doc_blocks, doc_errors = check_doc_blocks()
    errors += doc_errors
    for error in errors:
        print(f"ERROR: {error}")
    print(
        f"check_docs: {len(docs)} modules, {len(examples)} EXAMPLES blocks, {doc_blocks} YAML blocks in the docs,"
        f" {sum(map(len, pages.values()))} ansible-doc pages, {len(errors)} errors"
    )
    return 1 if errors else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
