"""Log parsers: one line of a training log -> ``Parsed(step, metrics, events, rank)`` or ``None``.

A parser is a plain function of one line (no trailing newline). ``auto``
tries every built-in format in a fixed order, cheap tests first, and is the
default of a log source; ``PARSERS`` names each built-in for a source's
config; ``compile_parser`` / ``load_parsers`` build user regex parsers;
``chain`` puts user parsers before ``auto``. Every metric name goes through
``canonical`` (the alias table in ``aliases``), so the built-in rule packs
work on logs nobody wrote for sentinel. ``read_records`` reads a finished
file (log, Lightning ``metrics.csv``, HF ``trainer_state.json``) as
``(line_number, Parsed)`` for replay.

Modules, one family each: ``kv`` (``key=value`` / ``key: value`` / ``|``
fields), ``pydict`` (HF Trainer dicts), ``jsonl`` (JSON lines),
``nanogpt``, ``lossscale`` (AMP overflow lines, DeepSpeed's step line),
``epoch`` (the seed-004 epoch line), ``tables`` (whole files), ``user``,
``aliases``, ``auto``. docs/log-formats.md describes every format and the
decisions (percentages, averages, ``train_loss`` vs ``loss``, noise lines).

Parsers never raise on input: any line, however malformed, is ``None`` or
a ``Parsed``. They hold no state, read no clock and do no I/O (``tables``
reads the file it is given).
"""

from __future__ import annotations

from sentinel.sources.parse.aliases import ALIASES, STEP, canonical
from sentinel.sources.parse.auto import FAMILIES, PARSERS, auto, chain, explain
from sentinel.sources.parse.parsed import NO_EVENTS, OVERFLOW, Parsed, Parser
from sentinel.sources.parse.tables import (
    csv_records,
    log_records,
    read_records,
    trainer_state_records,
)
from sentinel.sources.parse.user import (
    UserParser,
    compile_parser,
    load_parsers,
    loads_parsers,
    parsers_from_node,
)

__all__ = [
    "ALIASES",
    "FAMILIES",
    "NO_EVENTS",
    "OVERFLOW",
    "PARSERS",
    "STEP",
    "Parsed",
    "Parser",
    "UserParser",
    "auto",
    "canonical",
    "chain",
    "compile_parser",
    "csv_records",
    "explain",
    "load_parsers",
    "loads_parsers",
    "log_records",
    "parsers_from_node",
    "read_records",
    "trainer_state_records",
]
