"""Print a pip constraints file holding every dependency at its lower bound.

Each `name>=X` of pyproject.toml (runtime and test extra) becomes `name==X`, so
a run installed with it proves the `>=` claims are true. A dependency without
a lower bound is left free. Used by `.ci/run`'s second pass.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
requirements = list(project["dependencies"])
for extra in project.get("optional-dependencies", {}).values():
    requirements.extend(extra)
for requirement in requirements:
    match = re.match(r"\s*([A-Za-z0-9_.-]+)\s*(?:\[[^]]*\])?\s*(.*)", requirement)
    if not match:
        sys.exit(f"cannot read requirement {requirement!r}")
    name, spec = match.groups()
    lower = re.search(r">=\s*([0-9][0-9A-Za-z.]*)", spec)
    if lower:
        print(f"{name}=={lower.group(1)}")
