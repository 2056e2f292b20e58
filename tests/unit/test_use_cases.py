"""The house rules, held against the code: one registry names the use cases, each is one package behind the
``UseCase`` contract, shared floors never import a use case, generic code never branches on a use case's name,
and no module imports its way back to itself."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from aeflow import usecases
from aeflow.params import USE_CASES
from aeflow.params import ProjectParams as Params
from aeflow.usecases.base import UseCase

SRC = Path(__file__).resolve().parents[2] / "src" / "aeflow"
WINGS = SRC / "usecases"

#: What every use case must answer for the pipeline to run it end to end.
REQUIRED = ("ingest", "validation_suites", "inject_noise", "training_plan", "evaluate", "report_section")


def test_params_and_registry_name_the_same_use_cases():
    assert USE_CASES == usecases.NAMES
    assert {p.name for p in WINGS.iterdir() if (p / "__init__.py").is_file()} == set(usecases.NAMES)


@pytest.mark.parametrize("name", usecases.NAMES)
def test_each_use_case_keeps_the_contract(name):
    uc = usecases.get(name)
    assert isinstance(uc, UseCase) and uc.name == name and uc.title
    for method in REQUIRED:
        assert getattr(type(uc), method) is not getattr(UseCase, method), f"{name} lacks {method}"
    assert (type(uc).featurize is not UseCase.featurize) == uc.has_features
    assert uc.promotion_metric, f"{name}: the gate needs a metric"
    assert getattr(Params(), name) is not None  # its params section


def test_unknown_use_case_lists_what_exists():
    from aeflow.errors import ParamsError

    with pytest.raises(ParamsError, match="available use cases: mnist, sensor, speech"):
        usecases.get("tabluar")


def _runtime_imports(file: Path) -> set[str]:
    """aeflow modules a file imports (at its top or inside functions), leaving out type-checking imports."""
    out: set[str] = set()
    todo: list[ast.AST] = [ast.parse(file.read_text(encoding="utf-8"))]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            todo.extend(node.orelse)
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("aeflow"):
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("aeflow"))
        todo.extend(ast.iter_child_nodes(node))
    return out


def _module(file: Path) -> str:
    parts = file.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(module: str) -> Path | None:
    base = SRC.parent / Path(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


FILES = sorted(SRC.rglob("*.py"))


def test_shared_floors_never_import_a_use_case():
    """Only the use cases themselves and the command line (``aeflow denoise``/``monitor`` are about one use
    case each) import a use case's package; everything else asks the registry."""
    wing = re.compile(r"^aeflow\.usecases\.(" + "|".join(usecases.NAMES) + r")(\.|$)")
    offenders = []
    for f in FILES:
        rel = f.relative_to(SRC).as_posix()
        if any(rel.startswith(f"usecases/{n}/") for n in usecases.NAMES) or rel == "cli.py":
            continue
        offenders += [f"{rel} imports {m}" for m in sorted(_runtime_imports(f)) if wing.match(m)]
    assert not offenders, "\n".join(offenders)


def test_use_cases_do_not_import_each_other():
    offenders = []
    for name in usecases.NAMES:
        others = re.compile(
            r"^aeflow\.usecases\.(" + "|".join(n for n in usecases.NAMES if n != name) + r")\b"
        )
        for f in sorted((WINGS / name).rglob("*.py")):
            offenders += [f"{f.relative_to(SRC)} imports {m}" for m in _runtime_imports(f) if others.match(m)]
    assert not offenders, "\n".join(offenders)


def test_generic_code_never_branches_on_a_use_case_name():
    pattern = re.compile(r"use_case\s*(==|!=|in\s*\()|\buc\s*(==|!=)\s*[\"']")
    hits = [
        f"{f.relative_to(SRC)}:{i}: {line.strip()}"
        for f in FILES
        for i, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert not hits, "\n".join(hits)


def test_no_import_circle():
    """Module by module, counting imports inside functions too: a circle means two modules that cannot be
    understood (or changed) apart."""
    graph: dict[str, set[str]] = {}
    for f in FILES:
        targets = {_resolve(m) for m in _runtime_imports(f)}
        graph[_module(f)] = {_module(t) for t in targets if t is not None and t != f}
    # a package's __init__ importing its own submodules to hand names on is not a circle of meaning
    for name, targets in graph.items():
        graph[name] = {
            t
            for t in targets
            if not (t.startswith(name + ".") and (SRC.parent / Path(*name.split("."))).is_dir())
        }
    state: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                circles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not circles, "\n".join(" -> ".join(c) for c in circles)


#: The floors of the house, from the ground up: a module imports only from its own floor or below (imports
#: for type hints aside). ``aeflow/usecases/__init__.py`` (the registry) imports nothing at its top.
FLOORS = [
    {"errors", "io", "layout", "sections", "system"},
    {"config", "data", "validation", "usecases"},  # the registry module itself
    {"spark"},  # the Spark session and its class archive (imports errors and system)
    {"models"},
    {"evaluation"},
    {"report"},
    {"tracking"},
    {"scoring"},  # served models in batch (imports tracking)
    {"training"},
    {"usecases.*"},  # the use cases' packages
    {"params"},
    {"stages"},
    {"cli"},
]


def _floor(module: str) -> int:
    rest = module.removeprefix("aeflow.")
    top = rest.split(".")[0]
    for n, floor in enumerate(FLOORS):
        if top == "usecases" and rest != "usecases" and "usecases.*" in floor:
            return n
        if top in floor and not (top == "usecases" and rest != "usecases"):
            return n
    raise AssertionError(f"{module}: on no floor; add it to FLOORS")


def test_no_import_runs_back_up_a_floor():
    """Each shared floor is understood (and tested) without the floors above it: models without
    evaluation, evaluation without training, the use cases without the stages that drive them."""
    offenders = []
    for f in FILES:
        module = _module(f)
        if module == "aeflow":
            continue
        for target in sorted(_runtime_imports(f)):
            path = _resolve(target)
            if path is None or path == f or _module(path) == "aeflow":
                continue
            if _floor(_module(path)) > _floor(module):
                offenders.append(f"{module} (floor {_floor(module)}) imports {_module(path)}")
    assert not offenders, "\n".join(offenders)
