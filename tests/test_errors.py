"""One error tree: every KbError carries a stable machine code, the CLI prints one line, the API one shape."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from conftest import SEEDS

from kb import errors
from kb.cli import main
from kb.errors import IndexMissingError, KbError, NotFound, UsageError

# The codes are part of the API (docs/WEB.md): a change here is a breaking change for clients.
CODES = {
    "KbError": "error",
    "UsageError": "bad_request",
    "NotFound": "not_found",
    "IndexLoadError": "index_load",
    "IndexMissingError": "index_missing",
    "IngestError": "ingest",
}


def _tree() -> list[type[KbError]]:
    out, todo = [], [KbError]
    while todo:
        cls = todo.pop()
        out.append(cls)
        todo += cls.__subclasses__()
    return out


def test_every_error_has_a_stable_code_exit_code_and_status() -> None:
    tree = [cls for cls in _tree() if cls.__module__ == errors.__name__]
    assert {cls.__name__: cls.code for cls in tree} == CODES
    for cls in tree:
        assert re.fullmatch(r"[a-z_]+", cls.code), cls
        assert isinstance(cls.exit_code, int) and cls.exit_code > 0, cls
        assert 400 <= cls.http_status < 600, cls
        assert cls.__doc__, cls
    assert len({cls.code for cls in tree}) == len(tree)


def test_the_api_answers_a_library_error_with_its_code(fake_app) -> None:
    from web.errors import _kb_error, param

    with fake_app.test_request_context("/api/search"):
        resp = _kb_error(IndexMissingError("no index in /x"))
        assert resp.status_code == 500
        assert resp.get_json() == {"error": {"status": 500, "code": "index_missing", "message": "no index in /x"}}
        with pytest.raises(Exception) as exc, param("k"):
            raise UsageError("k must be from 1 to 100; got 0")
        assert exc.value.body() == {  # type: ignore[attr-defined]
            "error": {"status": 400, "code": "bad_request", "message": "k must be from 1 to 100; got 0", "param": "k"}
        }


def test_an_unknown_passage_is_not_found_in_the_api(fake_app) -> None:
    r = fake_app.test_client().get("/api/similar?id=000_nope:1")
    assert r.status_code == 404
    assert r.get_json()["error"]["code"] == NotFound.code == "not_found"


def test_the_cli_prints_one_line_and_exits_with_the_code(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    shutil.copy(sorted(SEEDS.glob("*.txt"))[0], seeds)
    assert main(["--seeds", str(seeds), "show", "zzz"]) == NotFound.exit_code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("kb: error: unknown document 'zzz'")
