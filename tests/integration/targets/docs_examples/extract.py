# Copyright (c) detached.jobs contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Writes the YAML examples of README.md and docs/*.md out as one playbook that runs them.

Each example becomes a play against localhost (an example that is a list of plays stays one),
after the replacements and with the tasks before and after it that table.yml declares. The blocks
are found by hack/check_docs.py (markdown_blocks). It fails when a block that is not marked
`<!-- example: not run: REASON -->` cannot be run, when a table entry matches no example, or when
one of its replacements matches nothing in its example.

Usage: extract.py COLLECTION_ROOT TABLE OUT_DIR URL GROUPS
  writes GROUPS playbooks OUT_DIR/examples-N.yml (the examples in order, cut into GROUPS parts of
  about as many tasks, to run at the same time), each with OUT_DIR/inventory-N.ini (localhost, this
  Python, a job directory of its own, OUT_DIR/jobs-N), OUT_DIR/cleanup.ini (one host per job
  directory), OUT_DIR/sandbox (the stand-ins), OUT_DIR/www (what URL serves: the caller starts the
  server) and the files the examples include.
"""

from __future__ import annotations

import os
import re
import sys
import typing as t

import yaml


def load_check_docs(root: str) -> t.Any:
    sys.path.insert(0, os.path.join(root, "hack"))
    import check_docs  # the collection's own, beside the docs it reads

    return check_docs


def substitute(value: t.Any, tokens: dict[str, str]) -> t.Any:
    """value (tasks, vars) with the @TOKEN@s of every string replaced."""
    if isinstance(value, str):
        for token, text in tokens.items():
            value = value.replace(token, text)
        return value
    if isinstance(value, list):
        return [substitute(v, tokens) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, tokens) for k, v in value.items()}
    return value


def example_text(text: str, entry: dict[str, t.Any], glob: dict[str, t.Any], key: str, errors: list[str]) -> str:
    """The example's text with its own replacements, then the global ones (URLs, then paths)."""
    for old, new in entry.get("replace") or []:
        if old not in text:
            errors.append(f"{key}: the replacement of {old!r} matches nothing in the example")
        text = text.replace(old, new)
    for host in glob["url_hosts"]:
        text = text.replace(host, "@URL@")
    # One pass, so that the sandbox's own path is never replaced again.
    paths = "|".join(re.escape(p) for p in glob["paths"])
    return re.sub(rf"(?<![\w.~/@-])(?={paths})", "@SANDBOX@", text)


def plays_of(key: str, line: int, example: t.Any, entry: dict[str, t.Any]) -> list[dict[str, t.Any]]:
    """The plays that run one example, with the tasks before and after it."""
    name = f"{key} (line {line})"
    vars_ = entry.get("vars") or {}
    before, check = entry.get("before") or [], entry.get("check") or []
    if not isinstance(example, list) or not example or not all(isinstance(x, dict) for x in example):
        raise ValueError("neither a list of tasks nor a list of plays")
    if all("hosts" in x for x in example):
        plays = []
        if before:
            plays.append({"name": f"before {name}", "hosts": "all", "gather_facts": False, "vars": vars_, "tasks": before})
        for play in example:
            plays.append(dict(play, name=f"{name}: {play.get('name', 'play')}", vars=dict(vars_, **(play.get("vars") or {}))))
        if check:
            plays.append({"name": f"check {name}", "hosts": "all", "gather_facts": False, "vars": vars_, "tasks": check})
        return plays
    if any("hosts" in x for x in example):
        raise ValueError("a mix of plays and tasks")
    return [{"name": name, "hosts": "all", "gather_facts": False, "vars": vars_, "tasks": before + example + check}]


def tasks_in(plays: list[dict[str, t.Any]]) -> int:
    return sum(len(play.get("tasks") or []) + 1 for play in plays)


def main(root: str, table_path: str, out: str, url: str, groups: str) -> int:
    check_docs = load_check_docs(root)
    with open(table_path, encoding="utf-8") as f:
        table = yaml.safe_load(f)
    glob, entries = table["global"], dict(table["examples"])
    sandbox = os.path.join(out, "sandbox")
    errors = [f"table.yml: global {k} has no reason" for k in ("paths", "url_hosts") if not (glob.get("reasons") or {}).get(k)]
    examples: list[list[dict[str, t.Any]]] = []  # the plays of each example
    run, not_run = [], []
    for path in check_docs.doc_files(root):
        for block in check_docs.markdown_blocks(path, root):
            entry = entries.pop(block.key, None)
            if block.not_run is not None:
                not_run.append(f"{block.key} (line {block.line}): {block.not_run}")
                if entry is not None:
                    errors.append(f"{block.key}: marked not run in the doc, but the table has an entry for it")
                continue
            entry = entry or {}
            if entry and not entry.get("reason"):
                errors.append(f"{block.key}: its table entry gives no reason")
            text = example_text(block.text, entry, glob, block.key, errors)
            try:
                example = yaml.safe_load(re.sub(r"@([A-Z]+)@", r"DOCSEXAMPLES_\1_", text))  # (@ cannot start a YAML scalar)
                examples.append(plays_of(block.key, block.line, example, entry))
            except (yaml.YAMLError, ValueError) as ex:
                errors.append(f"{path}:{block.line}: the example {block.key} cannot be run ({ex}); fix it, or mark it"
                              " <!-- example: not run: REASON --> on the line above it")
                continue
            run.append(block.key)
    for key in entries:
        errors.append(f"table.yml: the entry {key!r} matches no example (examples: README.md and docs/*.md, keys FILE §SECTION #N)")
    for error in errors:
        print(f"ERROR: {error}")
    if errors:
        return 1
    parts: list[list[list[dict[str, t.Any]]]] = [[] for dummy in range(int(groups))]
    total, done = sum(tasks_in(e) for e in examples), 0
    for example in examples:  # in order, cut where the tasks so far pass a part's share
        parts[min(len(parts) - 1, done * len(parts) // total)].append(example)
        done += tasks_in(example)
    cleanup = "[all]\n"
    for n, part in enumerate(parts, 1):
        jobs = os.path.join(out, f"jobs-{n}")
        os.makedirs(jobs, mode=0o700)
        tokens = {"@SANDBOX@": sandbox, "@JOBS@": jobs, "@URL@": url}
        tokens.update({f"DOCSEXAMPLES_{k.strip('@')}_": v for k, v in tokens.items()})
        with open(os.path.join(out, f"examples-{n}.yml"), "w", encoding="utf-8") as f:
            f.write("---\n# Generated by docs_examples/extract.py from the YAML examples of README.md and docs/*.md\n")
            plays = [play for example in part for play in example]
            yaml.dump(substitute(plays, tokens), f, Dumper=check_docs.IndentedDumper, sort_keys=False, width=1000, allow_unicode=True)
        host = f"ansible_connection=local ansible_python_interpreter={sys.executable} ansible_async_dir={jobs} ansible_pipelining=true"
        with open(os.path.join(out, f"inventory-{n}.ini"), "w", encoding="utf-8") as f:
            f.write(f"[webservers]\nlocalhost {host}\n")
        cleanup += f"jobs-{n} {host}\n"
    with open(os.path.join(out, "cleanup.ini"), "w", encoding="utf-8") as f:
        f.write(cleanup)
    for rel in glob["dirs"]:
        os.makedirs(os.path.join(sandbox, rel), exist_ok=True)
    for rel, content in glob["files"].items():
        file = os.path.join(sandbox, rel)
        os.makedirs(os.path.dirname(file), exist_ok=True)
        with open(file, "w", encoding="utf-8") as f:
            f.write(content)
        os.chmod(file, 0o755)
    os.makedirs(os.path.join(out, "www"))
    for name in glob["www"]:
        with open(os.path.join(out, "www", name), "w", encoding="utf-8") as f:
            f.write(name)
    for name, content in glob["playbook_files"].items():
        with open(os.path.join(out, name), "w", encoding="utf-8") as f:
            f.write(content)
    print(f"extract.py: {len(run)} examples to run, {len(not_run)} marked not run:")
    for line in not_run:
        print(f"  not run: {line}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
