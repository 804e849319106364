"""The pipeline's layers import only downward: a lower stage never imports a higher one."""

import ast
from pathlib import Path

# Lowest first. Subpackages are stages; top-level modules that combine stages sit above them: the PhenoSeq
# object above model and generate, phenoseq.pl beside report, the demo above report. Base modules (errors,
# groups, progress, console) are below every stage and import none.
ORDER = ["base", "io", "rna", "featurize", "simulate", "model", "generate", "phenoseq", "streaming", "evaluate", "report", "pl",
         "demo", "cli"]
BASE = {"errors", "groups", "progress", "console"}
SRC = Path(__file__).resolve().parents[1] / "src" / "phenoseq"


def _layer(rel: Path) -> str | None:
    if len(rel.parts) > 1:
        return rel.parts[0]
    return "base" if rel.stem in BASE else (rel.stem if rel.stem in ORDER else None)


def _upward_imports(src: Path = SRC) -> set[tuple[str, str]]:
    rank = {name: i for i, name in enumerate(ORDER)}
    found = set()
    for path in sorted(src.rglob("*.py")):
        rel = path.relative_to(src)
        layer = _layer(rel)
        if layer not in rank:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                modules = [node.module]
            elif isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            else:
                continue
            for module in modules:
                parts = module.split(".")
                if len(parts) < 2 or parts[0] != "phenoseq":
                    continue
                target = "base" if parts[1] in BASE else parts[1]
                if target in rank and rank[target] > rank[layer]:
                    found.add((rel.as_posix(), target))
    return found


def test_no_lower_layer_imports_a_higher_one():
    assert _upward_imports() == set()


def test_the_check_sees_upward_imports(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "net.py").write_text("from phenoseq.generate.output import LATENT_KEY\n")
    (tmp_path / "progress.py").write_text("def f():\n    from phenoseq.cli import run\n")
    (tmp_path / "evaluate").mkdir()
    (tmp_path / "evaluate" / "ok.py").write_text("import phenoseq.generate.output\nfrom phenoseq.errors import E\n")
    assert _upward_imports(tmp_path) == {("model/net.py", "generate"), ("progress.py", "cli")}
