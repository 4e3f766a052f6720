"""The `kb` command line: docs, show, build, search, similar, eval, add, serve."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from kb import cli_text
from kb.cli_errors import port_arg as _port
from kb.cli_errors import upload_mb_arg, user_error
from kb.errors import IngestError, KbError, UsageError
from kb.ingest import MAX_ENV, MAX_MB
from kb.settings import BY_NAME


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, indent=2) + "\n")


def _corpus(args: argparse.Namespace) -> Any:
    from kb.corpus import process_folder

    result = process_folder(Path(args.seeds), progress=False)
    for err in result.errors:
        print(f"kb: warning: skipped {err}", file=sys.stderr)
    return result


def cmd_docs(args: argparse.Namespace) -> int:
    result = _corpus(args)
    if args.skipped:
        from kb.corpus import skip_record

        if args.json:
            _print_json([skip_record(e) for e in result.errors])
        for e in [] if args.json else result.errors:
            print(e)
        return 0
    docs = [item.report.summary() for item in result.items]
    if args.json:
        _print_json(docs)
        return 0
    print(cli_text.documents(docs))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from kb.ids import resolve_doc_id

    items = {item.report.doc_id: item.report for item in _corpus(args).items}
    ids = sorted(items)
    report = items[resolve_doc_id(args.doc, ids, [items[d].source for d in ids])]
    record = report.summary() | {
        "encoding": report.encoding,
        "headline": report.headline,
        "text": report.text,
        "sections": [s.to_dict() for s in report.sections],
        "repair_log": [r.to_dict() for r in report.repairs],
    }
    if args.json:
        _print_json(record)
        return 0
    print(cli_text.document(record))
    return 0


def _embedder(args: argparse.Namespace) -> Any:
    from kb.embed import get_embedder

    try:
        return get_embedder(args.model)
    except (ValueError, FileNotFoundError, OSError) as exc:
        raise UsageError(str(exc)) from exc


def _print_build(stats: Any, as_json: bool) -> None:
    # every file left out is one line on stderr, whatever goes to stdout
    for s in stats.skipped:
        print(f"kb: skipped {s}", file=sys.stderr)
    if as_json:
        _print_json(stats.to_dict())
        return
    print(
        f"{stats.documents} reports, {stats.chunks} passages; new {len(stats.new)}, changed {len(stats.changed)},"
        f" removed {len(stats.removed)}, unchanged {stats.unchanged}; embedded {stats.embedded} passages;"
        f" {'wrote ' + stats.version if stats.wrote else 'index already up to date'} in {stats.seconds:.1f}s",
        file=sys.stderr,
    )
    for note in stats.notes:
        print(f"kb: note: {note}", file=sys.stderr)


def run_build(args: argparse.Namespace, full: bool = False, progress: bool = True) -> Any:
    from kb.build import build

    return build(Path(args.seeds), Path(args.index), _embedder(args), full=full, progress=progress,
                 embed_on=getattr(args, "embed_on", None))


def open_searcher(args: argparse.Namespace) -> Any:
    """The searcher over the index; an index that is missing (first run) is built first."""
    from kb.search import Searcher
    from kb.store import IndexLoadError, IndexMissingError, open_index

    embedder = _embedder(args)
    try:
        reader = open_index(Path(args.index), expected_model_id=embedder.model_id)
    except IndexMissingError:
        if Path(args.index).exists() and not Path(args.index).is_dir():
            raise UsageError(f"--index {args.index} is a file; give a folder (it is created if missing)") from None
        if not Path(args.seeds).is_dir():
            raise UsageError(f"no index in {args.index}, and {args.seeds} is not a folder to build it from"
                             " (run kb in the project folder, or give --seeds / KB_SEEDS)") from None
        print(f"kb: no index in {args.index}; building it from {args.seeds} first", file=sys.stderr)
        from kb.build import build

        _print_build(build(Path(args.seeds), Path(args.index), embedder), False)
        reader = open_index(Path(args.index), expected_model_id=embedder.model_id)
    except IndexLoadError as exc:
        raise UsageError(str(exc)) from exc
    return Searcher(reader, embedder)


def cmd_build(args: argparse.Namespace) -> int:
    stats = run_build(args, full=args.full, progress=not args.quiet)
    _print_build(stats, args.json)
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from kb.search import parse_filters, parse_k

    searcher = open_searcher(args)
    k = parse_k(args.k)
    filters = parse_filters(searcher.reader, args.locality, args.year, args.region, args.kind, args.province)
    out = searcher.search(args.query, k=k, filters=filters, mode=args.mode)
    if args.json:
        _print_json(out)
    else:
        print(cli_text.search_answer(out))
    return 0


def cmd_similar(args: argparse.Namespace) -> int:
    from kb.search import parse_filters, parse_k

    searcher = open_searcher(args)
    filters = parse_filters(searcher.reader, args.locality, args.year, args.region, args.kind, args.province)
    out = searcher.similar(chunk_id=args.chunk_id if not args.text else None, text=args.text, k=parse_k(args.k),
                           per_locality=parse_k(args.per_locality, default=1), include_same_locality=args.same_locality, filters=filters)
    if args.json:
        _print_json(out)
    else:
        print(cli_text.search_answer(out | {"expansions": [], "unmatched_localities": []}))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from kb import evaluate as ev

    if not (args.queries or args.meta or args.offtopic) or (args.cards and not args.queries):
        raise UsageError("kb eval needs --queries FILE, --meta FILE or --offtopic FILE (--cards judges --queries' cards)")
    searcher = open_searcher(args)

    def search(q: str, k: int) -> dict[str, Any]:
        return searcher.search(q, k=k, mode=args.mode)

    report: dict[str, Any] = {"mode": args.mode}
    if args.queries:
        report |= ev.evaluate(ev.load_queries(Path(args.queries)), search, ev.load_cards(args.cards))
    if args.offtopic:
        report["offtopic"] = ev.evaluate_offtopic(ev.load_lines(Path(args.offtopic)), search)
    if args.meta:
        report["meta"] = ev.evaluate_meta(ev.load_expected_meta(Path(args.meta)), searcher.reader.documents())
    if args.json:
        _print_json(report)
    else:
        print(ev.format_report(report))
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    """Add the files that read as reports (a folder's, recursively; a .zip's members); exit 1 when any could
    not be read or was refused (each named with why)."""
    import tempfile

    from kb.add import add_reports, expand_sources, readable_files

    sources = [Path(f) for f in args.files]
    with tempfile.TemporaryDirectory(prefix="kb-add-") as work:
        found, bad_members = expand_sources(sources, Path(work))
        files, unreadable = readable_files(found)
        unreadable[:0] = bad_members
        # from a folder or an archive the readable files are added even when some are refused
        batch = any(s.is_dir() or s.suffix.lower() == ".zip" for s in sources)
        refused: list[str] | None = [] if batch else None
        added = add_reports(files, Path(args.seeds), Path(args.index), refused) if files else []
    for line in [*(f"error: {u}" for u in [*unreadable, *(refused or [])]), *(f"added {n} to {args.seeds}" for n in added)]:
        print(f"kb: {line}", file=sys.stderr)
    if not added:
        return 1
    stats = run_build(args, progress=not args.quiet)
    _print_build(stats, args.json)
    return 1 if unreadable or refused else 0


def cmd_serve(args: argparse.Namespace) -> int:
    upload_max_mb = upload_mb_arg(args.upload_max_mb)  # before anything is loaded or built
    # The one kb → web import, and only here: every other command runs without Flask or the web package.
    from web.serve import serve

    return serve(
        Path(args.seeds),
        Path(args.index),
        _embedder(args),
        host=args.host,
        port=args.port,
        threads=args.threads,
        open_browser=args.open,
        allow_upload=args.allow_upload,
        allow_remote_upload=args.allow_remote_upload,
        upload_max_mb=upload_max_mb,
        trusted=args.trusted_host or (),
    )


def _setting_option(parser: argparse.ArgumentParser, name: str) -> None:
    """--name, with its default (from its environment variable) and help from the settings table."""
    setting = BY_NAME[name]
    # model stays None: get_embedder reads $KB_MODEL itself, so the library and the CLI agree
    default = None if name == "model" else setting.value()
    parser.add_argument(f"--{name}", type=setting.type, default=default, help=setting.cli_help())


def _filter_flags(p: argparse.ArgumentParser) -> None:
    """The filters search and similar share."""
    p.add_argument("--locality")
    p.add_argument("--year")
    p.add_argument("--region", help="any level of the locality's chain: province, city or county (广东, 白云区)")
    p.add_argument("--province", help="only this province (广东省, 重庆)")
    p.add_argument("--kind", help="achievements, problems, plans or preamble")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kb", description="法治报告知识库 — search local rule-of-law reports.")
    for name in ("seeds", "index", "model"):
        _setting_option(p, name)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    d = sub.add_parser("docs", help="list documents with metadata and repair counts")
    d.add_argument("--json", action="store_true")
    d.add_argument("--skipped", action="store_true", help="the files left out instead, each with the reason")
    d.set_defaults(func=cmd_docs)

    s = sub.add_parser("show", help="a document's cleaned text, section tree and repair log")
    s.add_argument("doc", help="document id or a unique prefix of it")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_show)

    b = sub.add_parser("build", help="bring the index up to date with the report files (incremental)")
    b.add_argument("--full", action="store_true", help="reprocess every report (embeddings still come from the cache)")
    b.add_argument("--json", action="store_true")
    b.add_argument("--quiet", action="store_true", help="no progress bars")
    b.add_argument("--embed-on", metavar="TARGET", help="embed on workers: processes[:N], ray[:N] (local) or ray://HEAD:PORT ($KB_EMBED_ON)")
    b.set_defaults(func=cmd_build)

    q = sub.add_parser("search", help="passages about a topic, grouped by locality")
    q.add_argument("query")
    q.add_argument("-k", default=None, help="number of passages (1-100, default 10)")
    _filter_flags(q)
    q.add_argument("--mode", choices=("hybrid", "dense", "bm25"), default="hybrid")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_search)

    m = sub.add_parser("similar", help="passages like a given one, from other localities")
    m.add_argument("chunk_id", nargs="?", default=None, help="a passage id from search results")
    m.add_argument("--text", help="compare with this text instead of a passage")
    m.add_argument("-k", default=None)
    m.add_argument("--per-locality", default=None, help="passages per locality (default 1)")
    m.add_argument("--same-locality", action="store_true", help="include the passage's own locality")
    _filter_flags(m)
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=cmd_similar)

    e = sub.add_parser("eval", help="search quality over judged queries; metadata accuracy; off-topic queries")
    e.add_argument("--queries", help="judged queries (JSON lines): recall@5, recall@10, MRR, passages shown")
    e.add_argument("--meta", help="expected metadata (JSON: source prefix → locality, year): accuracy, misses")
    e.add_argument("--offtopic", help="queries no report discusses, one a line: localities listed")
    e.add_argument("--cards", help="judged cards (JSON lines: id, locality, verdict 0–2): how many answer the query")
    e.add_argument("--mode", choices=("hybrid", "dense", "bm25"), default="hybrid")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_eval)

    a = sub.add_parser("add", help="copy new report files (or a folder of them, or a .zip) into the seeds folder and index them")
    a.add_argument("files", nargs="+")
    a.add_argument("--json", action="store_true")
    a.add_argument("--quiet", action="store_true")
    a.set_defaults(func=cmd_add)

    v = sub.add_parser("serve", help="the web UI and JSON API (builds the index first if needed)")
    for name in ("host", "threads"):
        _setting_option(v, name)
    port = BY_NAME["port"]
    # validated as text (port_arg names the bad value), so a bad $KB_PORT is one line too, not a traceback
    v.add_argument("--port", type=_port, default=os.environ.get(port.env, "").strip() or str(port.default),
                   help=port.cli_help() + "; 1-65535, or 0 for any free port")
    v.add_argument("--open", action="store_true", help="open the page in a browser once serving")
    v.add_argument("--allow-upload", action="store_true", help="serve /upload: reports added from the browser")
    v.add_argument("--allow-remote-upload", action="store_true",
                   help="allow /upload with a --host other than loopback (anyone who reaches it can add reports)")
    v.add_argument("--upload-max-mb", "--max-upload-mb", metavar="MB",
                   help=f"size limit of one uploaded file; default and most: the reading limit (${MAX_ENV}; default {MAX_MB})")
    v.add_argument("--trusted-host", action="append", metavar="NAME", help=BY_NAME["trusted-host"].cli_help())
    v.set_defaults(func=cmd_serve)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: every failure the user can cause is one line on stderr and a non-zero exit."""
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        if args.command == "similar" and not args.chunk_id and not args.text:
            raise UsageError("give a passage id (from search results) or --text")
        return func(args)
    except KbError as exc:
        # an unreadable seeds folder gets the hint for running outside the project folder
        code = user_error(exc, args.index) if isinstance(exc, IngestError) else None
        if code is None:
            print(f"kb: error: {exc}", file=sys.stderr)
        return exc.exit_code if code is None else code
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        print("kb: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a user-caused condition a library reports its own way (disk full, no seeds)
        code = user_error(exc, args.index)
        if code is None:
            raise
        return code


if __name__ == "__main__":
    sys.exit(main())
