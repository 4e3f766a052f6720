"""The public API in kb/__init__.py: every name resolves, and `import kb` stays light."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT

import kb


def test_every_public_name_resolves() -> None:
    assert sorted(kb.__all__) == sorted([*kb._API, *kb._RENAMED])
    for name in kb.__all__:
        assert getattr(kb, name) is not None, name
    assert kb.KbError is __import__("kb.errors").errors.KbError
    assert kb.get_embedder("fake").model_id == "fake:hash-64"


def test_the_stage_functions_are_exported_under_their_own_names() -> None:
    import kb.build
    from kb.build import build
    from kb.clean import clean

    assert kb.build_index is build and kb.clean_text is clean
    assert kb.build.build is build  # kb.build stays the module
    text = "推进?fǔ)院联动机制。"
    assert kb.clean_text(text) == clean(text)


def test_import_kb_loads_no_heavy_library() -> None:
    code = "import sys, kb; kb.KbError; print(__import__('json').dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout))
    assert not loaded & {"faiss", "jieba", "numpy", "flask", "kb.store", "kb.search", "kb.embed"}
