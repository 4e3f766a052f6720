"""The dense-index measurements of the benchmarks (bench/dense.py) run and report what they measured."""

from __future__ import annotations

from bench.dense import measure_dense_choices


def test_measure_dense_choices_runs():
    cands = [
        {"type": "flat"},
        {"type": "hnswsq8", "M": 16, "efConstruction": 40, "efSearch": 32, "rerank": 4},
    ]
    out = measure_dense_choices(
        [400], dim=16, n_queries=10, data=["lowrank"], candidates=cands, measure_memory=False
    )
    assert [r["type"] for r in out] == ["flat", "hnswsq8"]
    assert out[0]["recall@10"] == 1.0 and out[1]["recall@10"] >= 0.8
    assert all(r["p50_ms"] > 0 and r["file_bytes_per_vector"] > 0 for r in out)
