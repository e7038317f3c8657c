"""The reference benchmark's numbers in the docs are those of the committed
results (benchmarks/results/reference_benchmark_speed.json, written by
``python benchmarks/reference_benchmark.py --speed-only --force``)."""
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = json.loads((ROOT / "benchmarks" / "results" / "reference_benchmark_speed.json").read_text())
CONTENDERS = {c["name"]: c for c in RESULTS["speed"]["contenders"]}


def ratio_vs_numpy(name: str) -> float:
    return CONTENDERS["numpy float64"]["seconds"] / CONTENDERS[name]["seconds"]


@pytest.mark.parametrize("doc", ["benchmarks.md", "performance.md"])
def test_the_docs_quote_the_committed_reference_benchmark(doc):
    text = (ROOT / "docs" / doc).read_text()
    f32, numpy = CONTENDERS["noiseprop float32"]["seconds"], CONTENDERS["numpy float64"]["seconds"]
    assert f"{f32:.3f}" in text and f"{ratio_vs_numpy('noiseprop float32'):.1f}x" in text
    assert f"{numpy:.2f}" in text
    if doc == "performance.md":  # the whole table, one row per contender
        for name, row in CONTENDERS.items():
            label = name.replace("numpy", "NumPy").replace("torch", "PyTorch")
            pattern = rf"\| {label} \| {row['seconds']:.3f} \| .*\| {row['vs_noiseprop_float32']:.2f} \|"
            assert re.search(pattern, text), label
