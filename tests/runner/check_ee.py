# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) detached.jobs contributors
"""Checks execution-environment.yml without building an image.

It must be an ansible-builder v3 definition (ansible-builder's own schema and definition checks,
when ansible-builder is importable) whose versions agree with the repository: ansible-core and
ansible-runner as pinned in requirements/runner.txt (and ansible-core as in requirements/demo.txt),
the collection at galaxy.yml's version, ansible-core within meta/runtime.yml's requires_ansible,
no Python dependencies. Run with the repository root as argument; exits 1 naming each problem.
"""

from __future__ import annotations

import os
import re
import sys

import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import Version


def pins(path: str) -> dict[str, str]:
    """name -> version of the name==version lines of a requirements file (names lowercased)."""
    found = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"^([A-Za-z0-9_.-]+)==([^\s;#]+)", line.strip())
            if m:
                found[m.group(1).lower()] = m.group(2)
    return found


def load(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a mapping")
    return data


def pip_pin(dep: object, name: str, problems: list[str]) -> str | None:
    """The version of 'name==version' in a dependencies.<x>.package_pip entry."""
    spec = dep.get("package_pip") if isinstance(dep, dict) else None
    m = re.fullmatch(rf"{re.escape(name)}==([0-9][^\s,;]*)", str(spec or ""))
    if not m:
        problems.append(f"{name}: package_pip must pin one version ({name}==X.Y.Z), got {spec!r}")
        return None
    return m.group(1)


def check(root: str) -> list[str]:
    problems: list[str] = []
    ee_path = os.path.join(root, "execution-environment.yml")
    ee = load(ee_path)
    runner = pins(os.path.join(root, "requirements", "runner.txt"))
    demo = pins(os.path.join(root, "requirements", "demo.txt"))
    galaxy = load(os.path.join(root, "galaxy.yml"))
    runtime = load(os.path.join(root, "meta", "runtime.yml"))

    if ee.get("version") != 3:
        problems.append(f"version must be 3 (the ansible-builder v3 format), got {ee.get('version')!r}")
    base = ((ee.get("images") or {}).get("base_image") or {}).get("name")
    if not base:
        problems.append("images.base_image.name is missing")
    deps = ee.get("dependencies")
    if not isinstance(deps, dict):
        return problems + ["dependencies is missing"]

    core = pip_pin(deps.get("ansible_core"), "ansible-core", problems)
    if core is not None:
        if core != runner.get("ansible-core"):
            problems.append(f"ansible-core {core} here, {runner.get('ansible-core')} in requirements/runner.txt")
        if core != demo.get("ansible-core"):
            problems.append(f"ansible-core {core} here, {demo.get('ansible-core')} in requirements/demo.txt")
        if Version(core) not in SpecifierSet(str(runtime.get("requires_ansible", ""))):
            problems.append(f"ansible-core {core} is outside meta/runtime.yml requires_ansible {runtime.get('requires_ansible')!r}")
    ar = pip_pin(deps.get("ansible_runner"), "ansible-runner", problems)
    if ar is not None and ar != runner.get("ansible-runner"):
        problems.append(f"ansible-runner {ar} here, {runner.get('ansible-runner')} in requirements/runner.txt")

    fqcn = f"{galaxy['namespace']}.{galaxy['name']}"
    collections = (deps.get("galaxy") or {}).get("collections") if isinstance(deps.get("galaxy"), dict) else None
    ours = [c for c in collections or [] if isinstance(c, dict) and c.get("name") == fqcn]
    if len(ours) != 1:
        problems.append(f"dependencies.galaxy.collections must list {fqcn} once, got {collections!r}")
    elif str(ours[0].get("version")) != str(galaxy["version"]):
        problems.append(f"{fqcn} version {ours[0].get('version')!r} here, {galaxy['version']!r} in galaxy.yml")
    if deps.get("python"):
        problems.append(f"the collection has no Python dependencies, dependencies.python lists {deps['python']!r}")
    interp = deps.get("python_interpreter") or {}
    if not str(interp.get("python_path", "")).startswith("/"):
        problems.append(f"dependencies.python_interpreter.python_path must be an absolute path, got {interp.get('python_path')!r}")

    try:
        from ansible_builder.user_definition import UserDefinition
    except ImportError:
        print("check_ee: ansible-builder is not importable; its own schema check is skipped")
    else:
        try:
            UserDefinition(ee_path).validate()
        except Exception as ex:  # noqa: BLE001 - any definition error is a problem to report
            problems.append(f"ansible-builder rejects the definition: {ex}")
    return problems


def main() -> int:
    root = sys.argv[1] if len(sys.argv) > 1 else "."
    problems = check(root)
    for p in problems:
        print(f"check_ee: {p}")
    if not problems:
        print("check_ee: execution-environment.yml is a valid ansible-builder v3 definition; versions agree with requirements/ and galaxy.yml")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
