"""Store: latest values for every metric, windows only where rules need them, per key."""

from __future__ import annotations

from sentinel.model import JobKey, Sample
from sentinel.state import Store, WindowNeed

A = JobKey("job", 0)
B = JobKey("job", 1)


def test_latest_for_every_metric_windows_only_where_needed() -> None:
    store = Store({"loss": WindowNeed(samples=3)})
    for i in range(5):
        js = store.fold(Sample(A, i, float(i), {"loss": float(i), "lr": 0.1 * i}))
    assert js.latest == {"loss": 4.0, "lr": 0.1 * 4}
    assert js.latest_time == {"loss": 4.0, "lr": 4.0}
    assert set(js.series) == {"loss"}
    assert js.last("loss", 3) == [2.0, 3.0, 4.0]
    assert js.last("lr", 3) == []
    assert js.value("nothing") is None
    assert (js.last_step, js.count, js.last_time) == (4, 5, 4.0)


def test_keys_are_separate_and_drop_forgets_one() -> None:
    store = Store()
    store.fold(Sample(A, 0, 0.0, {"x": 1.0}))
    store.fold(Sample(B, 0, 0.0, {"x": 2.0}))
    assert sorted(store.keys()) == [A, B]
    assert store.drop(A)
    assert not store.drop(A)
    assert store.get(A) is None
    assert store.get(B) is not None
    assert len(store) == 1


def test_a_late_sample_only_updates_metrics_it_is_newest_for() -> None:
    store = Store({"loss": WindowNeed(samples=10)})
    store.fold(Sample(A, 10, 10.0, {"loss": 1.0}))
    js = store.fold(Sample(A, 5, 5.0, {"loss": 9.0, "val_acc": 0.5}))  # a lagging log line
    assert js.latest == {"loss": 1.0, "val_acc": 0.5}
    assert js.series["loss"].values == [1.0]
    assert store.out_of_order == 1
    assert js.newest == 10.0


def test_step_going_back_with_time_going_forward_is_a_restart_and_kept() -> None:
    store = Store({"loss": WindowNeed(samples=10)})
    store.fold(Sample(A, 100, 1.0, {"loss": 1.0}))
    js = store.fold(Sample(A, 50, 2.0, {"loss": 2.0}))  # resumed from a checkpoint
    assert js.series["loss"].values == [1.0, 2.0]
    assert js.last_step == 50


def test_passive_samples_do_not_move_last_time() -> None:
    store = Store()
    store.fold(Sample(A, 0, 1.0, {"loss": 1.0}))
    js = store.fold(Sample(A, 0, 9.0, {"trainer_alive": 1.0}))
    assert js.last_time == 1.0
    js = store.fold(Sample(A, 1, 10.0, {"trainer_alive": 1.0, "loss": 0.5}))
    assert js.last_time == 10.0


def test_resize_keeps_data_and_drops_unneeded_windows() -> None:
    store = Store({"loss": WindowNeed(samples=10), "acc": WindowNeed(samples=5)})
    for i in range(10):
        js = store.fold(Sample(A, i, float(i), {"loss": float(i), "acc": float(i)}))
    store.resize({"loss": WindowNeed(samples=4, aggregates=frozenset({("max", 4)}))})
    assert set(js.series) == {"loss"}
    assert js.series["loss"].values == [6.0, 7.0, 8.0, 9.0]
    assert js.series["loss"].aggregates["max", 4].value() == 9.0


def test_need_merge() -> None:
    a = WindowNeed(10, 0.0, frozenset({("avg", 10)}))
    b = WindowNeed(5, 60.0, frozenset({("max", 5)}))
    assert a.merge(b) == WindowNeed(10, 60.0, frozenset({("avg", 10), ("max", 5)}))
