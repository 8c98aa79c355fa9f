"""docs/upstreams.md stays true to the harness and the tests: every setting they read, every value `up`
prints, every fault-server path and every emulator-only contract test is in it, and each test it names
exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "upstreams.md"
HARNESS = sorted((ROOT / "scripts" / "upstreams").glob("*.py"))
READERS = [*HARNESS, ROOT / "tests" / "upstreams.py", ROOT / "tests" / "contract" / "dify_target.py"]


def doc() -> str:
    return DOC.read_text()


def defined_tests(path: Path) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    tree = ast.parse(path.read_text())
    return {
        node.name: node
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test_")
    }


def test_every_setting_the_harness_and_the_fixtures_read_is_documented() -> None:
    read = {
        name for path in READERS for name in re.findall(r"environ\.get\(\s*\"([A-Z_]+)\"", path.read_text())
    }
    read |= set(re.findall(r"\$\{([A-Z_]+):-", (ROOT / "scripts" / "upstreams.sh").read_text()))
    read |= set(re.findall(r"\"(WATCHDOG_CONTRACT_[A-Z_]+)\"", (ROOT / "tests" / "upstreams.py").read_text()))
    assert {"EVOLUTION_SRC", "DIFY_SRC", "WATCHDOG_CONTRACT_DIFY_HEALTH_URL"} <= read
    assert sorted(name for name in read if not re.search(rf"\b{name}\b", doc())) == []


def test_every_value_up_prints_is_documented() -> None:
    main = (ROOT / "scripts" / "upstreams" / "__main__.py").read_text()
    printed = set(re.findall(r"\"([A-Z][A-Z_]+)\": ", main))
    assert {"EVOLUTION_URL", "DIFY_FAIL_API_KEY", "DIFY_FAULT_URL", "UPSTREAMS_STATE"} <= printed
    assert sorted(key for key in printed if f"`{key}`" not in doc()) == []


def test_every_fault_server_behaviour_is_documented() -> None:
    fault = (ROOT / "scripts" / "upstreams" / "fault.py").read_text()
    match = re.search(r"BEHAVIOURS = \(([^)]*)\)", fault)
    assert match is not None
    behaviours = re.findall(r"\"(\w+)\"", match[1])
    assert "hang" in behaviours and "PUT /_default/<behaviour>" in doc()
    assert [b for b in behaviours if f"`/{b}" not in doc()] == []


def test_every_emulator_only_contract_test_is_in_the_table() -> None:
    contract = defined_tests(ROOT / "tests" / "contract" / "test_evolution_contract.py")
    emulator_only = [
        name for name, node in contract.items() if any(a.arg == "emulator_target" for a in node.args.args)
    ]
    assert len(emulator_only) >= 4
    assert [name for name in emulator_only if f"`{name}`" not in doc()] == []


def test_every_test_the_doc_names_exists() -> None:
    defined = {name for path in (ROOT / "tests").rglob("test_*.py") for name in defined_tests(path)}
    named = set(re.findall(r"\b(test_[a-z0-9_]+)(?![\w.*])", doc()))
    assert len(named) >= 15
    assert sorted(named - defined) == []


def test_the_readme_links_it() -> None:
    assert "docs/upstreams.md" in (ROOT / "README.md").read_text()
