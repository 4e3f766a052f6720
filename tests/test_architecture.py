"""The import rules of docs/ARCHITECTURE.md, checked by an ast scan of kb/ and web/ (lazy imports inside
functions and importlib/__import__ calls with a literal name included)."""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from conftest import ROOT

# Pipeline order: a module may import its own stage and earlier ones, never a later one. Stage 0 is what
# every stage shares (errors, the data model, patterns, the worker pool, the settings table).
STAGES: dict[str, int] = {
    "kb.errors": 0, "kb.model": 0, "kb.patterns": 0, "kb.threads": 0, "kb.settings": 0,
    "kb.ingest": 1, "kb.ids": 1,
    "kb.clean": 2,
    "kb.meta": 3, "kb.locality": 3, "kb.gazetteer": 3,
    "kb.segment": 4,
    "kb.chunk": 5,
    "kb.tokens": 6, "kb.glossary": 6, "kb.translate": 6,
    "kb.embed": 7, "kb.distembed": 7, "kb.termvec": 7,
    "kb.store": 8, "kb.engine": 8,
    "kb.query": 9, "kb.results": 9, "kb.relevance": 9, "kb.fusion": 9, "kb.search": 9, "kb.similar": 9,
    "kb.build": 10, "kb.collect": 10, "kb.corpus": 10, "kb.add": 10, "kb.evaluate": 10,
    "kb.cli": 11, "kb.cli_errors": 11, "kb.cli_text": 11, "web": 11,
}  # fmt: skip
FACADE = "kb"  # kb/__init__.py: the public API, which re-exports every stage (lazily)
WEB_TOPS = ("web", "flask", "werkzeug")
SERVE_COMMAND = ("kb.cli", "cmd_serve")  # the one place kb may import web: `kb serve`, a plain import
STORE_NEVER = ("kb.search", "kb.similar", "kb.query", "kb.results")


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, dotted
    target: str  # the imported module, dotted
    line: int
    function: str | None  # the enclosing function's name, if the import is lazy
    dynamic: bool  # importlib.import_module / __import__ with a literal name


def _module_name(relpath: str) -> str:
    parts = relpath.removesuffix(".py").split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_package(relpath: str) -> bool:
    return relpath.endswith("__init__.py")


def _imports(relpath: str, source: str, modules: set[str]) -> Iterator[Import]:
    """Every import in one file, with `from pkg import sub` resolved to the submodule when it is one."""
    module = _module_name(relpath)
    package = module if _is_package(relpath) else module.rpartition(".")[0]

    def visit(node: ast.AST, function: str | None) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            fn = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else function
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield Import(module, alias.name, child.lineno, function, False)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - (child.level - 1)]
                    base = ".".join([*anchor, *([base] if base else [])])
                for alias in child.names:
                    sub = f"{base}.{alias.name}"
                    yield Import(module, sub if sub in modules else base, child.lineno, function, False)
            elif isinstance(child, ast.Call) and _dynamic_name(child) is not None:
                yield Import(module, str(_dynamic_name(child)), child.lineno, function, True)
            yield from visit(child, fn)

    yield from visit(ast.parse(source), None)


def _dynamic_name(call: ast.Call) -> str | None:
    f = call.func
    named = (isinstance(f, ast.Attribute) and f.attr == "import_module") or (
        isinstance(f, ast.Name) and f.id in ("__import__", "import_module")
    )
    if named and call.args and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str):
        return call.args[0].value
    return None


def stage_of(module: str) -> int | None:
    """The stage of a kb or web module: its own entry or its package's (kb.store.dense → kb.store)."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        stage = STAGES.get(".".join(parts[:n]))
        if stage is not None:
            return stage
    return None


def _top(name: str) -> str:
    return name.split(".")[0]


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def check(sources: Mapping[str, str]) -> list[str]:
    """Violations of the import rules in {path relative to the repository: source}, one line each."""
    modules = {_module_name(p) for p in sources}
    problems = []
    for relpath, source in sorted(sources.items()):
        if not relpath.startswith("kb/"):
            continue
        for imp in _imports(relpath, source, modules):
            where = f"{relpath}:{imp.line} {imp.module} imports {imp.target}"
            if _top(imp.target) in WEB_TOPS:
                if (imp.module, imp.function) != SERVE_COMMAND or imp.dynamic:
                    problems.append(f"{where}: kb imports web only in kb/cli.py's {SERVE_COMMAND[1]}, plainly")
                continue
            if _top(imp.target) == "bench":
                problems.append(f"{where}: kb never imports bench")
                continue
            if _top(imp.target) != "kb" or imp.target == FACADE:
                continue
            if _under(imp.module, ("kb.store",)) and _under(imp.target, STORE_NEVER):
                problems.append(f"{where}: kb/store never imports search, query or results")
            mine, theirs = stage_of(imp.module), stage_of(imp.target)
            if imp.module == FACADE:
                continue
            if mine is None or theirs is None:
                unknown = imp.module if mine is None else imp.target
                problems.append(f"{where}: {unknown} has no stage; add it to STAGES in tests/test_architecture.py")
            elif theirs > mine:
                problems.append(f"{where}: stage {mine} imports a later stage ({theirs})")
    return problems


def _tree() -> dict[str, str]:
    files = [*ROOT.glob("kb/**/*.py"), *ROOT.glob("web/**/*.py")]
    return {p.relative_to(ROOT).as_posix(): p.read_text(encoding="utf-8") for p in files}


def test_the_code_keeps_the_import_rules() -> None:
    assert check(_tree()) == []


def test_every_kb_module_has_a_stage() -> None:
    missing = sorted(m for m in map(_module_name, _tree()) if stage_of(m) is None and m != FACADE)
    assert missing == []


def test_the_scan_sees_the_real_imports() -> None:
    """The rules are checked against real imports: the scan finds the known ones, lazy and top-level."""
    found = {(i.module, i.target, i.function) for p, s in _tree().items() for i in _imports(p, s, set())}
    assert ("kb.cli", "web.serve", "cmd_serve") in found  # lazy, inside the serve command
    assert ("kb.search", "kb.store", None) in found


# Each rule broken once, in a small synthetic tree: the checker must report exactly these lines.
BROKEN = {
    "kb/cli.py": (
        "def cmd_serve(args):\n    from web.serve import serve\n"  # allowed
        "def cmd_docs(args):\n    import flask\n"  # a lazy web import outside serve
        "def cmd_build(args):\n    import importlib\n    importlib.import_module('web.app')\n"
    ),
    "kb/chunk.py": "from kb.embed import get_embedder\n",  # a stage importing a later one
    "kb/segment.py": "def f():\n    return __import__('kb.search')\n",  # the same, dynamically
    "kb/meta.py": "from . import store\n",  # relative import of a later stage
    "kb/store/__init__.py": "",
    "kb/store/reader.py": "from kb import search\n",  # store importing search
    "kb/store/writer.py": "from ..query import parse_k\n",  # store importing query (relative)
    "kb/build.py": "def f():\n    from bench import run\n",  # kb importing bench
    "kb/search.py": "from kb.cli import main\nfrom kb.newstage import x\n",  # later stage; unknown module
    "kb/query.py": "from kb.model import Chunk\nfrom kb import errors\nimport kb\n",  # allowed
    "kb/__init__.py": "def __getattr__(name):\n    from kb.cli import main\n",  # the facade: allowed
    "web/app.py": "from kb.search import Searcher\nimport flask\n",  # web may import kb
}


def test_the_checker_reports_every_broken_rule() -> None:
    problems = check(BROKEN)
    expected = [
        ("kb/build.py:2", "kb never imports bench"),
        ("kb/chunk.py:1", "stage 5 imports a later stage (7)"),
        ("kb/cli.py:4", "only in kb/cli.py's cmd_serve"),
        ("kb/cli.py:7", "only in kb/cli.py's cmd_serve"),
        ("kb/meta.py:1", "stage 3 imports a later stage (8)"),
        ("kb/search.py:1", "stage 9 imports a later stage (11)"),
        ("kb/search.py:2", "kb.newstage has no stage"),
        ("kb/segment.py:2", "stage 4 imports a later stage (9)"),
        ("kb/store/reader.py:1", "kb/store never imports search"),
        ("kb/store/reader.py:1", "stage 8 imports a later stage (9)"),
        ("kb/store/writer.py:1", "kb/store never imports search"),
        ("kb/store/writer.py:1", "stage 8 imports a later stage (9)"),
    ]
    assert len(problems) == len(expected), "\n".join(problems)
    for problem, (where, why) in zip(problems, expected, strict=True):
        assert problem.startswith(where + " ") and why in problem, (problem, where, why)
