"""The code reads one way: corpus -> chunking -> store -> retrieve -> answer -> service -> chat
-> command line, with the apps (the web app in ui/, the evaluation in evals/) above the library.
Every import, including those inside functions, must point to the same layer or one below, and
the import graph has no cycle. A new module must be given its layer here."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("assistant", "ui", "evals")

# Lowest first. A module may import from its own layer and the layers before it.
LAYERS: tuple[tuple[str, ...], ...] = (
    (
        "assistant.errors",
        "assistant.faults",
        "assistant.scope",
        "assistant.strength",
        "assistant.types",
        "assistant.views",
        "assistant.text",
        "assistant.config",
        "assistant.fsutil",
        "assistant.prompts",
    ),
    (
        "assistant.corpus.pdftext",
        "assistant.corpus.loaders",
        "assistant.corpus.manifest",
        "assistant.corpus.scanning",
        "assistant.corpus.add",
        "assistant.corpus",
        "assistant.notes",
    ),
    ("assistant.encoder", "assistant.embedding", "assistant.chunking"),
    (
        "assistant.store.chroma",
        "assistant.store.pointer",
        "assistant.store.snapshot",
        "assistant.store.sync",
        "assistant.store.index",
        "assistant.store",
    ),
    ("assistant.reader", "assistant.retrieve", "assistant.rerank", "assistant.search"),
    (
        "assistant.names",
        "assistant.undisclosed",
        "assistant.shortanswer",
        "assistant.answer_model",
        "assistant.answer",
        "assistant.verify",
        "assistant.followup",
    ),
    ("assistant.llm_process", "assistant.llm"),
    ("assistant.service",),
    ("assistant.chat", "assistant"),
    ("assistant.cli.terminal", "assistant.cli.context", "assistant.cli.commands"),
    ("assistant.cli.main", "assistant.cli", "assistant.cli.__main__"),
    # The apps: above the whole library. The web app shows the latest evaluation run.
    (
        "evals",
        "evals.gold",
        "evals.metrics",
        "evals.report",
        "evals.calibration",
        "evals.runner",
        "evals.baseline",
        "evals.baseline_cli",
        "evals.evaluation",
        "evals.squad",
        "evals.bench_runs",
        "evals.scaling",
        "evals.bench",
        "evals.train_reader",
        "evals.train_answer_model",
        "evals.calibrate_strength",
        "evals.commands",
        "evals.load_openai",
    ),
    (
        "ui",
        "ui.files",
        "ui.markup",
        "ui.inputs",
        "ui.admission",
        "ui.sessions",
        "ui.handlers",
        "ui.openai_wire",
        "ui.openai_api",
        "ui.app",
        "ui.command",
        "ui.mcp_schema",
        "ui.mcp_server",
    ),
)
LEVEL = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    return {
        module_name(p): p
        for pkg in PACKAGES
        for p in sorted((ROOT / pkg).rglob("*.py"))
        if ".cache" not in p.parts
    }


def imports(path: Path, modules: set[str]) -> set[str]:
    """The project modules a file imports, anywhere in it; `from pkg import sub` counts as
    importing the submodule when there is one."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [
                f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                for a in node.names
            ]
        else:
            continue
        found |= {n for n in names if n.split(".")[0] in PACKAGES}
    return found


def graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports(path, set(modules)) - {name} for name, path in modules.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle found by a depth-first walk (one per back edge)."""
    found: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def walk(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                found.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                walk(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            walk(node)
    return found


def test_every_module_has_a_layer() -> None:
    unplaced = sorted(set(project_modules()) - set(LEVEL))
    assert not unplaced, f"give these modules a layer in tests/test_layers.py: {unplaced}"


def test_imports_only_look_down() -> None:
    upward = [
        f"{mod} imports {dep}"
        for mod, deps in graph().items()
        for dep in sorted(deps)
        if mod in LEVEL and dep in LEVEL and LEVEL[dep] > LEVEL[mod]
    ]
    assert not upward, "imports that point up a layer:\n" + "\n".join(upward)


def test_the_library_never_imports_its_apps() -> None:
    reaching = [
        f"{mod} imports {dep}"
        for mod, deps in graph().items()
        if mod.split(".")[0] == "assistant"
        for dep in sorted(deps)
        if dep.split(".")[0] in ("ui", "evals")
    ]
    assert not reaching, "\n".join(reaching)


def test_the_import_graph_has_no_cycle() -> None:
    found = cycles(graph())
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)


# What the apps may import besides the names `assistant` exports: the command line's helpers
# (to register their commands) and, for the training of the answer model and the reader, their
# features, chooser and runtime, the encoder's graph fusion, and the typed extraction the reader
# is compared with.
APP_MODULES = {
    "assistant",
    "assistant.cli.context",
    "assistant.encoder",
    "assistant.answer",
    "assistant.answer_model",
    "assistant.reader",
    "assistant.shortanswer",
    "assistant.strength",
}


def test_the_apps_use_the_public_surface() -> None:
    import assistant

    modules = project_modules()
    found = []
    for name, path in modules.items():
        if name.split(".")[0] not in ("ui", "evals"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module.split(".")[0] != "assistant":
                    continue
                if node.module not in APP_MODULES:
                    found.append(f"{name}: from {node.module} import ...")
                elif node.module == "assistant":
                    found += [
                        f"{name}: assistant.{a.name} is not exported"
                        for a in node.names
                        if a.name not in assistant.__all__
                    ]
            elif isinstance(node, ast.Import):
                found += [
                    f"{name}: import {a.name}"
                    for a in node.names
                    if a.name.startswith("assistant.")
                ]
    assert not found, "apps reaching past the public surface:\n" + "\n".join(found)


def test_the_cycle_check_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]


def test_the_apps_register_their_commands_without_the_library_importing_them() -> None:
    from click.testing import CliRunner

    from assistant.cli import cli

    out = CliRunner().invoke(cli, ["--help"]).output
    for name in ("serve", "eval", "bench", "ask", "chat"):
        assert f"  {name} " in out
