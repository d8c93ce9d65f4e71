"""Group a batch of transitions per (rule, job, new state): N ranks, one page.

When a collapse hits every rank of a job, each rank's (rule, key) machine
fires on its own; the notifier should send one page that lists the ranks.
This helper only groups; deciding what to send is the notifier's job.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sentinel.model import AlertState, Transition


@dataclass(frozen=True)
class AlertGroup:
    """Transitions of one rule, one job, into one state, in the order they happened."""

    rule: str
    job: str
    state: AlertState
    transitions: tuple[Transition, ...]

    @property
    def ranks(self) -> tuple[int, ...]:
        return tuple(sorted({t.key.rank for t in self.transitions}))

    @property
    def ranks_text(self) -> str:
        """The ranks as "0, 1, 3": what ``{{ ranks }}`` shows in a grouped page."""
        return ", ".join(str(r) for r in self.ranks)

    @property
    def first(self) -> Transition:
        return self.transitions[0]


def group_transitions(transitions: Iterable[Transition]) -> list[AlertGroup]:
    """Groups in order of their first transition; firing and resolving never share a group."""
    groups: dict[tuple[str, str, AlertState], list[Transition]] = {}
    for t in transitions:
        groups.setdefault((t.rule, t.key.job, t.new), []).append(t)
    return [AlertGroup(rule, job, state, tuple(ts)) for (rule, job, state), ts in groups.items()]
