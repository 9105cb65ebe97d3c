"""`make screenshots` leaves tracked files alone unless asked (`--docs`, `make screenshots DOCS=1`)."""
import os
import subprocess

import pytest

from bench.screenshots import ARTIFACTS, DOCS, output_dir
from lib.config import PROJECT_ROOT


def test_screenshots_go_to_artifacts_unless_docs_are_asked_for():
    assert output_dir([]) == ARTIFACTS == PROJECT_ROOT / "artifacts" / "screenshots"
    assert output_dir(["--docs"]) == DOCS == PROJECT_ROOT / "docs" / "screenshots"
    ignored = subprocess.run(["git", "check-ignore", "-q", str(ARTIFACTS / "dashboard-desktop.png")], cwd=PROJECT_ROOT)
    assert ignored.returncode == 0, "artifacts/ is git-ignored"
    with pytest.raises(SystemExit):
        output_dir(["--doc-s"])


def test_make_screenshots_passes_docs_only_when_asked():
    # Under `make test` this make is a sub-make: without the parent's flags it prints no
    # "Entering/Leaving directory" lines.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}

    def command(*args):
        return subprocess.run(["make", "--no-print-directory", "-n", "-W", ".venv/.installed", "screenshots", *args],
                              cwd=PROJECT_ROOT, env=env, capture_output=True, text=True).stdout.splitlines()[-1]

    assert command().rstrip() == ".venv/bin/python -m bench.screenshots"
    assert command("DOCS=1") == ".venv/bin/python -m bench.screenshots --docs"
