"""The benchmark's inputs stay what its README figures describe (the run itself takes minutes and
is not a test: see benchmarks/bench_grading.py)."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent


def load_benchmark():
    spec = importlib.util.spec_from_file_location("bench_grading", ROOT / "benchmarks" / "bench_grading.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_benchmark_builds_the_mix_it_reports(tmp_path):
    bench = load_benchmark()
    notebooks, modules = bench.make_corpus(tmp_path, 10)  # raises if an edit no longer applies
    assert len(notebooks) == len(modules) == 10
    kinds = [bench.kind_of(p) for p in modules]
    assert kinds == [bench.kind_of(p) for p in notebooks] == bench.CYCLE
    assert {k: kinds.count(k) / 10 for k in bench.EDITS} == {"correct": 0.5, "wrong_WOV": 0.2, "wrong_ln_fit": 0.2, "hangs": 0.1}
    assert set(bench.CYCLE[:5]) == set(bench.EDITS), "the --workers 1 sample (the first 5 of each) misses a kind"
    correct = bench.COURSE.read_text()
    for path, kind in zip(modules, kinds):
        text = path.read_text()
        assert (text == correct) == (kind == "correct")
        if kind != "correct":
            assert bench.EDITS[kind][1] in text
    for path in notebooks:
        nb = nbformat.reads(path.read_text(), as_version=4)
        nbformat.validate(nb)
        assert len(nb.cells) > 20
    report = json.loads((ROOT / "benchmarks" / "last_run.json").read_text())
    assert report["notebooks"] == report["modules"] == 40 and report["mix"] == {
        k: v / 10 for k, v in {"correct": 5, "wrong_WOV": 2, "wrong_ln_fit": 2, "hangs": 1}.items()}
