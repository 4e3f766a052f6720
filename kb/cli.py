"""The `kb` command line: docs, show, build, search, similar, eval, add, serve."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from kb.errors import KbError, UsageError


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, indent=2) + "\n")


def _corpus(args: argparse.Namespace) -> Any:
    from kb.corpus import process_folder

    result = process_folder(Path(args.seeds), progress=False)
    for err in result.errors:
        print(f"kb: warning: skipped {err}", file=sys.stderr)
    return result


def resolve_doc(doc: str, doc_ids: Sequence[str]) -> str:
    """A document id from an exact id or a unique prefix (`000`)."""
    if doc in doc_ids:
        return doc
    matches = [d for d in doc_ids if d.startswith(doc)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise UsageError(f"unknown document {doc!r}; known: {', '.join(doc_ids) or '(none)'}")
    raise UsageError(f"document {doc!r} is ambiguous; it matches {', '.join(matches)}")


def cmd_docs(args: argparse.Namespace) -> int:
    docs = [item.report.summary() for item in _corpus(args).items]
    if args.json:
        _print_json(docs)
        return 0
    for d in docs:
        repairs = sum(d["repairs"].values())
        print(
            f"{d['doc_id']}  {d['year'] or '????'}  {d['region'] or '?'} {d['locality'] or '(unknown)'}"
            f" [{d['level']}]  {d['title']}  ({repairs} repairs)"
        )
    return 0


def _section_lines(sections: list[dict[str, Any]], depth: int = 0) -> list[str]:
    out = []
    for s in sections:
        out.append(f"{'  ' * depth}{s['heading']}  [{s['kind']}] {s['start']}–{s['end']}")
        out.extend(_section_lines(s["children"], depth + 1))
    return out


def cmd_show(args: argparse.Namespace) -> int:
    items = {item.report.doc_id: item.report for item in _corpus(args).items}
    report = items[resolve_doc(args.doc, sorted(items))]
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
    print(f"# {record['title']}")
    print(f"{record['locality']} · {record['region']} · {record['province']} · {record['year']} · {record['published']}")
    print("\n## Sections")
    print("\n".join(_section_lines(record["sections"])))
    print("\n## Text\n" + record["text"])
    print("\n## Repairs " + json.dumps(record["repairs"], ensure_ascii=False))
    for r in record["repair_log"]:
        if r["kind"] not in ("traditional", "pinyin_gloss", "whitespace", "punctuation"):
            print(f"  {r['kind']:<20} {r['start']}–{r['end']}  {r['before']!r} → {r['after']!r}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kb", description="法治报告知识库 — search local rule-of-law reports.")
    p.add_argument("--seeds", default=os.environ.get("KB_SEEDS", "seeds"), help="folder of report files")
    p.add_argument("--index", default=os.environ.get("KB_INDEX", "index"), help="index folder")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    d = sub.add_parser("docs", help="list documents with metadata and repair counts")
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=cmd_docs)

    s = sub.add_parser("show", help="a document's cleaned text, section tree and repair log")
    s.add_argument("doc", help="document id or a unique prefix of it")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_show)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: every failure the user can cause is one line on stderr and a non-zero exit."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except KbError as exc:
        print(f"kb: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        print("kb: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
