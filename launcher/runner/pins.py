"""The training environment's pins: does ``python`` have what ``python_env.requires`` asks?

Run by the health phase with the env phase's python (else the image's), so an image whose
torch is too old for the code fails in seconds with both versions named, not hours into a
billed run. The check runs inside that python, with the packaging library (pip's own copy
where the environment has none).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from launcher.runner import tools

# Fixed text: argv[1:] are requirement strings, checked with the packaging library (pip's own
# copy when the environment has no packaging of its own).
REQUIRES_SCRIPT = r"""
import json, sys
from importlib import metadata
try:
    from packaging.requirements import Requirement
except ImportError:
    from pip._vendor.packaging.requirements import Requirement
found = []
for text in sys.argv[1:]:
    req = Requirement(text)
    try:
        version = metadata.version(req.name)
    except metadata.PackageNotFoundError:
        version = None
    ok = version is not None and req.specifier.contains(version, prereleases=True)
    found.append({"requirement": text, "name": req.name, "version": version, "ok": ok})
print(json.dumps(found))
"""


def check(python: str, requires: tuple[str, ...], timeout: float,
          env: Mapping[str, str]) -> tuple[bool, str]:
    """``(ok, what was found)``: each requirement's package and version, or what misses."""
    try:
        result = tools.run([python, "-c", REQUIRES_SCRIPT, *requires], timeout=timeout,
                           env=env)
        found = json.loads(result.stdout.strip().splitlines()[-1])
    except (tools.ToolError, ValueError, IndexError) as exc:
        return False, f"{python} cannot check its packages ({exc})"
    bad = [f"{f['name']} {f['version'] or 'missing'} (needs {f['requirement']})"
           for f in found if not f.get("ok")]
    if bad:
        return False, (f"{python}: " + "; ".join(bad) + "; install it in the run's "
                       "environment (python_env.install) or bake an image with it")
    return True, f"{python}: " + ", ".join(f"{f['name']} {f['version']}" for f in found)
