"""The pager with a FakeNotifier and a fake clock: dedup, grouping, repeat, resolve, retry, restore.

``workers=0``: nothing is delivered until the test calls ``run_due(t)``, so
every schedule is exact and no thread is started.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator, Mapping

import pytest

from sentinel.actions.delivery import DeliveryOutcome, DeliveryRecord, RetryPolicy
from sentinel.actions.notify import NotifyKind
from sentinel.actions.pager import DEFAULT_REPEAT, NotifyPolicy, Pager
from sentinel.model import AlertState, JobKey, Transition
from sentinel.testing.notify import FakeNotifier

HOUR = 3600.0
NOTES = {
    "summary": "loss is not finite",
    "advice": "lower the LR, enable gradient clipping",
    "description": "the loss became NaN or inf",
}


def fire(
    rank: int,
    *,
    rule: str = "NaNLoss",
    job: str = "gpt",
    t: float = 1000.0,
    step: int = 500,
    values: Mapping[str, float] | None = None,
    actions: tuple[str, ...] = ("notify",),
) -> Transition:
    return Transition(
        rule, JobKey(job, rank), AlertState.PENDING, AlertState.FIRING, t, step,
        labels={"severity": "critical"}, annotations=NOTES,
        values={"loss": math.nan} if values is None else values, actions=actions,
    )  # fmt: skip


def resolve(rank: int, *, rule: str = "NaNLoss", job: str = "gpt", t: float = 2000.0) -> Transition:
    return Transition(
        rule, JobKey(job, rank), AlertState.FIRING, AlertState.INACTIVE, t, 900,
        labels={"severity": "critical"}, annotations=NOTES, values={"loss": 2.5},
        actions=("notify",),
    )  # fmt: skip


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake() -> FakeNotifier:
    return FakeNotifier()


@pytest.fixture
def records() -> list[DeliveryRecord]:
    return []


@pytest.fixture
def pager(clock: Clock, fake: FakeNotifier, records: list[DeliveryRecord]) -> Iterator[Pager]:
    p = Pager(
        fake,
        ["json://hooks.example:8080/page"],
        on_delivery=records.append,
        retry=RetryPolicy(initial=1.0, factor=2.0, max_delay=5.0, max_attempts=6, max_age=60.0),
        workers=0,
        host="node7",
        monotonic=clock,
        wall=clock,
    )
    yield p
    p.close(0)


def deliver(pager: Pager, clock: Clock) -> None:
    pager.run_due(clock.t)


def test_ranks_firing_together_make_one_page_listing_them(pager: Pager, fake: FakeNotifier) -> None:
    pager.submit([fire(0), fire(1), fire(3, step=502)], now=1000.0)
    pager.run_due(0.0)
    [page] = fake.calls
    assert page.title == "[FIRING critical] NaNLoss: job gpt, ranks 0-1,3"
    assert page.kind is NotifyKind.FAILURE
    assert page.urls == ("json://hooks.example:8080/page",)
    body = page.body
    assert body.startswith("loss is not finite\n")
    assert "Advice: lower the LR, enable gradient clipping" in body
    assert "the loss became NaN or inf" in body
    assert "host:   node7" in body and "job:    gpt" in body
    assert "ranks:  0-1,3 (3 firing)" in body
    assert "step:   502" in body
    assert "rank 3 @ step 502: loss=nan" in body
    assert "labels: severity=critical" in body


def test_a_rank_joining_a_firing_alert_does_not_page_again(
    pager: Pager, fake: FakeNotifier
) -> None:
    pager.submit([fire(0)], now=1000.0)
    pager.submit([fire(1)], now=1001.0)
    pager.submit([fire(0)], now=1002.0)  # a repeated firing transition, too
    pager.run_due(0.0)
    assert [c.title for c in fake.calls] == ["[FIRING critical] NaNLoss: job gpt, rank 0"]
    assert pager.snapshot().pages_firing == 1


def test_each_rule_and_job_is_its_own_alert(pager: Pager, fake: FakeNotifier) -> None:
    pager.submit([fire(0), fire(0, job="vit"), fire(0, rule="GradExplode")], now=1000.0)
    pager.run_due(0.0)
    assert sorted(c.title.split("] ")[1] for c in fake.calls) == [
        "GradExplode: job gpt, rank 0",
        "NaNLoss: job gpt, rank 0",
        "NaNLoss: job vit, rank 0",
    ]


def test_only_transitions_into_firing_of_notify_rules_page(
    pager: Pager, fake: FakeNotifier
) -> None:
    pending = Transition("NaNLoss", JobKey("gpt", 0), AlertState.INACTIVE, AlertState.PENDING,
                         1.0, 1, actions=("notify",))  # fmt: skip
    pager.submit([pending, fire(1, actions=("stop",)), resolve(2)], now=1000.0)
    pager.run_due(0.0)
    assert fake.calls == []
    assert pager.snapshot().open_alerts == 0


def test_resolved_is_sent_once_the_last_rank_stops_firing(pager: Pager, fake: FakeNotifier) -> None:
    pager.submit([fire(0), fire(1)], now=1000.0)
    pager.submit([resolve(0)], now=1500.0)
    pager.run_due(0.0)
    assert len(fake.calls) == 1
    pager.submit([resolve(1)], now=1600.0)
    pager.run_due(0.0)
    resolved = fake.calls[-1]
    assert resolved.title == "[RESOLVED] NaNLoss: job gpt, ranks 0-1"
    assert resolved.kind is NotifyKind.SUCCESS
    assert resolved.body.startswith("Resolved: loss is not finite")
    assert "values: loss=2.5" in resolved.body
    assert "resolved after 10m00s" in resolved.body  # fired at t=1000, resolved at now=1600
    assert pager.snapshot().open_alerts == 0


def test_an_alert_firing_and_resolving_in_one_batch_pages_both_in_order(
    pager: Pager, fake: FakeNotifier
) -> None:
    pager.submit([fire(0), resolve(0)], now=1000.0)
    pager.run_due(0.0)
    assert [c.title.split("]")[0] for c in fake.calls] == ["[FIRING critical", "[RESOLVED"]


def test_a_rule_that_says_resolved_false_gets_no_resolved_page(
    pager: Pager, fake: FakeNotifier
) -> None:
    pager.set_policies({"Quiet": NotifyPolicy(resolved=False)})
    pager.submit([fire(0, rule="Quiet"), fire(0)], now=1000.0)
    pager.submit([resolve(0, rule="Quiet"), resolve(0)], now=1500.0)
    pager.submit([fire(0, rule="Quiet", t=1600.0), resolve(0, rule="Quiet", t=1600.0)], 1600.0)
    pager.run_due(0.0)
    titles = sorted(c.title.split(":")[0] for c in fake.calls)
    assert titles == [
        "[FIRING critical] NaNLoss",
        "[FIRING critical] Quiet",
        "[FIRING critical] Quiet",  # fired again: a new alert, paged; its end is not
        "[RESOLVED] NaNLoss",
    ]
    assert pager.snapshot().open_alerts == 0
    assert pager.snapshot().pages_resolved == 1


def test_repeat_every_four_hours_by_default_while_firing(pager: Pager, fake: FakeNotifier) -> None:
    assert DEFAULT_REPEAT == 4 * HOUR
    pager.submit([fire(0, t=0.0)], now=0.0)
    pager.tick(4 * HOUR - 1)
    pager.run_due(0.0)
    assert len(fake.calls) == 1
    pager.tick(4 * HOUR)
    pager.tick(4 * HOUR + 1)
    pager.run_due(0.0)
    assert len(fake.calls) == 2
    assert fake.calls[1].title.startswith("[STILL FIRING critical] NaNLoss")
    assert "(firing 4h00m)" in fake.calls[1].body
    pager.tick(8 * HOUR)
    pager.run_due(0.0)
    assert len(fake.calls) == 3
    assert pager.snapshot().pages_repeat == 2


def test_repeat_interval_per_rule_and_off(pager: Pager, fake: FakeNotifier) -> None:
    pager.set_policies(
        {
            "NaNLoss": NotifyPolicy.from_options({"repeat": "1h"}),
            "Quiet": NotifyPolicy.from_options({"repeat": "never"}),
        }
    )
    pager.submit([fire(0), fire(0, rule="Quiet")], now=0.0)
    pager.tick(HOUR)
    pager.tick(10 * HOUR)
    pager.run_due(0.0)
    titles = [c.title for c in fake.calls]
    assert sum("STILL FIRING" in t and "NaNLoss" in t for t in titles) == 2
    assert not any("STILL FIRING" in t and "Quiet" in t for t in titles)


def test_notify_options_are_checked() -> None:
    assert NotifyPolicy.from_options(None).repeat == DEFAULT_REPEAT
    assert NotifyPolicy.from_options({"repeat": 90}).repeat == 90.0
    assert NotifyPolicy.from_options({"repeat": "30m"}).repeat == 1800.0
    assert NotifyPolicy.from_options({"repeat": 0}).repeat is None
    assert NotifyPolicy.from_options({"resolved": False}).resolved is False
    assert NotifyPolicy.from_options({"repeat": "never"}) == NotifyPolicy(repeat=None)
    with pytest.raises(ValueError, match="unknown notify option"):
        NotifyPolicy.from_options({"repaet": "1h"})
    with pytest.raises(ValueError, match="not a duration"):
        NotifyPolicy.from_options({"repeat": "soon"})


def test_failed_delivery_backs_off_exponentially_then_gives_up(
    pager: Pager, fake: FakeNotifier, clock: Clock, records: list[DeliveryRecord]
) -> None:
    fake.down = True
    pager.submit([fire(0)], now=1000.0)
    attempts = []
    while (due := pager._outbox.scheduler.next_due()) is not None:
        clock.t = due
        pager.run_due(clock.t)
        attempts.append(clock.t)
    # initial 1 s, factor 2, capped at 5 s; six attempts in all
    assert attempts == [0.0, 1.0, 3.0, 7.0, 12.0, 17.0]
    assert [r.outcome for r in records] == [DeliveryOutcome.FAILED] * 5 + [DeliveryOutcome.GAVE_UP]
    assert [r.retry_in for r in records[:5]] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert [r.attempt for r in records] == [1, 2, 3, 4, 5, 6]
    assert records[0].target == "json://hooks.example:8080"  # no path: it may carry a token
    stats = pager.snapshot()
    assert (stats.failed_attempts, stats.given_up, stats.sent, stats.queued) == (5, 1, 0, 0)
    assert stats.by_outcome() == {
        "sent": 0, "failed": 5, "gave_up": 1, "dropped": 0, "abandoned": 0, "dry_run": 0,
    }  # fmt: skip


def test_gives_up_when_the_page_is_older_than_max_age(fake: FakeNotifier, clock: Clock) -> None:
    policy = RetryPolicy(initial=10.0, factor=2.0, max_delay=1000.0, max_attempts=100, max_age=50)
    pager = Pager(fake, ["json://h"], retry=policy, workers=0, monotonic=clock, wall=clock)
    fake.down = True
    pager.submit([fire(0)], now=0.0)
    while (due := pager._outbox.scheduler.next_due()) is not None:
        clock.t = due
        pager.run_due(due)
    assert len(fake.calls) == 3  # at 0, 10, 30; the next (70) would be past 50 s
    assert pager.snapshot().given_up == 1
    pager.close(0)


def test_a_page_gets_through_when_the_endpoint_comes_back(
    pager: Pager, fake: FakeNotifier, clock: Clock, records: list[DeliveryRecord]
) -> None:
    fake.fail_next(2)
    pager.submit([fire(0)], now=1000.0)
    for t in (0.0, 1.0, 3.0):
        clock.t = t
        pager.run_due(t)
    assert [c.ok for c in fake.calls] == [False, False, True]
    assert records[-1].outcome is DeliveryOutcome.SENT and records[-1].attempt == 3


def test_each_url_is_retried_on_its_own(fake: FakeNotifier, clock: Clock) -> None:
    urls = ["json://good", "json://dead"]
    pager = Pager(fake, urls, workers=0, monotonic=clock, wall=clock)
    fake.dead = {"json://dead"}
    pager.submit([fire(0)], now=0.0)
    pager.run_due(0.0)
    clock.t = 1.0
    pager.run_due(1.0)
    assert [c.urls for c in fake.calls] == [("json://good",), ("json://dead",), ("json://dead",)]
    assert pager.snapshot().sent == 1
    pager.close(0)


def test_resolved_waits_behind_a_firing_page_still_being_retried(
    pager: Pager, fake: FakeNotifier, clock: Clock
) -> None:
    fake.fail_next(1)
    pager.submit([fire(0)], now=1000.0)
    pager.run_due(0.0)  # the firing page fails once
    pager.submit([resolve(0)], now=1001.0)
    pager.run_due(0.0)  # the resolved one must not overtake it
    assert len(fake.calls) == 1
    clock.t = 1.0
    pager.run_due(1.0)
    pager.run_due(1.0)
    assert [c.title.split("]")[0] for c in fake.sent] == ["[FIRING critical", "[RESOLVED"]


def test_a_full_queue_drops_and_counts_without_blocking(fake: FakeNotifier, clock: Clock) -> None:
    records: list[DeliveryRecord] = []
    pager = Pager(
        fake, ["json://h"], on_delivery=records.append, capacity=2, workers=0,
        monotonic=clock, wall=clock,
    )  # fmt: skip
    pager.submit([fire(0, job=f"job{i}") for i in range(5)], now=0.0)
    stats = pager.snapshot()
    assert (stats.pages_firing, stats.queued, stats.dropped) == (5, 2, 3)
    assert [r.outcome for r in records] == [DeliveryOutcome.DROPPED] * 3
    assert records[0].detail == "queue full"
    pager.run_due(0.0)
    assert len(fake.sent) == 2
    pager.close(0)


def test_restored_state_prevents_a_second_page(
    pager: Pager, fake: FakeNotifier, clock: Clock
) -> None:
    pager.submit([fire(0), fire(1)], now=1000.0)
    pager.run_due(0.0)
    saved = json.loads(json.dumps(pager.export_state()))  # what the journal would keep
    assert saved[0]["delivered"] is True

    # a restarted daemon: the engine sees the alert firing again on every rank
    again = FakeNotifier()
    restarted = Pager(again, ["json://h"], workers=0, monotonic=clock, wall=clock)
    assert restarted.restore_state(saved) == 1
    restarted.submit([fire(0), fire(1), fire(2)], now=1100.0)
    restarted.tick(1100.0)
    restarted.run_due(0.0)
    assert again.calls == []
    # the repeat timer carried over: due 4 h after the page before the restart
    restarted.tick(1000.0 + DEFAULT_REPEAT)
    restarted.submit([resolve(0), resolve(1), resolve(2)], now=1000.0 + DEFAULT_REPEAT + 1)
    restarted.run_due(0.0)
    assert [c.title for c in again.calls] == [
        "[STILL FIRING critical] NaNLoss: job gpt, ranks 0-2",
        "[RESOLVED] NaNLoss: job gpt, ranks 0-2",
    ]
    restarted.close(0)


def test_an_alert_restored_undelivered_is_paged_again(fake: FakeNotifier, clock: Clock) -> None:
    fake.down = True
    first = Pager(fake, ["json://h"], workers=0, monotonic=clock, wall=clock)
    first.submit([fire(0)], now=1000.0)
    first.run_due(0.0)
    saved = first.export_state()
    assert saved[0]["delivered"] is False
    first.close(0)

    fake.down = False
    second = Pager(fake, ["json://h"], workers=0, monotonic=clock, wall=clock)
    second.restore_state(saved)
    second.tick(1200.0)
    second.run_due(0.0)
    assert [c.title for c in fake.sent] == ["[FIRING critical] NaNLoss: job gpt, rank 0"]
    second.close(0)


def test_reconcile_resolves_restored_alerts_no_longer_firing(
    pager: Pager, fake: FakeNotifier
) -> None:
    pager.submit([fire(0), fire(0, rule="GradExplode")], now=1000.0)
    pager.reconcile([("GradExplode", "gpt")], now=1300.0)
    pager.run_due(0.0)
    assert fake.calls[-1].title == "[RESOLVED] NaNLoss: job gpt, rank 0"
    assert pager.snapshot().open_alerts == 1


def test_malformed_saved_state_is_skipped(pager: Pager) -> None:
    assert pager.restore_state([{"rule": "X"}, {"rule": "Y", "job": "j", "ranks": []}]) == 0


def test_dry_run_logs_and_records_without_delivering(
    fake: FakeNotifier, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    records: list[DeliveryRecord] = []
    pager = Pager(
        fake, ["json://h"], on_delivery=records.append, dry_run=True, workers=0,
        monotonic=clock, wall=clock,
    )  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="sentinel.notify"):
        pager.submit([fire(0)], now=0.0)
        pager.run_due(0.0)
    assert fake.calls == []
    assert [r.outcome for r in records] == [DeliveryOutcome.DRY_RUN]
    assert "[dry-run]" in caplog.text and "NaNLoss" in caplog.text
    assert pager.snapshot().dry_run == 1
    pager.close(0)


def test_a_broken_delivery_callback_does_not_stop_delivery(
    fake: FakeNotifier, clock: Clock
) -> None:
    def broken(record: DeliveryRecord) -> None:
        raise RuntimeError("journal is gone")

    pager = Pager(fake, ["json://h"], on_delivery=broken, workers=0, monotonic=clock, wall=clock)
    pager.submit([fire(0)], now=0.0)
    pager.run_due(0.0)
    assert pager.snapshot().sent == 1
    pager.close(0)


def test_close_abandons_what_was_not_delivered(
    pager: Pager, fake: FakeNotifier, records: list[DeliveryRecord]
) -> None:
    fake.down = True
    pager.submit([fire(0)], now=0.0)
    pager.run_due(0.0)
    assert pager.close(0) == 1
    assert records[-1].outcome is DeliveryOutcome.ABANDONED
    assert pager.snapshot().abandoned == 1
