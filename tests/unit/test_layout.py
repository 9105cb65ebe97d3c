"""The house's shape: every test file in a tier, the unit tier without PostgreSQL, and no source file
over 600 lines (split by concern instead)."""
import os
from pathlib import Path

import pytest

from lib.config import PROJECT_ROOT

MAX_LINES = 600
SOURCE_SUFFIXES = {".py", ".sql", ".js", ".css", ".html"}
# Frozen copies of released schemas are data, kept as they shipped.
FROZEN = PROJECT_ROOT / "tests" / "migrations" / "upgrade"
# Not the project's source: the virtualenv, local data, generated output.
NOT_SOURCE = {"artifacts", "node_modules", "__pycache__"}
TIERS = {"unit", "integration", "e2e", "migrations"}


def source_files() -> list[Path]:
    found = []
    for folder, subfolders, names in os.walk(PROJECT_ROOT):
        subfolders[:] = [name for name in subfolders if not name.startswith(".") and name not in NOT_SOURCE
                         and Path(folder, name) != FROZEN]
        found += [Path(folder, name) for name in names if Path(name).suffix in SOURCE_SUFFIXES]
    return found


def test_no_source_file_is_over_600_lines():
    files = source_files()
    assert any(path.name == "queries.py" for path in files), "the walk finds the project's sources"
    long = {str(path.relative_to(PROJECT_ROOT)): lines for path in files
            if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"over {MAX_LINES} lines, split by concern: {long}"


def test_every_test_file_is_in_a_tier():
    tests = PROJECT_ROOT / "tests"
    assert not sorted(p.name for p in tests.glob("test_*.py")), "move these into tests/unit, integration, e2e or migrations"
    folders = {p.name for p in tests.iterdir() if p.is_dir() and not p.name.startswith((".", "__"))}
    assert folders == TIERS


def test_a_unit_test_that_asks_for_postgresql_fails_saying_where_it_belongs(request):
    with pytest.raises(pytest.fail.Exception, match="belongs in tests/integration"):
        request.getfixturevalue("database_url")
