"""The tree is the architecture: import contracts, no hidden circles, small modules.

The contracts themselves live in pyproject.toml ([tool.importlinter]); this file runs
them with import-linter and adds the two rules import-linter cannot see: an import
inside a function (which hides a circle from the graph only until it runs) must say
why it is there, and no module of experiments/ grows past what one reader holds.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("experiments", "memory_module", "facenet_tf", "kshot_io")
MAX_MODULE_LINES = 400


def python_files(*packages: str) -> list[Path]:
    return sorted(p for package in packages for p in (ROOT / package).rglob("*.py"))


def test_the_import_contracts_hold():
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports; "
                               "sys.exit(lint_imports(config_filename='pyproject.toml', no_cache=True, no_logo=True))"],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "BROKEN" not in done.stdout


def function_level_imports(path: Path) -> list[tuple[int, str]]:
    """(line, source) of every import inside a function body that is not under `try` (optional packages)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []

    def visit(node, in_function: bool, in_try: bool) -> None:
        for child in ast.iter_child_nodes(node):
            is_function = isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, (ast.Import, ast.ImportFrom)) and in_function and not in_try:
                found.append((child.lineno, ast.unparse(child)))
            visit(child, in_function or is_function, in_try or isinstance(child, ast.Try))

    visit(tree, False, False)
    return found


def has_reason(lines: list[str], lineno: int) -> bool:
    """A comment on the import's line, or on a comment line directly above it (or above a run of imports)."""
    if "#" in lines[lineno - 1]:
        return True
    above = lineno - 2
    while above >= 0 and lines[above].strip().startswith(("from ", "import ")):
        if "#" in lines[above]:
            return True
        above -= 1
    return above >= 0 and lines[above].strip().startswith("#")


def test_imports_inside_functions_say_why():
    """Only where TensorFlow (or another slow or optional package) must not load yet, and with a comment saying so."""
    unexplained = []
    for path in python_files(*PACKAGES):
        lines = path.read_text(encoding="utf-8").split("\n")
        for lineno, source in function_level_imports(path):
            if not has_reason(lines, lineno):
                unexplained.append(f"{path.relative_to(ROOT)}:{lineno}: {source}")
    assert not unexplained, "imports inside functions without a comment saying why:\n" + "\n".join(unexplained)


def test_the_rule_sees_an_unexplained_import(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    import json\n    return json\n\n\ndef g():\n    # optional: slow to load\n"
                      "    import json\n    return json\n", encoding="utf-8")
    lines = sample.read_text().split("\n")
    found = function_level_imports(sample)
    assert [lineno for lineno, _ in found] == [2, 8]
    assert [has_reason(lines, lineno) for lineno, _ in found] == [False, True]


def test_no_module_of_experiments_is_too_long_to_read():
    long = [f"{p.relative_to(ROOT)}: {n} lines" for p in python_files("experiments")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES]
    assert not long, f"modules over {MAX_MODULE_LINES} lines (split them by job):\n" + "\n".join(long)


def test_every_folder_of_experiments_is_a_package_that_says_what_it_holds():
    for folder in sorted(p for p in (ROOT / "experiments").rglob("*") if p.is_dir()):
        if folder.name in ("configs", "shipped", "__pycache__") or not any(folder.glob("*.py")):
            continue
        init = folder / "__init__.py"
        assert init.is_file(), f"{folder.relative_to(ROOT)} has modules but no __init__.py"
        assert ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))), f"{init.relative_to(ROOT)} has no docstring"
