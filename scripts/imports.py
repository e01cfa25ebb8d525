"""The import picture of ``lib/``: which module imports which, the cycles, and the imports inside function bodies.

    python scripts/imports.py            # from the repository root (or: make imports)
    lint-imports                         # the layers contract in pyproject.toml

The graph is grimp's (import-linter's graph library), module by module: each line is a module of ``lib`` and the
modules of ``lib`` it imports (``~`` marks an import made inside a function body). A cycle is listed as the chain of
imports that leads back to its start. The exit status is 1 when there is a cycle.
"""

from __future__ import annotations

import sys
from pathlib import Path

import grimp


def deferred(graph, importer: str, imported: str) -> bool:
    """Whether every import of ``imported`` by ``importer`` sits inside a function body."""
    details = graph.get_import_details(importer=importer, imported=imported)
    if not details:
        return False
    source = Path.cwd().joinpath(*importer.split("."))
    source = source / "__init__.py" if source.is_dir() else source.with_suffix(".py")
    lines = source.read_text().splitlines()
    return all(lines[d["line_number"] - 1][:1].isspace() for d in details)


def cycles(graph, package: str = "lib") -> list[list[str]]:
    """Each direct import ``a -> b`` inside ``package`` for which ``b`` also reaches ``a``, as ``[a, b, ..., a]``."""
    found = []
    for importer in sorted(graph.find_descendants(package) | {package}):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            if imported != importer and imported.startswith(package):
                back = graph.find_shortest_chain(importer=imported, imported=importer)
                if back:
                    found.append([importer, *back])
    return found


def main() -> int:
    sys.path.insert(0, str(Path.cwd()))   # the lib/ of the checkout it runs in
    graph = grimp.build_graph("lib", cache_dir=None)
    modules = sorted(graph.find_descendants("lib") | {"lib"})
    n_imports = n_deferred = 0
    for m in modules:
        targets = sorted(graph.find_modules_directly_imported_by(m))
        marks = [("~" if deferred(graph, m, t) else "") + t for t in targets]
        n_imports += len(targets)
        n_deferred += sum(x.startswith("~") for x in marks)
        print(f"{m} -> {', '.join(marks) or '(nothing in lib)'}")
    found = cycles(graph)
    print(f"\n{len(modules)} modules, {n_imports} imports between them, {n_deferred} of them only inside functions")
    print(f"{len(found)} import(s) on a cycle" + "".join(f"\n  {' -> '.join(c)}" for c in found))
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
