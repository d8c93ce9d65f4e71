"""Alert states and the transitions the rules engine hands to the actions."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from sentinel.model.sample import JobKey


class AlertState(enum.Enum):
    """The lifecycle of one (rule, job, rank): INACTIVE -> PENDING -> FIRING -> INACTIVE.

    NODATA is where a rule sits while a metric it reads has never been seen:
    neither true nor false, and shown as such.
    """

    INACTIVE = "inactive"
    NODATA = "nodata"
    PENDING = "pending"
    FIRING = "firing"


@dataclass(frozen=True)
class ActionSpec:
    """One action of a rule, with its options; only the fields of its kind are set.

    - ``notify``: ``repeat`` (seconds between repeats while firing; 0: never;
      None: the daemon's default), ``resolved`` (send a message when it resolves);
    - ``checkpoint``: no options;
    - ``stop``: ``grace`` (seconds after the stop word before SIGTERM; 0: at
      once; None: the daemon's default), ``kill_after`` (seconds after SIGTERM
      before SIGKILL; None: the daemon's default);
    - ``exec``: ``command`` (argv, no shell), ``timeout`` (seconds; None: 60),
      ``on_resolve`` (run it once more when the alert resolves).
    """

    name: str
    repeat: float | None = None
    resolved: bool = True
    grace: float | None = None
    kill_after: float | None = None
    command: tuple[str, ...] = ()
    timeout: float | None = None
    on_resolve: bool = False


@dataclass(frozen=True)
class RuleStatus:
    """Where one (rule, job, rank) stands now: what the exporter and ``status`` show.

    ``value`` is the rule's current value (the left side of its first
    comparison), None when there is no data.
    """

    rule: str
    key: JobKey
    state: AlertState
    active_since: float | None
    value: float | None
    severity: str = ""


@dataclass(frozen=True)
class Transition:
    """One (rule, job, rank) changed state at ``time`` (the sample's time) and ``step``.

    ``resolved`` is a FIRING -> INACTIVE/NODATA transition. ``values`` are the
    metric values the rule read, ``annotations`` the rendered templates.
    """

    rule: str
    key: JobKey
    old: AlertState
    new: AlertState
    time: float
    step: int
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    values: Mapping[str, float] = field(default_factory=dict)
    actions: tuple[str, ...] = ()
    active_since: float | None = None
    # The actions with their options, in rule order (``actions`` are their names).
    action_specs: tuple[ActionSpec, ...] = ()

    @property
    def fired(self) -> bool:
        return self.new is AlertState.FIRING and self.old is not AlertState.FIRING

    @property
    def resolved(self) -> bool:
        return self.old is AlertState.FIRING and self.new is not AlertState.FIRING
