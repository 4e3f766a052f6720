"""The web UI in a real browser: Debian's Chromium driven by Playwright against a waitress server.

Screenshots for docs/ are written when KB_UPDATE_SCREENSHOTS=1; otherwise into a temporary folder."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # Chromium, and the real index behind it
pytest_plugins = ["web_fixtures"]  # app, live_server

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("KB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]
WIDTH = 1280
Q = "行政复议"


@pytest.fixture(scope="module")
def browser() -> Iterator:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: the browser tests need Debian's chromium package "
            "(apt-get install chromium; CI installs it) or KB_CHROMIUM pointing at a Chromium binary",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


class Watch:
    """Console errors (CSP violations show up there), page errors and any request off the test server."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.external: list[str] = []


@contextlib.contextmanager
def watched_page(browser, base_url: str) -> Iterator:
    """A page of a fresh browser context that may only reach `base_url`, and what it saw go wrong."""
    ctx = browser.new_context(viewport={"width": WIDTH, "height": 900}, accept_downloads=True, locale="zh-CN")
    watch = Watch()

    def route(r) -> None:
        if r.request.url.startswith(base_url):
            r.continue_()
        else:
            watch.external.append(r.request.url)
            r.abort()

    ctx.route("**/*", route)
    page = ctx.new_page()
    page.on("console", lambda m: watch.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: watch.errors.append(str(e)))
    page.set_default_timeout(20_000)
    try:
        yield page, watch
    finally:
        ctx.close()
    assert not watch.errors, watch.errors
    assert not watch.external, watch.external


@pytest.fixture()
def page_and_watch(browser, live_server) -> Iterator:
    with watched_page(browser, live_server.url) as pw:
        yield pw


@pytest.fixture()
def page(page_and_watch):
    return page_and_watch[0]


def _search(page, base: str, q: str = Q) -> None:
    page.goto(base + "/")
    page.fill("#q", q)
    page.press("#q", "Enter")
    page.wait_for_url(re.compile(r"/\?q="))


def _in_viewport(page, selector: str) -> bool:
    return page.eval_on_selector(
        selector,
        "el => { const r = el.getBoundingClientRect();"
        " return r.height > 0 && r.top >= 0 && r.bottom <= window.innerHeight + 1 && r.left >= 0; }",
    )


def test_search_shows_locality_cards(page, live_server):
    _search(page, live_server.url)
    cards = page.locator("section.card.loc")
    assert cards.count() >= 3
    names = [cards.nth(i).get_attribute("data-locality") for i in range(cards.count())]
    assert {"阜沙镇", "平桥区", "清溪镇"} <= set(names)
    assert page.locator("section.card.loc mark").count() > 0
    assert page.input_value("#q") == Q
    assert "未提及" in page.inner_text(".summary")


def test_similar_measures_from_a_passage(page, live_server):
    _search(page, live_server.url)
    first_loc = page.locator("section.card.loc").first.get_attribute("data-locality")
    page.locator("section.card.loc").first.locator("a.to-similar").first.click()
    page.wait_for_url(re.compile(r"/similar/"))
    assert page.locator(".card.source").count() == 1
    others = page.locator("section.card.loc")
    assert others.count() >= 1
    assert first_loc not in [others.nth(i).get_attribute("data-locality") for i in range(others.count())]


def test_document_opens_at_the_highlighted_passage(page, live_server):
    _search(page, live_server.url)
    card = page.locator('section.card.loc[data-locality="平桥区"]')
    expected = card.locator(".ptext").first.inner_text()
    card.locator("a.to-doc").first.click()
    page.wait_for_url(re.compile(r"/doc/.+\?hl=\d+-\d+#c-\d+"))
    page.wait_for_load_state("load")
    marks = page.locator("mark.passage")
    assert marks.count() >= 1
    assert "".join(marks.all_inner_texts()).replace("\n", "") == expected.replace("\n", "")
    page.wait_for_function(
        "() => { const r = document.querySelector('mark.passage').getBoundingClientRect();"
        " return r.top >= 0 && r.bottom <= window.innerHeight; }"
    )
    assert _in_viewport(page, "mark.passage")
    # the section tree navigates within the page
    link = page.locator(".toc a").nth(3)
    target = link.get_attribute("href")
    link.click()
    page.wait_for_function(
        "sel => { const r = document.querySelector(sel).getBoundingClientRect();"
        " return r.top >= 0 && r.top < window.innerHeight; }",
        arg=target,
    )


def test_csv_export_downloads(page, live_server):
    _search(page, live_server.url)
    with page.expect_download() as info:
        page.locator("a.export-csv").first.click()
    download = info.value
    assert download.suggested_filename.endswith(".csv")
    data = Path(download.path()).read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == ["locality", "region", "year", "kind", "section_path", "text", "score", "chunk_id", "source"]
    assert len(rows) > 3 and {r[0] for r in rows[1:]} >= {"阜沙镇", "平桥区", "清溪镇"}


def test_more_from_this_locality_expands_in_place(page, live_server):
    _search(page, live_server.url)
    card = page.locator('section.card.loc[data-locality="平桥区"]')
    before = card.locator("li.passage").count()
    url = page.url
    card.locator("a.more").click()
    card.locator(".more.muted").wait_for()
    assert page.url == url  # enhanced in place, no navigation
    assert card.locator("li.passage").count() > before


def test_compare_view(page, live_server):
    page.goto(live_server.url + "/compare")
    page.fill('input[name="q"] >> nth=0', "法律援助")
    page.press('input[name="q"] >> nth=0', "Enter")
    page.wait_for_url(re.compile(r"/compare\?q="))
    rows = page.locator("table.grid tbody tr")
    assert rows.count() == 5
    assert page.locator("td.hit").count() >= 2
    assert page.locator("td.none").count() + page.locator("td.hit").count() == 5


def test_search_works_without_javascript(browser, live_server):
    ctx = browser.new_context(java_script_enabled=False, viewport={"width": WIDTH, "height": 900})
    try:
        page = ctx.new_page()
        page.goto(live_server.url + "/")
        page.fill("#q", "legal aid")
        page.select_option('select[name="kind"]', "achievements")
        page.press("#q", "Enter")
        page.wait_for_url(re.compile(r"kind=achievements"))
        assert page.locator("section.card.loc").count() >= 1
        assert page.locator(".kind-achievements").count() >= 1
        page.locator("a.more").first.click()  # without JS, the link filters by locality
        page.wait_for_url(re.compile(r"locality="))
        assert page.locator("section.card.loc").count() == 1
    finally:
        ctx.close()


def test_slash_focuses_the_search_box(page, live_server):
    page.goto(live_server.url + "/docs")
    assert page.locator("#q").count() == 0
    page.goto(live_server.url + f"/?q={Q}")
    page.locator("body").click(position={"x": 5, "y": 300})
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement && document.activeElement.id") == "q"


def _no_horizontal_overflow(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")


def test_pages_fit_and_screenshots(page, live_server, tmp_path):
    """Search, compare and document pages at 1280 px (and a phone's width) without sideways scrolling;
    the 1280 px shots go to docs/ with KB_UPDATE_SCREENSHOTS=1."""
    out = ROOT / "docs" if os.environ.get("KB_UPDATE_SCREENSHOTS") == "1" else tmp_path
    base = live_server.url
    page.goto(base + f"/?q={Q}")
    assert _no_horizontal_overflow(page)
    page.screenshot(path=str(out / "search.png"), full_page=True)
    page.goto(base + "/compare?q=法律援助")
    assert _no_horizontal_overflow(page)
    page.screenshot(path=str(out / "compare.png"), full_page=True)
    doc_id = next(d["doc_id"] for d in page.request.get(base + "/api/docs").json() if d["doc_id"].startswith("003"))
    hit = next(r for r in page.request.get(base + f"/api/search?q={Q}").json()["results"] if r["doc_id"] == doc_id)
    page.goto(base + f"/doc/{doc_id}?hl={hit['start']}-{hit['end']}#c-{hit['start']}")
    page.wait_for_load_state("load")
    page.wait_for_timeout(200)
    assert _no_horizontal_overflow(page)
    assert _in_viewport(page, "mark.passage")
    page.screenshot(path=str(out / "document.png"), full_page=False)
    for name in ("search.png", "compare.png", "document.png"):
        assert (out / name).stat().st_size > 10_000
    page.set_viewport_size({"width": 390, "height": 844})
    for url in (f"/?q={Q}", f"/doc/{doc_id}", "/similar/" + hit["chunk_id"]):
        page.goto(base + url)
        assert _no_horizontal_overflow(page), url


def test_upload_a_report_then_find_it(browser, tmp_path):
    """Upload through the page (on, with the fake embedder over two seed reports), watch it finish, search it."""
    import shutil

    from web_fixtures import LiveServer

    from kb.build import build
    from kb.embed import HashEmbedder
    from web import create_app

    seeds, index = tmp_path / "seeds", tmp_path / "index"
    seeds.mkdir()
    for p in sorted((ROOT / "seeds").glob("*.txt"))[:2]:
        shutil.copy(p, seeds / p.name)
    build(seeds, index, HashEmbedder(), progress=False)
    mark = "雪松岭巡回法庭驿站"
    report = tmp_path / "雪松岭镇2023年法治政府建设报告.txt"
    text = (ROOT / "seeds" / "002_60dd12b11f7eba43.txt").read_text(encoding="utf-8")
    report.write_text(text + f"\n全镇设立{mark}，就地化解纠纷。\n", encoding="utf-8")
    app = create_app({"index": index, "model": "fake", "seeds": seeds, "allow_upload": True, "check_interval": 0.1})
    try:
        with LiveServer(app) as server, watched_page(browser, server.url) as (page, _):
            page.goto(server.url + "/")
            page.click("nav >> text=上传")
            page.set_input_files("#upload-files", str(report))
            page.click("#upload-form button[type=submit]")
            row = page.locator(".upload-row[data-state=done]")
            row.wait_for(timeout=60_000)
            assert report.name in row.inner_text()
            page.goto(server.url + "/?q=" + mark + "&mode=bm25")
            page.wait_for_selector("section.card")
            assert mark in page.inner_text("main")
            assert (seeds / report.name).is_file()
    finally:
        uploads = app.extensions.get("kb_uploads")
        if uploads is not None:
            uploads.wait()
        app.extensions["kb"].close()
