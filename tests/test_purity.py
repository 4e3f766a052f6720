"""clean() is a pure function: its output does not depend on what ran before it in the process."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import ROOT

from kb.clean import clean

# A report line in which GBK mojibake lost two characters and only their pinyin glosses survived. 府院联动
# and 司法所 are glossary terms but not words of jieba's bundled dictionary, so `?fǔ)` would be restored
# to 府 and `?suǒ)` to 所 only if the glossary's words reached cleaning's dictionary. With the dictionary
# as shipped, the first is marked lost and the second dropped as junk (司法 + 规范 read on without it).
TEXT = "推进?fǔ)院联动机制,加强司法?suǒ)规范化建设。"
AS_SHIPPED = "推进〓院联动机制,加强司法规范化建设。"

# What may run before cleaning in one process, each started in a fresh interpreter.
BEFORE = {
    "nothing": "",
    # kb build and Searcher register the glossary for BM25 before any report is cleaned
    "glossary": "from kb import glossary; glossary.register_domain_words()",
    "tokenization": "from kb import tokens; tokens.add_words(['府院联动', '司法所']); tokens.tokenize('府院联动')",
    # a host application that adds words to jieba's global dictionary
    "jieba": "import jieba; jieba.add_word('府院联动'); jieba.add_word('司法所')",
    # cleaned once before the glossary was registered, then again after
    "clean first": "from kb import glossary; from kb.clean import clean; clean(TEXT); glossary.register_domain_words()",
}

_SCRIPT = """
import json, sys
TEXT = {text!r}
{before}
from kb.clean import clean
c = clean(TEXT)
print(json.dumps([c.text, [[r.kind, r.start, r.end, r.before, r.after] for r in c.repairs]], ensure_ascii=False))
"""

# Cleaning with the glossary's words added to its dictionary, as jieba adds them for BM25: the
# constructed line must really be one on which they change a repair, or the test above proves nothing.
_LEAKED = """
import jieba
from kb import glossary
from kb.clean import lexicon
leaky = jieba.Tokenizer()
leaky.initialize()
for entry in glossary.load_glossary().entries:
    leaky.add_word(entry.term)
lexicon.word_freq = lambda: {w: f for w, f in leaky.FREQ.items() if f > 0}
"""


def _outcome(c) -> list:
    return [c.text, [[r.kind, r.start, r.end, r.before, r.after] for r in c.repairs]]


def _clean_in_fresh_processes(befores: dict[str, str]) -> dict[str, list]:
    """clean(TEXT) in one new interpreter per entry, run side by side, after that entry's code."""
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-c", _SCRIPT.format(text=TEXT, before=code)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8",
        )
        for name, code in befores.items()
    }
    out = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, (name, stderr[-2000:])
        out[name] = json.loads(stdout.strip().splitlines()[-1])
    return out


@pytest.mark.slow
def test_clean_is_the_same_whatever_ran_before() -> None:
    got = _clean_in_fresh_processes(BEFORE)
    assert got["nothing"][0] == AS_SHIPPED
    for name, outcome in got.items():
        assert outcome == got["nothing"], name
    # and in this process, after whatever the test session has run so far
    assert _outcome(clean(TEXT)) == got["nothing"]


def test_the_glossary_would_change_this_repair() -> None:
    got = _clean_in_fresh_processes({"nothing": "", "leaked": _LEAKED})
    assert got["leaked"][0] != got["nothing"][0]
    assert got["leaked"][0] == "推进府院联动机制,加强司法所规范化建设。"
