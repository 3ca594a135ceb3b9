"""The house's rules that import-linter does not state (pyproject.toml [tool.importlinter] states the rest).

- Only what ships to Lambda lives under ``layers/shared/python``: the domain package ``mlops``.
- The domain never parses Lambda event types: handlers under ``functions/`` turn an event into the
  domain's own arguments (the typed contracts of ``mlops.contracts`` for the state machines).
- A module longer than about 500 lines says why it is kept whole, in a docstring paragraph that
  starts with "Kept as one module" (otherwise it is split by responsibility).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = ROOT / "layers" / "shared" / "python" / "mlops"
OWN_CODE = [DOMAIN, ROOT / "src" / "mlops_cli", ROOT / "src" / "mlops_local", ROOT / "stacks"]
MAX_LINES = 520  # "about 500"
EVENT_TYPES = ("aws_lambda_powertools.utilities.data_classes", "aws_lambda_powertools.utilities.parser")


def _modules(folders: list[Path]) -> list[Path]:
    return sorted(p for folder in folders for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_only_the_domain_ships_in_the_layer() -> None:
    shipped = {p.name for p in DOMAIN.parent.iterdir() if not p.name.endswith(".egg-info") and p.name != "__pycache__"}
    assert shipped == {"mlops"}


@pytest.mark.parametrize("path", _modules([DOMAIN]), ids=lambda p: str(p.relative_to(DOMAIN)))
def test_the_domain_never_parses_lambda_event_types(path: Path) -> None:
    assert not [name for name in _imports(path) if name.startswith(EVENT_TYPES)]


def test_long_modules_say_why_they_are_kept_whole() -> None:
    unexplained = []
    for path in _modules(OWN_CODE):
        lines = path.read_text().count("\n")
        if lines > MAX_LINES:
            docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
            if "Kept as one module" not in docstring:
                unexplained.append(f"{path.relative_to(ROOT)}: {lines} lines")
    assert unexplained == []


def test_the_rule_finds_an_event_type_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("from aws_lambda_powertools.utilities.data_classes import S3Event\nimport json\n")
    found = [n for n in _imports(module) if n.startswith(EVENT_TYPES)]
    assert found == ["aws_lambda_powertools.utilities.data_classes"]


def test_the_architecture_page_names_files_that_exist() -> None:
    # docs/architecture.md is the map of the house: every path it names must be there.
    page = (ROOT / "docs" / "architecture.md").read_text()
    missing = []
    for token in re.findall(r"`([^`\s]+/[^`\s]*)`", page):
        path = "layers/shared/python/" + token if token.startswith("mlops/") else token
        head, _, rest = path.partition("{")
        options, _, tail = rest.partition("}")
        for candidate in [head + o + tail for o in options.split(",")] if rest else [path]:
            if not (ROOT / candidate).exists() and not candidate.startswith("datasets/"):
                missing.append(candidate)
    assert missing == []
