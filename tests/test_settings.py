"""The settings table (kb/settings.py): every setting has help, reaches the CLI and is documented."""

from __future__ import annotations

import pytest
from conftest import ROOT

from kb.cli import build_parser
from kb.settings import BY_NAME, SETTINGS
from web.settings import Settings

DOCS = (ROOT / "docs" / "WEB.md").read_text(encoding="utf-8") + (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_every_setting_has_help_and_is_documented(setting) -> None:
    assert setting.help.strip() and setting.env.startswith("KB_")
    assert f"`{setting.env}`" in DOCS and f"`--{setting.name}`" in DOCS


def test_the_cli_takes_defaults_and_help_from_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KB_PORT", "8123")
    monkeypatch.setenv("KB_SEEDS", "elsewhere")
    monkeypatch.delenv("KB_HOST", raising=False)
    args = build_parser().parse_args(["serve"])
    assert (args.port, args.seeds, args.host, args.threads, args.model) == (8123, "elsewhere", "127.0.0.1", 8, None)
    serve_help = build_parser()._subparsers._group_actions[0].choices["serve"].format_help()  # type: ignore[union-attr]
    for name in ("host", "port", "threads"):
        assert BY_NAME[name].help in " ".join(serve_help.split()) and f"${BY_NAME[name].env}" in serve_help


def test_the_web_app_reads_the_same_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KB_INDEX", "/srv/kb-index")
    assert Settings().index == "/srv/kb-index"
    monkeypatch.delenv("KB_INDEX")
    assert Settings().index == BY_NAME["index"].default
    help_ = Settings.help()
    assert BY_NAME["index"].help in help_["index"] and BY_NAME["model"].help in help_["model"]
