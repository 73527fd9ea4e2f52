"""The floors of the house: a package imports only packages on floors below its own.

This is where the allowed order is written, once; ARCHITECTURE.md draws it.
Every import counts, also one inside a function (a lazy import still ties
two packages together).  Packages on the same floor stand beside each other
and may not import one another (minidfs and the HDFS seam share only the wire
codec below them).  Inside one package no two modules may import each other,
directly or round a longer circle.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent

#: top floor first
FLOORS: tuple[tuple[str, ...], ...] = (
    ("hdfs_csi",),                                   # the command line and the demos
    ("benchmarks",),                                 # hdfs-csi bench, selfbench
    ("csi_driver", "hdfs_backends"),                 # CSI services; the picker of a test HDFS
    ("fuse_mount",),                                 # the FUSE filesystem
    ("hdfs_client", "minidfs", "hadoop_cluster"),    # the seam; our HDFS; Hadoop's, in a JVM
    ("hadoop_wire",),                                # Hadoop RPC framing both sides speak
    ("hdfs_csi_pb", "hdfs_csi_common"),              # generated protobufs; shared utilities
)
FLOOR = {pkg: i for i, floor in enumerate(FLOORS) for pkg in floor}


def _imports(path: pathlib.Path, here: str) -> set[str]:
    """Dotted module names ``path`` (module ``here``) imports, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = here.split(".")
                base = parts[: len(parts) - node.level + (path.name == "__init__.py")]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{a.name}" for a in node.names)   # from pkg import module
    return names


def _modules() -> dict[str, pathlib.Path]:
    out = {}
    for pkg in FLOOR:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            out[".".join(path.relative_to(ROOT).with_suffix("").parts)] = path
    return out


def test_every_package_of_the_project_has_a_floor() -> None:
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests"}
    assert packages <= set(FLOOR), f"give {sorted(packages - set(FLOOR))} a floor in FLOORS"


def test_imports_only_run_down() -> None:
    wrong = []
    for module, path in _modules().items():
        pkg = module.split(".")[0]
        for name in _imports(path, module):
            other = name.split(".")[0]
            if other in FLOOR and other != pkg and FLOOR[other] <= FLOOR[pkg]:
                way = "beside it" if FLOOR[other] == FLOOR[pkg] else "above it"
                wrong.append(f"{path.relative_to(ROOT)} imports {name} ({other} is {way})")
    assert not wrong, "\n".join(sorted(set(wrong)))


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    circles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(m: str, trail: list[str]) -> None:
        state[m] = 1
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                circles.append(trail[trail.index(n):] + [n])
            elif n not in state:
                visit(n, trail + [n])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    return circles


def test_no_two_modules_of_a_package_import_each_other() -> None:
    modules = _modules()
    # a package's __init__ naming its own modules is the normal shape, not a circle
    graph = {m: {n for n in _imports(p, m) if n in modules and n != m and "." in n}
             for m, p in modules.items()}
    circles = _circles(graph)
    assert not circles, "\n".join(" -> ".join(c) for c in circles)


def test_the_circle_finder_finds_circles() -> None:
    assert _circles({"a.demo": {"a.pipeline"}, "a.pipeline": {"a.demo"}}) == \
        [["a.demo", "a.pipeline", "a.demo"]]
    assert _circles({"a.x": {"a.y"}, "a.y": {"a.z"}, "a.z": {"a.x"}, "a.w": {"a.x"}})
    assert not _circles({"a.x": {"a.y"}, "a.y": set()})


@pytest.mark.parametrize("source,expect", [
    ("from csi_driver import params\n", "csi_driver"),
    ("def f():\n    import hdfs_csi.cli\n", "hdfs_csi"),
])
def test_the_checker_sees_lazy_and_from_imports(tmp_path: pathlib.Path, source: str,
                                                expect: str) -> None:
    """The test above can fail: an import up from a function body is found."""
    probe = tmp_path / "probe.py"
    probe.write_text(source, encoding="utf-8")
    assert expect in {n.split(".")[0] for n in _imports(probe, "hdfs_csi_common.probe")}


def test_relative_imports_resolve_inside_their_package(tmp_path: pathlib.Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("from . import units\nfrom .. import csi_driver\n", encoding="utf-8")
    found = _imports(probe, "hdfs_csi_common.probe")
    assert "hdfs_csi_common.units" in found


def test_test_kits_have_one_naming_style() -> None:
    """Shared test code is ``<area>_kit.py`` (found by name), beside ``test_*.py`` and
    ``conftest.py``; nothing of the kind lives in the product packages."""
    odd = [str(p.relative_to(ROOT)) for p in (ROOT / "tests").rglob("*.py")
           if not (p.name.startswith("test_") or p.name in ("conftest.py", "__init__.py")
                   or p.name.endswith("_kit.py"))]
    assert not odd, f"name shared test code <area>_kit.py: {odd}"
    in_product = [str(p.relative_to(ROOT)) for pkg in FLOOR for p in (ROOT / pkg).rglob("*.py")
                  if "pytest" in {n.split(".")[0] for n in _imports(p, pkg)}]
    assert not in_product, f"pytest plugins and fixtures belong under tests/: {in_product}"


def _imported_modules(path: pathlib.Path) -> set[str]:
    """Modules ``path`` names in import statements (not the names taken from them)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            out.add(node.module)
    return out


def _exists(module: str) -> bool:
    base = ROOT.joinpath(*module.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def test_every_import_of_the_project_names_a_module_that_exists() -> None:
    """A module moved must leave no import behind, also not one inside a function that
    only a rare path runs (``hdfs_csi.backends`` in the demo's --backend hadoop check
    outlived the move to hdfs_backends and was found by the real-HDFS tier)."""
    stale = sorted(f"{path.relative_to(ROOT)}: {m}"
                   for path in _modules().values() for m in _imported_modules(path)
                   if m.split(".")[0] in FLOOR and not _exists(m))
    tests = sorted(f"{p.relative_to(ROOT)}: {m}" for p in (ROOT / "tests").rglob("*.py")
                   for m in _imported_modules(p) if m.split(".")[0] in FLOOR and not _exists(m))
    assert not stale + tests, "\n".join(stale + tests)
