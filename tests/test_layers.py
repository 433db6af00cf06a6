"""Imports flow one way, down the layers README "Architecture" draws.

    front ends  cli, daemon, watcher, privileges, liveness, sdnotify, notify/*
    use cases   ops/*
    stages      stages/*
    the spool   spool/*
    base        store, patients, tools/*, config, errors, logs, modes, lock, audit, ledger,
                names, reasons, disclosure, canary, metrics, i18n, directory_file, evidence,
                origin, mailbox

A module may import modules of its own layer and of the layers below it, never above; nothing
imports `cli` or `daemon` (the two ways in). Checked on the source, so a new module that fits no
layer fails here until it is given one.
"""

from __future__ import annotations

import ast
from pathlib import Path

AGENT = Path(__file__).resolve().parents[1] / "agent"

LAYERS = {"base": 0, "spool": 1, "stages": 2, "ops": 3, "front": 4}
FRONT = {"agent.cli", "agent.daemon", "agent.watcher", "agent.privileges", "agent.liveness",
         "agent.sdnotify"}
BASE = {"agent.store", "agent.patients", "agent.config", "agent.errors", "agent.logs",
        "agent.modes", "agent.lock", "agent.audit", "agent.ledger", "agent.names",
        "agent.reasons", "agent.disclosure", "agent.canary", "agent.metrics", "agent",
        "agent.i18n", "agent.directory_file", "agent.evidence", "agent.origin",
        "agent.mailbox"}
PACKAGES = {"agent.tools": "base", "agent.spool": "spool", "agent.stages": "stages",
            "agent.ops": "ops", "agent.notify": "front"}
ENTRY_POINTS = {"agent.cli", "agent.daemon"}


def module_name(path: Path) -> str:
    parts = path.relative_to(AGENT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> str | None:
    if module in FRONT:
        return "front"
    if module in BASE:
        return "base"
    for package, layer in PACKAGES.items():
        if module == package or module.startswith(package + "."):
            return layer
    return None


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(AGENT.rglob("*.py"))}


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The agent modules `path` imports (a name imported from a package counts as the
    submodule when there is one)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("agent")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("agent"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in known else node.module)
    return found


def test_every_module_has_a_layer() -> None:
    assert [m for m in modules() if layer_of(m) is None] == []


def test_imports_flow_one_way() -> None:
    known = set(modules())
    wrong = []
    for name, path in modules().items():
        mine = LAYERS[layer_of(name) or "front"]
        for imported in sorted(imports_of(path, known)):
            theirs = layer_of(imported)
            if theirs is None or LAYERS[theirs] > mine:
                wrong.append(f"{name} ({layer_of(name)}) imports {imported} ({theirs})")
            if imported in ENTRY_POINTS and name != "agent.cli" and imported != name:
                wrong.append(f"{name} imports the entry point {imported}")
    assert wrong == []


def test_the_check_sees_a_wrong_import(tmp_path: Path) -> None:
    """The test above can fail: an import upwards is found."""
    bad = tmp_path / "bad.py"
    bad.write_text("from agent.ops import pipeline\nfrom agent import cli\n", encoding="utf-8")
    found = imports_of(bad, {"agent.ops.pipeline", "agent.cli"})
    assert found == {"agent.ops.pipeline", "agent.cli"}
    assert LAYERS[layer_of("agent.ops.pipeline") or ""] > LAYERS["stages"]
