"""The docs under docs/ say what the code does: each list kept twice has one source, checked here."""
import argparse
import re

import pytest

from lib.cli import COMMANDS, _parser
from lib.config import PROJECT_ROOT, SETTINGS

DOCS = PROJECT_ROOT / "docs"


def table_rows(text: str, header: str) -> list[list[str]]:
    """The cells of the markdown table under `header` (its first line), without the separator."""
    lines = text.splitlines()
    start = lines.index(header)
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]])
    return rows


def test_the_configuration_table_lists_exactly_the_registered_settings():
    documented = table_rows((DOCS / "configuration.md").read_text(), "| variable | default | meaning |")
    expected = [[f"`{s.name}`", s.documented_default, s.meaning] for s in SETTINGS]
    assert documented == expected, ("docs/configuration.md's table differs from lib.config.SETTINGS; it should "
                                    "read:\n" + "\n".join(f"| {' | '.join(row)} |" for row in expected))


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = _parser()
    [action] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def sections(text: str) -> dict[str, str]:
    """`## \\`name\\`` headings and the text under each."""
    parts = re.split(r"^## `([^`]+)`\n", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


def test_every_command_is_documented_with_its_options():
    documented = sections((DOCS / "cli.md").read_text())
    commands = subcommands()
    assert set(commands) == set(COMMANDS)
    assert set(documented) == set(commands), "docs/cli.md needs one `## `command`` section per command"
    for name, parser in commands.items():
        section = documented[name]
        assert f"python -m lib {name}" in section, f"{name}: show its usage line"
        for action in parser._actions:
            for option in action.option_strings:
                if option not in ("-h", "--help"):
                    assert f"`{option}" in section, f"docs/cli.md's {name} section does not describe {option}"


def test_nothing_cites_the_design_file_that_lives_outside_the_repository():
    outside = "DESIGN" + ".md"
    files = [p for folder in ("api", "bench", "docs", "lib", "tests") for p in (PROJECT_ROOT / folder).rglob("*")
             if p.suffix in (".py", ".md", ".sql", ".js", ".html")]
    for path in files + list(PROJECT_ROOT.glob("*.md")) + [PROJECT_ROOT / "Makefile"]:
        assert outside not in path.read_text(), f"{path.relative_to(PROJECT_ROOT)}: cite the docs under docs/"


@pytest.mark.parametrize("document", sorted(p.name for p in DOCS.glob("*.md")) + ["../README.md"])
def test_relative_links_resolve(document):
    path = (DOCS / document).resolve()
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", path.read_text()):
        assert (path.parent / target).exists(), f"{path.name} links to {target}, which does not exist"


def heading_anchors(text: str) -> set[str]:
    """The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces as dashes."""
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
            for heading in re.findall(r"^#+ (.+)$", text, re.M)}


@pytest.mark.parametrize("document", sorted(p.name for p in DOCS.glob("*.md")) + ["../README.md"])
def test_links_to_a_heading_find_it(document):
    path = (DOCS / document).resolve()
    text = path.read_text()
    for target, anchor in re.findall(r"\]\(([^)#:]*)#([^)]+)\)", text):
        linked = (path.parent / target).read_text() if target else text
        assert anchor in heading_anchors(linked), f"{path.name} links to {target}#{anchor}: no such heading"


def documented_names(cell: str) -> set[str]:
    """The names a table's first cell documents: `a`, `b` or `battle&id=<uuid>` (the part before `&`)."""
    return {name.split("&")[0] for name in re.findall(r"`([^`]+)`", cell)}


def first_cells(text: str, header: str) -> set[str]:
    return {name for row in table_rows(text, header) for name in documented_names(row[0])}


HTTP = "http.md"
VIEWS_HEADER = "| view (`GET ?view=`) | returns |"
ACTIONS_HEADER = "| action (`POST ?action=`) | body | does |"
BATCH_HEADER = "| field | meaning |"


def test_every_dashboard_view_and_action_is_documented_and_nothing_else():
    from lib.dashboard import ACTIONS, VIEWS

    text = (DOCS / HTTP).read_text()
    assert first_cells(text, VIEWS_HEADER) == set(VIEWS), "docs/http.md's views differ from lib.dashboard.VIEWS"
    assert first_cells(text, ACTIONS_HEADER) == set(ACTIONS), \
        "docs/http.md's actions differ from lib.dashboard.ACTIONS"


def data_sections() -> dict[str, set[str]]:
    """docs/data.md: each `## \\`table\\`` and the columns its `| column | meaning |` table names."""
    documented = {}
    for table, section in sections((DOCS / "data.md").read_text()).items():
        header = "| column | meaning |"
        documented[table] = first_cells(section, header) if header in section.splitlines() else set()
    return documented
