"""The shape of ``lib/``: its layers (``[tool.importlinter]`` in pyproject.toml) and no import cycle."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]


def test_layers_contract_is_kept():
    """``lint-imports`` (import-linter) checks the layers contract: imports only go down, the papers are
    independent."""
    lint = Path(sys.executable).with_name("lint-imports")
    run = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr


def cycles(graph, package: str = "lib") -> list[list[str]]:
    """Every direct import ``a -> b`` inside ``package`` for which ``b`` also reaches ``a``, as the cycle
    ``[a, b, ..., a]`` (grimp's shortest chain from ``b`` back to ``a``)."""
    found = []
    for importer in sorted(graph.find_descendants(package) | {package}):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            if imported == importer or not imported.startswith(package):
                continue
            back = graph.find_shortest_chain(importer=imported, imported=importer)
            if back:
                found.append([importer, *back])
    return found


def test_cycles_are_found():
    """The check sees a cycle when there is one: a toy graph with a -> b -> c -> a."""
    graph = grimp.ImportGraph()
    for m in ("p", "p.a", "p.b", "p.c", "p.d"):
        graph.add_module(m)
    for a, b in (("p.a", "p.b"), ("p.b", "p.c"), ("p.c", "p.a"), ("p.d", "p.a")):
        graph.add_import(importer=a, imported=b)
    assert cycles(graph, "p")[0] == ["p.a", "p.b", "p.c", "p.a"] and len(cycles(graph, "p")) == 3
    graph.remove_import(importer="p.c", imported="p.a")
    assert cycles(graph, "p") == []


def test_lib_has_no_import_cycle():
    graph = grimp.build_graph("lib", cache_dir=None)
    found = cycles(graph)
    assert not found, "import cycles in lib/:\n" + "\n".join(" -> ".join(c) for c in found)
