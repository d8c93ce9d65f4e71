"""merge_latest: folding samples into a new mapping while sharing what did not change."""

from __future__ import annotations

from sentinel.model import JobKey, Sample
from sentinel.model.view import Latest, SourceHealth, merge_latest

A, B = JobKey("j", 0), JobKey("j", 1)


def test_unchanged_keys_keep_their_object_and_nothing_is_mutated() -> None:
    a, b = Latest(1, 10.0, {"loss": 1.0, "acc": 0.1}), Latest(1, 10.0, {"loss": 2.0})
    prev = {A: a, B: b}
    new = merge_latest(prev, [Sample(A, 2, 11.0, {"loss": 0.5}), Sample(A, 3, 12.0, {"lr": 1e-3})])
    assert new[B] is b
    assert new[A] == Latest(3, 12.0, {"loss": 0.5, "acc": 0.1, "lr": 1e-3})
    assert prev == {A: a, B: b} and a.metrics == {"loss": 1.0, "acc": 0.1}


def test_no_samples_returns_the_same_mapping_and_new_keys_appear() -> None:
    prev = {A: Latest(1, 1.0, {"x": 1.0})}
    assert merge_latest(prev, []) is prev
    new = merge_latest(prev, [Sample(B, 5, 2.0, {"y": 2.0})])
    assert new[B] == Latest(5, 2.0, {"y": 2.0}) and new[A] is prev[A]


def test_source_age() -> None:
    assert SourceHealth(A).age(100.0) is None
    assert SourceHealth(A, last_sample_time=90.0).age(100.0) == 10.0
