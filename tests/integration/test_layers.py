"""loopdoc's layers, read from its source with ``ast`` (nothing is imported), and checked at run time.

Each module's imports are collected and resolved to full names (``from . import x`` names
the module ``loopdoc.x`` when there is one, else the package). Module level means what runs
when the module is imported: not inside a function, not under ``if TYPE_CHECKING:``.
Importing ``loopdoc.a.b`` also runs the package ``loopdoc.a``: for cycles, that counts as an
import of ``loopdoc.a`` too (except by its own submodules, which Python runs after it).

The layers, lowest first; a module imports at module level only from its own layer or lower:

0. ``loopdoc.errors``, ``loopdoc.paths``, ``loopdoc.interrupts``;
1. the model, ``loopdoc.model`` (pure data, and reading it from JSON);
2. the framework adapters, ``loopdoc.adapters`` (and ``loopdoc.limits``, ``loopdoc.usercode``,
   ``loopdoc.sandbox``, which run the user's code for them, and ``loopdoc.calls``, ``--call``'s syntax);
3. ``loopdoc.analysis``, ``loopdoc.rendering``, ``loopdoc.load``, ``loopdoc.git``, ``loopdoc.doctree``
   (Sphinx's nodes), ``loopdoc.progress``;
4. the entry points: the ``loopdoc`` package, ``cli``, ``mkdocs``, ``sphinx``, ``card``,
   ``publish``, ``resolve``, ``worker``, ``fastai``, ``render``, ``diff``, ``watch``, ``__main__``.

A new module must be given a layer here (the test says so).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import ROOT, run_python

PACKAGE = ROOT / "loopdoc"
FRAMEWORKS = ("fastai", "fastcore", "torch", "pytorch_lightning", "lightning", "transformers", "accelerate")

LAYERS = {
    0: ("loopdoc.errors", "loopdoc.paths", "loopdoc.interrupts"),
    1: ("loopdoc.model",),
    2: ("loopdoc.adapters", "loopdoc.limits", "loopdoc.usercode", "loopdoc.sandbox", "loopdoc.calls"),
    3: ("loopdoc.analysis", "loopdoc.rendering", "loopdoc.templates", "loopdoc.load", "loopdoc.git", "loopdoc.doctree",
        "loopdoc.progress"),
    4: ("loopdoc", "loopdoc.cli", "loopdoc.mkdocs", "loopdoc.sphinx", "loopdoc.card", "loopdoc.publish", "loopdoc.resolve",
        "loopdoc.worker", "loopdoc.fastai", "loopdoc.render", "loopdoc.diff", "loopdoc.__main__", "loopdoc.watch"),
}
"""Each layer's modules: a name stands for the module and, if a package, everything in it."""

MODEL_BACK_EDGES = {("loopdoc.model.loop", "_notebook", "loopdoc.rendering.notebook")}
"""The model's only imports of another layer, inside a function: ``(module, function, imported module)``."""


@dataclass(frozen=True)
class Import:
    """One imported module: who imports it, where, and whether at module level."""

    importer: str
    target: str
    line: int
    top: bool  # runs when the importer is imported
    function: str | None  # the innermost enclosing function, if any
    source: str  # the import statement's line


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
DATA_PACKAGES = {"loopdoc.templates"}
"""Installed from ``templates/`` (``package-dir`` in ``pyproject.toml``): the Jinja templates, no Python code."""


def _is_package(name: str) -> bool:
    return name in MODULES and MODULES[name].name == "__init__.py"


def _resolve(importer: str, module: str | None, level: int) -> str:
    if level == 0:
        return module or ""
    base = importer.split(".") if _is_package(importer) else importer.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def _targets(importer: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = _resolve(importer, node.module, node.level)
    return [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def collect(name: str, text: str | None = None) -> list[Import]:
    """Every import in module ``name`` (its file, or ``text`` as its source), in source order."""
    path = MODULES.get(name, Path(f"<{name}>"))
    text = path.read_text(encoding="utf-8") if text is None else text
    lines = text.splitlines()
    found: list[Import] = []

    def visit(node: ast.AST, top: bool, function: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                for target in _targets(name, child):
                    found.append(Import(name, target, child.lineno, top, function, lines[child.lineno - 1]))
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                visit(child, False, getattr(child, "name", "<lambda>"))
            elif isinstance(child, ast.If) and _type_checking(child):
                for grandchild in child.orelse:
                    visit(ast.Module(body=[grandchild], type_ignores=[]), top, function)
            else:
                visit(child, top, function)

    visit(ast.parse(text, str(path)), True, None)
    return found


IMPORTS = {name: collect(name) for name in MODULES}


def ours(target: str) -> bool:
    return target == "loopdoc" or target.startswith("loopdoc.")


def layer_of(name: str) -> int | None:
    """The layer of a loopdoc module (its longest matching entry in ``LAYERS``), or ``None``."""
    best: tuple[int, int] | None = None
    for layer, prefixes in LAYERS.items():
        for prefix in prefixes:
            if (name == prefix or (name.startswith(prefix + ".") and prefix != "loopdoc")) and (
                    best is None or len(prefix) > best[0]):
                best = (len(prefix), layer)
    return None if best is None else best[1]


def top_level_edges() -> dict[str, set[str]]:
    """``{module: modules its import runs}``, between loopdoc modules, at module level (packages of imports included)."""
    edges: dict[str, set[str]] = {name: set() for name in MODULES}
    for name, imports in IMPORTS.items():
        for imp in imports:
            if not imp.top or not ours(imp.target):
                continue
            parts = imp.target.split(".")
            for i in range(2, len(parts) + 1):  # "loopdoc" itself is always run first, by every import of loopdoc
                ran = ".".join(parts[:i])
                if ran in MODULES and not (i < len(parts) and (name == ran or name.startswith(ran + "."))):
                    edges[name].add(ran)
    return edges


def framework(target: str) -> str | None:
    top = target.split(".")[0]
    return top if top in FRAMEWORKS else None


def adapter_package(name: str) -> str | None:
    """``loopdoc.adapters.<framework>`` for a module inside a framework adapter package, else ``None``."""
    parts = name.split(".")
    if len(parts) >= 3 and parts[:2] == ["loopdoc", "adapters"] and _is_package(".".join(parts[:3])):
        return ".".join(parts[:3])
    return None


# ---------------------------------------------------------------- the rules


def test_the_source_was_read():
    assert {"loopdoc", "loopdoc.model.loop", "loopdoc.adapters.fastai.extract", "loopdoc.cli"} <= MODULES.keys()
    assert sum(len(v) for v in IMPORTS.values()) > 100


def test_every_module_has_a_layer():
    assert [name for name in MODULES if layer_of(name) is None] == [], "add new modules to LAYERS"
    assert [imp for imps in IMPORTS.values() for imp in imps
            if ours(imp.target) and imp.target not in MODULES and imp.target not in DATA_PACKAGES] == [], \
        "imports of loopdoc modules that do not exist"


def find_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle a depth-first walk of ``edges`` closes, each as ``[a, b, ..., a]``."""
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        path.append(name)
        for nxt in sorted(edges.get(name, ())):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[name] = 2

    for name in sorted(edges):
        if name not in state:
            visit(name)
    return cycles


def test_no_import_cycle_at_module_level():
    assert find_cycles(top_level_edges()) == []


def test_the_checks_see_what_they_must():
    """The checks themselves, on made-up source and a made-up back-edge."""
    source = (
        "from __future__ import annotations\n"
        "from typing import TYPE_CHECKING\n"
        "from . import base\n"
        "from ..model.loop import Loop\n"
        "from .. import errors, model\n"
        "import torch.nn\n"
        "if TYPE_CHECKING:\n"
        "    from ..rendering import text\n"
        "else:\n"
        "    import json\n"
        "class C:\n"
        "    import fastai\n"
        "def f():\n"
        "    from ..rendering.documents import render\n"
    )
    found = [(i.target, i.top, i.function) for i in collect("loopdoc.adapters.madeup", source)]
    assert found == [("__future__", True, None), ("typing", True, None), ("loopdoc.adapters.base", True, None),
                     ("loopdoc.model.loop", True, None), ("loopdoc.errors", True, None), ("loopdoc.model", True, None),
                     ("torch.nn", True, None), ("json", True, None), ("fastai", True, None),
                     ("loopdoc.rendering.documents", False, "f")]
    edges = top_level_edges()
    assert "loopdoc.model.loop" in edges["loopdoc.rendering.anchors"]
    assert "loopdoc.model" in edges["loopdoc.rendering.anchors"]  # the package runs first
    assert "loopdoc.model" not in edges["loopdoc.model.loop"]  # but not for its own modules
    edges["loopdoc.model.loop"].add("loopdoc.rendering.notebook")
    assert find_cycles(edges), "a module-level back-edge from the model to the renderer is a cycle"
    assert [layer_of(n) for n in ("loopdoc.errors", "loopdoc.paths", "loopdoc.model.loop", "loopdoc.adapters.fastai.extract",
                                  "loopdoc.usercode", "loopdoc.rendering.fragment", "loopdoc.git", "loopdoc.cli",
                                  "loopdoc")] == [0, 0, 1, 2, 2, 3, 3, 4, 4]
    assert adapter_package("loopdoc.adapters.fastai.extract") == "loopdoc.adapters.fastai"
    assert adapter_package("loopdoc.adapters.registry") is None and framework("torch.nn") == "torch"


def test_layer_order_at_module_level():
    wrong = [f"{imp.importer} (layer {layer_of(imp.importer)}) imports {imp.target} (layer {layer_of(imp.target)}) "
             f"at line {imp.line}"
             for imps in IMPORTS.values() for imp in imps
             if imp.top and ours(imp.target) and layer_of(imp.target) > layer_of(imp.importer)]
    assert wrong == []


def test_model_imports_no_other_layer():
    model = [name for name in MODULES if name == "loopdoc.model" or name.startswith("loopdoc.model.")]
    assert len(model) >= 4
    allowed = {"loopdoc.errors"}
    top = [f"{imp.importer}:{imp.line} {imp.target}" for name in model for imp in IMPORTS[name]
           if imp.top and ours(imp.target) and imp.target not in allowed and not imp.target.startswith("loopdoc.model")]
    assert top == []
    lazy = [imp for name in model for imp in IMPORTS[name]
            if not imp.top and ours(imp.target) and imp.target not in allowed and not imp.target.startswith("loopdoc.model")]
    assert {(imp.importer, imp.function, imp.target) for imp in lazy} == MODEL_BACK_EDGES and len(lazy) == 1
    assert "#" in lazy[0].source, f"the back-edge must say why it is there: {lazy[0].source.strip()}"


def test_no_framework_imported_outside_its_adapter():
    wrong = [f"{imp.importer}:{imp.line} imports {imp.target}" for imps in IMPORTS.values() for imp in imps
             if imp.top and framework(imp.target) and adapter_package(imp.importer) is None]
    assert wrong == []


def test_adapters_import_no_analysis_rendering_or_other_adapter():
    wrong = []
    for name, imps in IMPORTS.items():
        if not name.startswith("loopdoc.adapters"):
            continue
        for imp in imps:  # at any level, inside functions too
            other = adapter_package(imp.target)
            if imp.target.startswith(("loopdoc.analysis", "loopdoc.rendering")) or (
                    other is not None and other != adapter_package(name)):
                wrong.append(f"{name}:{imp.line} imports {imp.target}")
    assert wrong == []


def test_notebook_patch_goes_through_the_adapter():
    """``loopdoc/fastai.py`` imports no framework at all; it patches ``Learner`` through ``ADAPTER.patch_trainer``."""
    imps = IMPORTS["loopdoc.fastai"]
    assert not [imp.target for imp in imps if framework(imp.target)]
    assert "loopdoc.adapters.fastai" in {imp.target for imp in imps if imp.top}
    tree = ast.parse(MODULES["loopdoc.fastai"].read_text(encoding="utf-8"))
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
             and node.func.attr == "patch_trainer" and isinstance(node.func.value, ast.Name) and node.func.value.id == "ADAPTER"]
    assert len(calls) == 1


# ---------------------------------------------------------------- at run time


@pytest.mark.subprocess
def test_importing_loopdoc_imports_neither_fastai_nor_torch():
    proc = run_python(
        "import sys, loopdoc, loopdoc.cli, loopdoc.load, loopdoc.render, loopdoc.adapters.fastai.extract, loopdoc.resolve\n"
        "import loopdoc.adapters.fastai, loopdoc.diff, loopdoc.git, loopdoc.publish, loopdoc.worker, loopdoc.card\n"
        "from loopdoc.adapters.registry import adapters\n"
        "assert [a.name for a in adapters()][:1] == ['fastai']\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('fastai', 'torch'))\n"
        "assert not bad, bad"
    )
    assert proc.returncode == 0, proc.stderr
