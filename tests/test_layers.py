"""The package's layers point one way, and nothing imports in a circle.

Walks every module of the one import package ``sparsecore`` (the folders sim/,
hw/, verif/ and sparsecore/) with ``ast``, every import statement included, also
those inside functions, and checks:

- sim (the model) imports only sim;
- hw (the hardware) imports only hw and the model's format definitions;
- verif imports verif, hw and sim; the application (sparsecore/) sits on top;
- no module imports itself back through any chain (no circles);
- no module imports the folders under a bare name (``import hw``);
- the host side of ``sparsecore gemm`` never imports cocotb (only the simulator does).

``python tests/test_layers.py`` prints the layer graph as text.
"""

import ast
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"sparsecore": ROOT / "sparsecore", "sparsecore.hw": ROOT / "hw",
           "sparsecore.sim": ROOT / "sim", "sparsecore.verif": ROOT / "verif"}
BARE = {"hw", "sim", "verif", "bench"}
# What each layer may import from the package ("sparsecore.sim.formats" names one module).
ALLOWED = {
    "sim": ("sparsecore.sim",),
    "hw": ("sparsecore.hw", "sparsecore.sim.formats"),
    "verif": ("sparsecore.verif", "sparsecore.hw", "sparsecore.sim"),
    "app": ("sparsecore",),
}
GEMM_HOST = "sparsecore.cli"


def modules():
    """{module name: path} of every .py file of the package."""
    found = {}
    for package, folder in FOLDERS.items():
        for path in folder.rglob("*.py"):
            rel = path.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            if package == "sparsecore" and parts and parts[0] in ("hw", "sim", "verif"):
                continue
            found[".".join([package, *parts])] = path
    return found


def layer(module):
    for name in ("sim", "hw", "verif"):
        if module == f"sparsecore.{name}" or module.startswith(f"sparsecore.{name}."):
            return name
    return "app"


def imports(path, module, known):
    """(every imported module name, bare imports) of one file; package-internal names
    are resolved to the module they load (``from sparsecore.verif import gemm`` is
    ``sparsecore.verif.gemm``)."""
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    names, bare = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = module.split(".")
                parent = parent[:len(parent) - node.level + (1 if is_package else 0)]
                base = ".".join([*parent, base] if base else parent)
            targets = [base]
            targets += [f"{base}.{alias.name}" for alias in node.names
                        if f"{base}.{alias.name}" in known]
        else:
            continue
        for target in targets:
            if target.split(".")[0] in BARE:
                bare.add(target)
            names.add(target)
    return names, bare


def graph():
    """{module: set of package modules it imports}, {module: bare imports}, {module: all}."""
    known = modules()
    edges, bare, every = {}, {}, {}
    for module, path in known.items():
        names, bare_names = imports(path, module, known)
        every[module] = names
        edges[module] = {n for n in names if n in known and n != module}
        if bare_names:
            bare[module] = bare_names
    return edges, bare, every


EDGES, BARE_IMPORTS, ALL_IMPORTS = graph()


def test_the_walk_sees_every_layer():
    assert {layer(m) for m in EDGES} == {"sim", "hw", "verif", "app"}
    assert "sparsecore.hw.core" in EDGES and "sparsecore.verif.build" in EDGES


def test_no_bare_imports():
    assert not BARE_IMPORTS, BARE_IMPORTS


@pytest.mark.parametrize("name", ["sim", "hw", "verif"])
def test_layer_imports_point_down(name):
    wrong = {}
    for module, names in ALL_IMPORTS.items():
        if layer(module) != name:
            continue
        bad = sorted(n for n in names if n.split(".")[0] == "sparsecore" and not any(
            n == a or n.startswith(a + ".") for a in ALLOWED[name]))
        if bad:
            wrong[module] = bad
    assert not wrong, f"{name} imports above itself: {wrong}"


def test_no_import_circles():
    # Tarjan's strongly connected components over the module graph.
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in EDGES[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in sorted(EDGES):
        if v not in index:
            visit(v)
    assert not circles, circles


def closure(start):
    seen, todo = set(), [start]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        todo.extend(EDGES.get(module, ()))
    return seen


def test_gemm_host_side_does_not_import_cocotb():
    reached = closure(GEMM_HOST)
    assert "sparsecore.verif.gemm" in reached   # the walk does follow the runner
    cocotb = {m: sorted(n for n in ALL_IMPORTS[m] if n.split(".")[0] == "cocotb")
              for m in reached}
    cocotb = {m: n for m, n in cocotb.items() if n}
    assert not cocotb, f"the host side of sparsecore gemm imports cocotb: {cocotb}"


def test_the_check_fails_on_a_planted_wrong_import(tmp_path):
    """The rule is live: a hardware module importing verification is reported."""
    planted = tmp_path / "planted.py"
    planted.write_text("from sparsecore.verif.build import build\n")
    names, _ = imports(planted, "sparsecore.hw.planted", modules())
    assert any(not any(n == a or n.startswith(a + ".") for a in ALLOWED["hw"])
               for n in names if n.startswith("sparsecore"))


def picture():
    """The layer graph as text: each layer, what it imports from which layer, and how often."""
    lines = []
    for name in ("app", "verif", "hw", "sim"):
        members = sorted(m for m in EDGES if layer(m) == name)
        counts = Counter(layer(t) for m in members for t in EDGES[m] if layer(t) != name)
        targets = ", ".join(f"{t} ({n})" for t, n in sorted(counts.items())) or "nothing"
        lines.append(f"{name:5} {len(members):3} modules -> {targets}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(picture())
