# Copyright (c) detached.jobs contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Checks that every role documents exactly the variables it defaults, all with the role's prefix.

For each roles/<role>: the options of every entry point in meta/argument_specs.yml and the keys of
defaults/main.yml must be the same set (a required option may have no default), every variable
starts with `<role>_`, and the role has a README.md and a tasks/preflight.yml.
Usage: python hack/check_role_specs.py   (from the collection root)
"""

from __future__ import annotations

import os
import sys

import yaml


def check_role(role: str) -> list[str]:
    base = os.path.join("roles", role)
    errors: list[str] = []
    for required in ("meta/argument_specs.yml", "defaults/main.yml", "README.md", "tasks/main.yml", "tasks/preflight.yml"):
        if not os.path.isfile(os.path.join(base, required)):
            errors.append(f"role {role}: {required} is missing")
    if errors:
        return errors
    with open(os.path.join(base, "meta/argument_specs.yml"), encoding="utf-8") as f:
        specs = (yaml.safe_load(f) or {}).get("argument_specs") or {}
    with open(os.path.join(base, "defaults/main.yml"), encoding="utf-8") as f:
        defaults = yaml.safe_load(f) or {}
    documented: set[str] = set()
    required_options: set[str] = set()
    for entry, spec in specs.items():
        for option, meta in ((spec or {}).get("options") or {}).items():
            documented.add(option)
            if (meta or {}).get("required"):
                required_options.add(option)
            if not (meta or {}).get("description"):
                errors.append(f"role {role}: option {option} of entry point {entry} has no description")
    for name in sorted(documented | set(defaults)):
        if not name.startswith(role + "_"):
            errors.append(f"role {role}: variable {name} does not start with {role}_")
    for name in sorted(documented - set(defaults) - required_options):
        errors.append(f"role {role}: {name} is documented in meta/argument_specs.yml but has no default in defaults/main.yml")
    for name in sorted(set(defaults) - documented):
        errors.append(f"role {role}: {name} is in defaults/main.yml but not documented in meta/argument_specs.yml")
    return errors


def main() -> int:
    roles = sorted(r for r in os.listdir("roles") if os.path.isdir(os.path.join("roles", r))) if os.path.isdir("roles") else []
    errors = [e for role in roles for e in check_role(role)]
    for error in errors:
        print(f"ERROR: {error}")
    print(f"check_role_specs: {len(roles)} roles, {len(errors)} errors")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
