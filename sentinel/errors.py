"""The exception tree. Every error sentinel raises on purpose is one of these.

    SentinelError
    ├── SegmentError                a segment cannot be created, opened or trusted
    │   └── SegmentFormatError      unknown magic or layout version, truncated file
    ├── RuleFileError               (rules.problems) a rule, test or config file, with
    │                               every problem at file:line:column
    ├── JournalError                (journal.records) the journal cannot be opened or written
    ├── StartError                  the daemon cannot get what it needs to run (the
    │                               exporter's address is taken)
    └── StopRequested               raised into training by ``Publisher(on_stop="raise")``

User mistakes at the hook (a non-numeric value, a bad metric name) are the
built-in ``TypeError`` / ``ValueError``, so training code handles them the
usual way.
"""

from __future__ import annotations


class SentinelError(Exception):
    """Base of every error raised by sentinel on purpose."""


class SegmentError(SentinelError):
    """A segment cannot be created, opened or trusted."""


class SegmentFormatError(SegmentError):
    """The file is not a segment this version can read; the message says what was found."""


class StartError(SentinelError):
    """``sentinel run`` cannot start: the message says what it could not get, and why."""


class StopRequested(SentinelError):  # noqa: N818 - the public name users catch
    """The daemon (or an operator) asked this training run to stop.

    Raised from ``Publisher.publish`` when the publisher was created with
    ``on_stop="raise"``. ``code`` and ``reason`` carry the request.
    """

    def __init__(self, code: int, reason: str, step: int | None = None) -> None:
        self.code = code
        self.reason = reason
        self.step = step
        where = f" at step {step}" if step is not None else ""
        super().__init__(f"stop requested{where}: {reason or 'no reason given'} (code {code})")


class PublisherWarning(RuntimeWarning):
    """The hook hit a problem it will not raise into training; publishing degrades."""
