"""The architecture rules of docs/architecture.md, checked on the source tree.

(a) no .py file in ferembed/, dashboard/ or scripts/ over 500 lines;
(b) no import cycle among ferembed modules;
(c) no public top-level function or class name defined in two files;
(d) only ferembed/runs/ spells the file names of a run.

Each checker takes a repository root, so the tests at the bottom can feed it a synthetic tree and
show that it catches what it is meant to catch.
"""

from __future__ import annotations

import ast
from collections import defaultdict, deque
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CODE_DIRS = ("ferembed", "dashboard", "scripts")
MAX_LINES = 500
#: Every file of a run directory; ferembed/runs/ owns these names (docs/run_format.md).
RUN_FILES = frozenset(
    {
        "run.json",
        "embeddings.npy",
        "samples.parquet",
        "logits.npy",
        "thumbs.npy",
        "metrics.json",
        "per_sample.parquet",
        "head_weight.npy",
        "head_bias.npy",
        "folds.json",
    }
)


def _py_files(root: Path, dirs=CODE_DIRS) -> list[Path]:
    return sorted(p for d in dirs for p in (root / d).rglob("*.py"))


def _rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


# ------------------------------------------------------------------------------ (a) file length
def long_files(root: Path, limit: int = MAX_LINES) -> list[str]:
    """``"path: N lines"`` for every code file over ``limit`` lines."""
    out = []
    for p in _py_files(root):
        n = len(p.read_text(encoding="utf-8").splitlines())
        if n > limit:
            out.append(f"{_rel(root, p)}: {n} lines")
    return out


# ------------------------------------------------------------------------------ (b) import cycles
def module_names(root: Path, package: str = "ferembed") -> dict[str, Path]:
    """Dotted module name -> file, for every module of ``package`` (packages by their __init__)."""
    mods = {}
    for p in sorted((root / package).rglob("*.py")):
        parts = list(p.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = p
    return mods


def _imported(module: str, path: Path, node: ast.AST, mods: dict[str, Path]) -> list[str]:
    """The modules of ``mods`` that one import statement names explicitly."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name in mods]
    if node.level:  # relative: from the importer's package, `level - 1` packages up
        base = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if target not in mods:
        return []
    # `from pkg import name` imports the submodule pkg.name when there is one, else pkg.
    return [f"{target}.{a.name}" if f"{target}.{a.name}" in mods else target for a in node.names]


def import_graph(root: Path, package: str = "ferembed") -> dict[str, set[str]]:
    """Module -> the modules it imports, counting imports anywhere in the file (function-local
    ones too) and the parent packages an import loads (importing a.b.c runs a/__init__ and
    a/b/__init__), except the importer's own ancestors, which are loaded before it."""
    mods = module_names(root, package)
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for module, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            for target in _imported(module, path, node, mods):
                parts = target.split(".")
                for i in range(1, len(parts) + 1):
                    dep = ".".join(parts[:i])
                    ancestor = module.startswith(dep + ".")
                    if dep in mods and dep != module and (i == len(parts) or not ancestor):
                        graph[module].add(dep)
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module (iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        components.append(sorted(comp))
    return sorted(components)


def _one_cycle(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """A shortest cycle through the component's first module, as a path a -> ... -> a."""
    members, start = set(component), component[0]
    parent: dict[str, str | None] = {start: None}
    queue = deque([start])
    while queue:
        v = queue.popleft()
        for w in sorted(graph[v] & members):
            if w == start:
                path = [v]
                while parent[path[-1]] is not None:
                    path.append(parent[path[-1]])
                return [start, *reversed(path[:-1]), start] if len(path) > 1 else [start, v, start]
            if w not in parent:
                parent[w] = v
                queue.append(w)
    return component


def import_cycles(root: Path) -> list[str]:
    """One line per cycle: its modules and one concrete loop through them."""
    graph = import_graph(root)
    return [
        f"{', '.join(comp)}  (e.g. {' -> '.join(_one_cycle(graph, comp))})"
        for comp in strongly_connected(graph)
    ]


# ----------------------------------------------------------------- (c) duplicate public names
def duplicate_public_names(root: Path) -> list[str]:
    """``"name: file, file"`` for each public top-level function/class defined in two files."""
    defined = defaultdict(list)
    for p in _py_files(root):
        for node in ast.parse(p.read_text(encoding="utf-8")).body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                if not node.name.startswith("_"):
                    defined[node.name].append(_rel(root, p))
    return [
        f"{name}: {', '.join(files)}" for name, files in sorted(defined.items()) if len(files) > 1
    ]


# ------------------------------------------------------------------------- (d) run file names
def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def run_file_literals(root: Path, dirs=(*CODE_DIRS, "bench")) -> list[str]:
    """``"path:line: 'name'"`` for each string literal equal to a run's file name outside
    ferembed/runs/ (docstrings and comments may mention them)."""
    out = []
    for p in _py_files(root, dirs):
        rel = _rel(root, p)
        if rel.startswith("ferembed/runs/"):
            continue
        tree = ast.parse(p.read_text(encoding="utf-8"))
        docs = _docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in RUN_FILES and id(node) not in docs:
                out.append((rel, node.lineno, node.value))
    return [f"{rel}:{line}: {name!r}" for rel, line, name in sorted(out)]


# ------------------------------------------------------------------------------------ the rules
def test_no_file_over_500_lines():
    found = long_files(REPO)
    assert not found, "split these files (max 500 lines):\n" + "\n".join(found)


def test_no_import_cycle_in_ferembed():
    found = import_cycles(REPO)
    assert not found, "import cycles among ferembed modules:\n" + "\n".join(found)


def test_no_public_name_defined_twice():
    found = duplicate_public_names(REPO)
    assert not found, "public names defined in more than one file:\n" + "\n".join(found)


def test_only_the_run_layer_spells_run_file_names():
    found = run_file_literals(REPO)
    assert not found, "ask ferembed.runs instead of spelling a run's file names:\n" + "\n".join(
        found
    )


# ------------------------------------------------------------------- the checkers can fail
def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for d in CODE_DIRS:
        (root / d).mkdir(exist_ok=True)
    return root


def test_a_long_file_is_caught(tmp_path):
    root = _tree(
        tmp_path,
        {"ferembed/big.py": "x = 1\n" * 501, "scripts/ok.py": "x = 1\n" * 500},
    )
    assert long_files(root) == ["ferembed/big.py: 501 lines"]


@pytest.mark.parametrize(
    ("files", "cycle"),
    [
        # plain: a -> b -> a, one of them function-local
        (
            {"a.py": "import ferembed.b\n", "b.py": "def f():\n    from ferembed import a\n"},
            ["ferembed.a", "ferembed.b"],
        ),
        # a submodule importing a name from its own package's __init__, which imports it
        (
            {
                "m/__init__.py": "from ferembed.m.x import f\n",
                "m/x.py": "from ferembed.m import g\n",
            },
            ["ferembed.m", "ferembed.m.x"],
        ),
        # importing p.q loads package p, whose __init__ imports back
        (
            {"p/__init__.py": "import ferembed.o\n", "p/q.py": "", "o.py": "import ferembed.p.q\n"},
            ["ferembed.o", "ferembed.p"],
        ),
        # relative imports
        (
            {"r/__init__.py": "", "r/s.py": "from . import t\n", "r/t.py": "from .s import h\n"},
            ["ferembed.r.s", "ferembed.r.t"],
        ),
    ],
    ids=["function-local", "own-package-init", "parent-package", "relative"],
)
def test_an_import_cycle_is_caught(tmp_path, files, cycle):
    root = _tree(
        tmp_path, {"ferembed/__init__.py": "", **{f"ferembed/{k}": v for k, v in files.items()}}
    )
    found = import_cycles(root)
    assert len(found) == 1 and found[0].startswith(", ".join(cycle)), found


def test_no_false_cycle_through_own_ancestors(tmp_path):
    # m/__init__ re-exports m.x; m.x imports a sibling m.y by its full name: loading m.y
    # "loads" package m, but m is already loading, so this is no cycle.
    root = _tree(
        tmp_path,
        {
            "ferembed/__init__.py": "from ferembed.m import f\n",
            "ferembed/m/__init__.py": "from ferembed.m.x import f\n",
            "ferembed/m/x.py": "from ferembed.m.y import g\nfrom ferembed import _io\n",
            "ferembed/m/y.py": "import numpy\n",
            "ferembed/_io.py": "",
        },
    )
    assert import_cycles(root) == []


def test_a_duplicate_public_name_is_caught(tmp_path):
    root = _tree(
        tmp_path,
        {
            "ferembed/a.py": "def load():\n    pass\n\ndef _private():\n    pass\n",
            "dashboard/b.py": "class load:\n    pass\n\ndef _private():\n    pass\n",
            "scripts/c.py": "def other():\n    def load():\n        pass\n",
        },
    )
    assert duplicate_public_names(root) == ["load: dashboard/b.py, ferembed/a.py"]


def test_a_spelled_run_file_name_is_caught(tmp_path):
    root = _tree(
        tmp_path,
        {
            "ferembed/runs/format.py": 'METRICS_FILE = "metrics.json"\n',
            "dashboard/page.py": '"""Reads metrics.json."""\n\n'
            "def f(run):\n"
            '    """Also "metrics.json" here."""\n'
            '    return run / "per_sample.parquet"  # not metrics.json\n',
        },
    )
    assert run_file_literals(root) == ["dashboard/page.py:5: 'per_sample.parquet'"]
