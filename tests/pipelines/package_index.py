"""The package index pip is configured to use, for the tests that ask it what resolves: the SageMaker
images' requirements (sagemaker/test_image_dependencies.py) and the Azure ML environments
(azure/test_environment.py). The `registry` fixture (tests/pipelines/conftest.py) skips them, with
the reason, when the index does not answer.
"""

from __future__ import annotations

import ssl
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

PROBE_TIMEOUT_S = 5
DEFAULT_INDEX = "https://pypi.org/simple"

# pip evaluates environment markers against the interpreter it runs on, whatever --python-version
# says (that option covers wheel tags and Requires-Python only). Run it with its marker environment
# set to the target's Python (`python -c PIP_FOR_TARGET_PYTHON 3.10 install ...`), so
# `; python_version < "3.11"` lines, ours and our dependencies', apply as they will there.
PIP_FOR_TARGET_PYTHON = """
import sys
from pip._vendor.packaging import markers
python = sys.argv.pop(1)
host = markers.default_environment
markers.default_environment = lambda: {**host(), "python_version": python, "python_full_version": python + ".0"}
from pip._internal.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def pip_config() -> dict[str, str]:
    """pip's effective settings (its config files and PIP_* variables), as `pip config list` prints them."""
    out = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True,
                         timeout=60, check=False).stdout
    # Precedence as pip applies it: the environment, then the download command's section, then global.
    rank = {":env:": 3, "download": 2, "global": 1}
    found: dict[str, tuple[int, str]] = {}
    for line in out.splitlines():
        key, _, value = line.partition("=")
        section, _, name = key.rpartition(".")
        if section in rank and rank[section] > found.get(name, (0, ""))[0]:
            found[name] = (rank[section], value.strip().strip("'\""))
    return {name: value for name, (_, value) in found.items()}


def probe(index_url: str, cert: str | None, project: str = "pip") -> str | None:
    """None when the index answers for `project` within the timeout, else why not."""
    url = urllib.parse.urlparse(index_url)
    if url.scheme == "file":
        path = Path(urllib.request.url2pathname(url.path))
        return None if path.is_dir() else f"{path} is not a folder"
    context = ssl.create_default_context(cafile=cert) if cert else None
    page = f"{index_url.rstrip('/')}/{project}/"
    try:
        with urllib.request.urlopen(page, timeout=PROBE_TIMEOUT_S, context=context) as r:
            return None if r.status == 200 else f"HTTP {r.status}"
    except (urllib.error.URLError, OSError, ValueError) as e:
        return str(getattr(e, "reason", e))


def pip_errors(result: subprocess.CompletedProcess[str]) -> str:
    lines = (result.stderr + result.stdout).splitlines()
    wanted = [ln for ln in lines if ln.startswith(("ERROR", "    ", "The conflict")) and "Location" not in ln]
    return "\n".join(wanted[-25:] or lines[-25:])
