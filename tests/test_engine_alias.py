"""The alias switch (kb.engine.alias) against Milvus Lite 3.x, the one local target with aliases, run in its own
environment (.venv-lite3, made by scripts/test from tests/lite3/requirements.txt); and what a manifest records
of a server's address."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from kb.engine import recorded_uri

ROOT = Path(__file__).resolve().parent.parent
LITE3 = ROOT / ".venv-lite3" / "bin" / "python"
pytest_plugins = ["netguard"]


@pytest.mark.slow
@pytest.mark.usefixtures("loopback_only")
def test_alias_follows_each_build_on_a_server_with_aliases(tmp_path: Path) -> None:
    if not LITE3.exists():
        pytest.skip("needs .venv-lite3 (Milvus Lite 3.x): ./scripts/test makes it from tests/lite3/requirements.txt")
    out = subprocess.run([str(LITE3), str(ROOT / "tests" / "lite3" / "alias_switch.py"), str(tmp_path / "x.db")],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["kb_v_first"] == seen["kb_v_first_again"] == "kb_live"  # created on the first build
    assert seen["kb_v_second"] == seen["kb_v_second_again"] == "kb_live"  # moved on the next one
    assert seen["kb_v_first_target"] == "kb_v_first" and seen["kb_v_first_rows"] == [0]
    assert seen["kb_v_second_target"] == "kb_v_second" and seen["kb_v_second_rows"] == [1]
    assert seen["after_drop_rows"] == [1]


def test_server_without_aliases_is_told_apart() -> None:
    pytest.importorskip("pymilvus")
    from kb.engine.alias import switch_alias

    class NoAliases:  # what Milvus Lite 2.5 does: every alias call fails at the gRPC layer
        def list_aliases(self, name: str) -> dict[str, list[str]]:
            raise RuntimeError("StatusCode.UNIMPLEMENTED")

    assert switch_alias(NoAliases(), "kb_v_x") is None


@pytest.mark.parametrize(("uri", "recorded"), [
    ("https://admin:s3cret@milvus.example.org:19530", "https://milvus.example.org:19530"),
    ("http://root:Milvus@10.0.0.5:19530/db", "http://10.0.0.5:19530/db"),
    ("https://milvus.example.org:19530", "https://milvus.example.org:19530"),
])
def test_manifest_never_records_credentials_in_the_address(tmp_path: Path, uri: str, recorded: str) -> None:
    assert recorded_uri(tmp_path, uri) == recorded


def test_lite_file_inside_the_index_is_recorded_relative(tmp_path: Path) -> None:
    assert recorded_uri(tmp_path, str(tmp_path / "milvus.db")) == "milvus.db"


def test_index_type_by_target_and_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pymilvus")
    from kb.engine.schema import dense_spec
    from kb.errors import UsageError

    monkeypatch.delenv("KB_MILVUS_INDEX", raising=False)
    assert dense_spec(10**6, lite=False) == {"index_type": "IVF_SQ8", "params": {"nlist": 4000},
                                             "search": {"nprobe": 96}}
    assert dense_spec(10**4, lite=False)["search"] == {"nprobe": 160}  # nlist 400: a fifth of the lists probed
    assert dense_spec(10**6, lite=True)["index_type"] == "FLAT"
    monkeypatch.setenv("KB_MILVUS_INDEX", "hnsw")
    assert dense_spec(10**6, lite=False)["index_type"] == "HNSW"
    with pytest.raises(UsageError, match="HNSW.*Milvus Lite.*valid: FLAT, IVF_FLAT"):
        dense_spec(100, lite=True)
    monkeypatch.setenv("KB_MILVUS_INDEX", "annoy")
    with pytest.raises(UsageError, match="valid: IVF_SQ8, HNSW, IVF_FLAT, FLAT"):
        dense_spec(100, lite=False)
