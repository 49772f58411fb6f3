"""Our shipped model and data: reproducible, accurate, and described by the manifest."""
from __future__ import annotations

import hashlib
import json
from collections import Counter

import pytest
import torch as t

from reference.adversarial import COURSE_EXAMPLE, KNOWN, known_examples
from reference.datagen import generate, is_balanced
from reference.model import ASSETS, DEFAULT_DATA, DEFAULT_WEIGHTS, load_data_tuples, load_model, parameter_hash, predict_balanced
from tests.conftest import course_files_or_skip


@pytest.fixture(scope="module")
def tuples():
    return load_data_tuples()


def test_data_file_is_what_the_seeded_generator_writes(tuples):
    regenerated = generate(100_000, seed=0)
    assert len(tuples) == 100_000
    assert tuples == regenerated


def test_data_distribution_is_like_the_course(tuples):
    lengths = Counter(len(s) for s, _ in tuples)
    assert set(lengths) == set(range(2, 41, 2))
    assert 0.15 < lengths[2] / len(tuples) < 0.19
    assert all(0.02 < lengths[n] / len(tuples) < 0.04 for n in range(16, 41, 2))
    assert 0.44 < sum(b for _, b in tuples) / len(tuples) < 0.48
    unbalanced = [s for s, b in tuples if not b]
    negative_only = sum(s.count("(") == s.count(")") for s in unbalanced) / len(tuples)
    assert 0.07 < negative_only < 0.13  # both failure kinds; the course has about 9.5% negative-only
    assert all(b == is_balanced(s) for s, b in tuples)


def test_manifest_matches_the_shipped_files():
    manifest = json.loads((ASSETS / "manifest.json").read_text())
    assert manifest["sha256"] == hashlib.sha256(DEFAULT_WEIGHTS.read_bytes()).hexdigest()
    assert manifest["data_sha256"] == hashlib.sha256(DEFAULT_DATA.read_bytes()).hexdigest()
    assert manifest["held_out_accuracy"] >= 0.999
    assert min(v["accuracy"] for v in manifest["accuracy_by_length"].values()) >= 0.99


@pytest.mark.slow
def test_model_is_at_least_99_9_percent_accurate_on_5000_held_out_strings(tuples):
    held_out = tuples[:5000]  # training used examples 10,000 onwards (see reference/train.py)
    preds = predict_balanced(load_model(), [s for s, _ in held_out])
    accuracy = (preds == t.tensor([b for _, b in held_out])).float().mean().item()
    assert accuracy >= 0.999, accuracy


def test_weights_load_as_a_plain_state_dict_too(tmp_path):
    from reference.model import build_model, read_state_dict

    sd = read_state_dict(DEFAULT_WEIGHTS)
    path = tmp_path / "brackets_model_state_dict.pt"
    t.save(sd, path)
    reloaded = build_model(t.load(path, weights_only=True))
    assert parameter_hash(reloaded) == parameter_hash(load_model())


def test_listed_adversarial_examples_fool_our_model():
    model = load_model()
    examples = known_examples(model)
    assert parameter_hash(model) in KNOWN and examples
    preds = predict_balanced(model, examples).tolist()
    assert all(len(s) <= 40 and set(s) <= {"(", ")"} for s in examples)
    assert all(p != is_balanced(s) for s, p in zip(examples, preds))


@pytest.mark.course_weights
def test_course_example_fools_the_course_model():
    weights, _ = course_files_or_skip()
    model = load_model(weights)
    assert known_examples(model) == [COURSE_EXAMPLE]
    assert predict_balanced(model, [COURSE_EXAMPLE]).tolist() == [True] and not is_balanced(COURSE_EXAMPLE)
