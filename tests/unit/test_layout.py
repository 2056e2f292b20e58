"""dvc.yaml against the code: every path is the one ``aeflow.layout`` names, every use case has an entry, and
every stage depends on all the code it runs (so a changed default or a changed use case reruns it)."""

from __future__ import annotations

import ast
import shlex
from pathlib import Path

import pytest
import yaml

from aeflow import usecases
from aeflow.layout import REPORT, Layout

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))
USE_CASES = DVC["vars"][0]["use_cases"]


def _flat(prefix: str, value: object) -> dict[str, str]:
    """``${item.…}`` references of a foreach item: ``item.reads.train[0]`` and the like."""
    if isinstance(value, dict):
        return {k2: v2 for k, v in value.items() for k2, v2 in _flat(f"{prefix}.{k}", v).items()}
    if isinstance(value, list):
        return {k2: v2 for i, v in enumerate(value) for k2, v2 in _flat(f"{prefix}[{i}]", v).items()}
    return {prefix: str(value)}


def _substitute(value: object, key: str, item: object) -> object:
    if isinstance(value, str):
        out = value.replace("${key}", key).replace("${item}", str(item) if not isinstance(item, dict) else "")
        for ref, v in _flat("item", item).items() if isinstance(item, dict) else ():
            out = out.replace("${" + ref + "}", v)
        assert "${" not in out, f"unresolved reference in {out!r}"
        return out
    if isinstance(value, list):
        return [_substitute(v, key, item) for v in value]
    if isinstance(value, dict):
        return {_substitute(k, key, item): _substitute(v, key, item) for k, v in value.items()}
    return value


def expanded() -> dict[str, tuple[str | None, dict]]:
    """Every stage as DVC runs it: ``name@use_case`` → (use case, definition) with foreach expanded."""
    stages: dict[str, tuple[str | None, dict]] = {}
    for name, stage in DVC["stages"].items():
        if "foreach" not in stage:
            stages[name] = (None, stage)
            continue
        loop = stage["foreach"]
        if isinstance(loop, str):  # ${use_cases} or another dict of vars
            loop = next(v[loop[2:-1]] for v in DVC["vars"] if loop[2:-1] in v)
        pairs = loop.items() if isinstance(loop, dict) else [(v, v) for v in loop]
        for key, item in pairs:
            stages[f"{name}@{key}"] = (key, _substitute(stage["do"], key, item))
    return stages


STAGES = expanded()


def args(stage: dict) -> dict[str, str]:
    words = shlex.split(stage["cmd"])
    return {w[2:]: words[i + 1] for i, w in enumerate(words) if w.startswith("--") and i + 1 < len(words)}


def names(entries: list) -> set[str]:
    return {next(iter(e)) if isinstance(e, dict) else e for e in entries}


def test_every_registered_use_case_has_one_uniform_entry():
    assert sorted(USE_CASES) == sorted(usecases.NAMES)
    assert len({tuple(sorted(v)) for v in USE_CASES.values()}) == 1, "entries must have the same fields"
    featurized = [n for n in usecases.NAMES if usecases.get(n).has_features]
    assert DVC["stages"]["featurize"]["foreach"] == featurized


@pytest.mark.parametrize("name", [n for n in STAGES if "@" in n])
def test_stage_paths_are_the_layout(name):
    uc, stage = STAGES[name]
    layout = Layout(uc)
    a = args(stage)
    expected = {
        "data": layout.raw,
        "noisy": layout.noisy,
        "validation": layout.validation,
        "models": layout.models,
        "report": layout.validation,
    }
    stage_name = name.split("@")[0]
    expected["out"] = {"ingest": layout.raw, "inject_noise": layout.noisy, "featurize": layout.features}.get(
        stage_name
    )
    expected["plots"] = layout.evaluation_plots if stage_name == "evaluate" else layout.plots
    expected["metrics"] = {"evaluate": layout.metrics}.get(stage_name)
    expected["results"] = {"evaluate": layout.evaluation_results, "sweep_latent": layout.sweep_results}.get(
        stage_name
    )
    expected["sweep"] = layout.sweep_results
    expected["inputs"] = layout.features if usecases.get(uc).has_features else layout.noisy
    for flag, value in a.items():
        if flag in expected and expected[flag] is not None:
            if stage_name == "compare_variants" and flag in ("models", "plots"):
                continue  # the variants' own folders
            assert value == layout.relative(expected[flag]), f"{name}: --{flag} {value}"
        if flag in ("results", "metrics") and stage_name not in ("evaluate", "sweep_latent"):
            folder = {"results": layout.results, "metrics": layout.metrics.parent}[flag]
            assert value.startswith(layout.relative(folder)), f"{name}: --{flag} {value} outside {folder}"
    assert a["use-case"] == uc
    outs = names(stage.get("outs", [])) | names(stage.get("metrics", []))
    written = {"ingest": "out", "inject_noise": "out", "featurize": "out", "validate": "report"}
    written.update(train="models", evaluate="metrics", sweep_latent="results")
    for flag in ("results", "metrics"):
        if flag in a:
            assert a[flag] in outs, f"{name}: --{flag} {a[flag]} is not an output"
    if stage_name in written:
        flag = written[stage_name]
        assert a[flag] in outs, f"{name}: --{flag} {a[flag]} is not an output"


def test_report_stage_reads_what_the_stages_write():
    """The report renders every registered use case (no list to keep up to date) from folders that hold
    each use case's files, so a new use case's files are its inputs too."""
    from aeflow.layout import REGISTRY, RESULTS

    _, report = STAGES["report"]
    a = args(report)
    assert a["out"] == REPORT and "use-case" not in a
    deps = names(report["deps"])
    assert a["registry"] == REGISTRY and REGISTRY in deps
    for uc in usecases.NAMES:
        layout = Layout(uc)
        for path in (layout.scores, layout.run_file, layout.plots / "loss.csv", layout.validation):
            assert covered(ROOT / layout.relative(path), deps), f"report: {path} is in no dep"
        _, export = STAGES[f"export_registry@{uc}"]
        assert args(export)["out"] == REGISTRY and args(export)["use-case"] == uc
        assert names(export["outs"]) == {layout.relative(layout.registry_export)}
        assert covered(ROOT / layout.relative(layout.run_file), names(export["deps"]))
    assert a["results"] == RESULTS and "metrics" not in a  # the report renders results, not the headline


# --------------------------------------------------------------------------- code and params in deps
def _module_file(module: str) -> Path | None:
    base = SRC / Path(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node but those under ``if TYPE_CHECKING:`` (imports for type hints only never run)."""
    out: list[ast.AST] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            todo.extend(node.orelse)
            continue
        out.append(node)
        todo.extend(ast.iter_child_nodes(node))
    return out


def _imports(file: Path) -> set[str]:
    """aeflow modules a file imports, at the top or inside functions."""
    out: set[str] = set()
    for node in _runtime_nodes(ast.parse(file.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("aeflow"):
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("aeflow"))
    return out


def code_of(files: list[Path]) -> set[Path]:
    """Every aeflow source file reachable by imports from ``files``."""
    seen: set[Path] = set()
    todo = list(files)
    while todo:
        f = todo.pop()
        if f in seen:
            continue
        seen.add(f)
        for module in _imports(f):
            target = _module_file(module)
            if target is not None and target not in seen:
                todo.append(target)
    return seen


def covered(path: Path, deps: set[str]) -> bool:
    rel = path.relative_to(ROOT).as_posix()
    return any(rel == d or rel.startswith(d.rstrip("/") + "/") for d in deps)


#: the UseCase method each generic stage calls (the registry dispatches by name at run time, so imports
#: alone do not show which of a use case's modules a stage runs)
METHOD = {
    "ingest": "ingest",
    "validate": "validation_suites",
    "inject_noise": "inject_noise",
    "featurize": "featurize",
    "train": "training_plan",
    "evaluate": "evaluate",
    "sweep_latent": "sweep_data",
    "report": "report_section",
}


def method_start(wing: str, method: str) -> list[Path]:
    """The modules the use case's package imports at its top and those its ``method`` imports (the other
    methods' imports run only in the other stages)."""
    init = SRC / "aeflow" / "usecases" / wing / "__init__.py"
    tree = ast.parse(init.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("aeflow"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == method:
            for inner in ast.walk(node):
                if isinstance(inner, ast.ImportFrom) and inner.module and inner.module.startswith("aeflow"):
                    found.add(inner.module)
                    found.update(f"{inner.module}.{a.name}" for a in inner.names)
    return [f for f in (_module_file(m) for m in found) if f is not None]


@pytest.mark.parametrize("name", list(STAGES))
def test_stage_depends_on_all_the_code_it_runs(name):
    uc, stage = STAGES[name]
    deps = names(stage["deps"])
    pipeline = ROOT / shlex.split(stage["cmd"])[1]
    start = [pipeline]
    method = METHOD.get(name.split("@")[0])
    if method is not None:
        for wing in [uc] if uc else list(usecases.NAMES):
            start += method_start(wing, method)
    package_root = SRC / "aeflow" / "__init__.py"  # the version string only
    missing = sorted(
        f.relative_to(ROOT).as_posix() for f in code_of(start) if f != package_root and not covered(f, deps)
    )
    assert not missing, f"{name}: code it runs is not in its dvc.yaml deps: {missing}"


def test_every_use_case_names_the_same_extra_reads():
    """A stage's ``${item.reads.<stage>[i]}`` slots exist in every use case's entry (DVC would stop on a
    missing one at parse time, for every stage)."""
    shapes = {uc: {stage: len(v) for stage, v in entry["reads"].items()} for uc, entry in USE_CASES.items()}
    assert len({tuple(sorted(s.items())) for s in shapes.values()}) == 1, shapes
