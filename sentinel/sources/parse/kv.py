"""Generic ``key=value`` / ``key: value`` lines, wherever the pairs sit in the line.

The parser of last resort: ``auto`` tries it after every specific format.
What it reads:

* ``key=value`` (any spacing around ``=``) and ``key: value`` (the colon
  must be followed by whitespace, so ``module.py:1511``, ``12:30:00`` and
  ``node03:4012`` are not pairs): ``grad_norm=3.21, scale=65536.0``,
  ``Avg similarity: 0.7234``. A key is one word, or up to six words when it
  starts a field (line start, after ``|``, tab, ``,``, ``;``, ``]``, ``)``,
  `` - ``, ``:`` or two spaces): ``Avg similarity``, ``max mem``.
* ``|``- or tab-separated fields, where a field may also be ``key value``
  and keys may hold spaces and a unit: Megatron's ``iteration 100/ 500000 |
  lm loss: 2.345E+00 | loss scale: 4096.0 | elapsed time per iteration
  (ms): 512.3``, ``step 100 | loss 2.31 | lr 3e-4``.
* values: integers, decimals, scientific, ``nan``/``inf``/``-inf`` in any
  case; a unit glued to the number is dropped (``0.322s`` -> 0.322); ``N/M``
  gives N (``epoch: 3/100``); ``%`` is kept as printed except for fraction
  metrics (see ``aliases``). A value must end its token: ``eta: 0:12:34``,
  ``date: 2024-05-01`` and ``version: 2.1.0`` are not numbers.
* ``current (average)`` as metric loggers print it — ``loss: 2.31 (2.45)``,
  ``loss 2.31 (2.45)`` — gives ``loss`` = 2.31 and ``loss_avg`` = 2.45.
* a tqdm bar's postfix (``45%|███| 45/100 [00:10<00:12, 4.5it/s, loss=2.31]``):
  only the ``k=v`` pairs of the postfix; a bar without one is nothing.

The step is the value of a step-spelled key (``step=``, ``iter:``, Megatron's
``iteration``), else a ``step N`` / ``iter N`` / ``iteration N`` phrase in a
line that has metrics. A line without any metric is ``None``, even with a
step (``iter 5: saving checkpoint``); so are NCCL's chatter, Python's
warnings and exceptions (``NCCL INFO``, ``…Warning: …``, ``…Error: …``).
Two validation summaries get their ``val_`` names here: Megatron's
``validation loss at iteration N | lm loss value: X | lm loss PPL: Y`` and
fairseq's ``… | valid on 'valid' subset | loss X | …``.

Speed: a line without ``|``, tab, ``=``, ``: `` or ``(`` is rejected by
``in`` tests alone (memchr-fast). Pairs are found from their separator: a
search for ``[=:]`` + number, then the key is matched *backwards* (on the
reversed line) from the separator, which costs the key's length instead of
a scan from every position. The separator search starts with a literal
(``=`` or ``:``) when the line holds only one of them, since ``re`` finds a
literal with a tight loop but tests a character class at every position.
``|`` fields are cut with ``str`` methods, keys memoised; regexes only for
fields that need them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sentinel.sources.parse.aliases import MEMO, STEP, canonical, derive, is_fraction
from sentinel.sources.parse.parsed import (
    NO_EVENTS,
    NUMBER,
    Parsed,
    new,
    percent,
    to_float,
    to_step,
)

_UNIT = r"(?:(?P<pct>%)|[A-Za-z]+(?:/[A-Za-z]+)?)?(?:\s*/\s*\d+)?"
_AVG = rf"(?:\s*\((?P<avg>{NUMBER})(?:%|[A-Za-z]+)?\))?"
_VALUE = rf"(?P<v>{NUMBER}){_UNIT}(?![\w:/.\-]|,\d){_AVG}"

# what a number can start with: a lookahead that fails a separator before a word
# at once (sre would otherwise try the whole number pattern after each backtrack).
_NUMBER_START = r"(?=[-+.\d]|(?i:nan|inf))"
# a separator and the value after it; the key is found backwards from m.start().
_SEP_VALUE = re.compile(rf"[=:](?:(?<==)|(?=\s))\s*{_NUMBER_START}{_VALUE}").search
# the same, for a line holding only one of the two separators: sre finds a
# leading literal with a tight loop but tests a class at every position, ~10x slower.
_EQ_VALUE = re.compile(rf"=\s*{_NUMBER_START}{_VALUE}").search
_COLON_VALUE = re.compile(rf":\s+{_NUMBER_START}{_VALUE}").search
# the key before a separator, on the reversed line: words end (read backwards) in a letter.
_RWORD = r"[\w./@-]*[A-Za-z_](?![\w./@-])"
_RKEY = re.compile(
    rf"\s*(?:(?P<multi>(?:{_RWORD}|\){_RWORD}\()(?: (?:{_RWORD}|\){_RWORD}\()){{0,4}} {_RWORD})"
    rf"(?=\s*$|\s*[|\t,;\])\]:]|\s\s|\s-\s)|(?P<one>{_RWORD}))"
).match
# key value (average): a space-separated pair, accepted only with its average.
_SPACED = re.compile(
    rf"(?<![\w./@-])(?P<k>[A-Za-z_][\w./@-]*) +(?P<v>{NUMBER})(?P<pct>%?) *"
    rf"\((?P<avg>{NUMBER})%?\)"
).finditer
# ``\d%? ?\(\s*[-+]?\.?\d``, led by its literal "(" (fast search) with the digit behind it.
_SPACED_HINT = re.compile(r"\((?:(?<=\d\()|(?<=\d%\()|(?<=\d \()|(?<=\d% \())\s*[-+]?\.?\d").search
# one whole field without ": " or "=": "loss 2.31", "iteration 100/ 500000".
_FIELD = re.compile(
    rf"\s*(?P<k>[A-Za-z_][\w./@-]*(?: [A-Za-z_(][\w./@()-]*){{0,5}})\s+{_VALUE}\s*"
).fullmatch
_FIELD_VALUE = re.compile(rf"\s*{_VALUE}\s*").fullmatch
_FIELD_KEY = re.compile(r"\s*[A-Za-z_][\w./@-]*(?: [A-Za-z_(][\w./@()%-]*){0,5}\s*").fullmatch
# literal branches first: the engine only wakes at i/I/s/S, not at every position.
_STEP_PHRASE = re.compile(
    r"(?:iter(?:ation)?|Iter(?:ation)?|ITER(?:ATION)?|step|Step|STEP)\s+(\d+)(?![\d.])"
).finditer
_MEGATRON_VAL = re.compile(r"validation loss at (?:iteration (\d+))?[^|]*\|(.*)").search
_TAB_OR_PIPE = re.compile(r"[|\t]").split
_NUMERIC_START = frozenset("0123456789-+.nNiI")
_NUMERIC_END = frozenset("0123456789nNfFyY")
# characters _FIELD cannot start with (it wants a letter or "_" after any leading space)
_NOT_FIELD_START = frozenset("0123456789[]{}<>()#*'\"-+=.,:;!?/\\~^&$@")
_KEYS: dict[str, tuple[str, bool]] = {}


def parse(line: str) -> Parsed | None:
    """The pairs of a generic metrics line, or ``None`` (see the module docstring)."""
    return scan(line, "|" in line, "=" in line)


def scan(line: str, bar: bool, eq: bool) -> Parsed | None:
    """``parse`` for a caller that has already tested ``"|" in line`` and ``"=" in line``."""
    metrics: dict[str, float] = {}
    step: int | None
    if bar or "\t" in line:
        if "%" in line and "%|" in line:
            return _progress_bar(line)
        if "validation loss at" in line:
            return _megatron_validation(line)
        step = _fields(line, metrics)
        if "| valid on " in line:  # fairseq's validation summary
            metrics = {k if k == "epoch" else canonical("val_" + k): v for k, v in metrics.items()}
    elif eq or ": " in line:
        if "NCCL INFO" in line or "Warning: " in line or "Error: " in line:
            return None
        step = _inline(line, 0, metrics)
        if "(" in line and _SPACED_HINT(line) is not None:
            step = _spaced(line, metrics, step)
    elif "(" in line and _SPACED_HINT(line) is not None:
        step = _spaced(line, metrics, None)
    else:
        return None
    if not metrics:
        return None
    if step is None and ("tep " in line or "ter" in line or ("T" in line and "TE" in line)):
        step = _step_phrase(line)
    return new(Parsed, (step, derive(metrics), NO_EVENTS, None))


def record(pairs: Iterable[tuple[str, str]]) -> Parsed | None:
    """A ``Parsed`` from (raw key, value text) pairs found by another parser (``pydict``).

    A value that ``float`` rejects (a string, ``None``) is skipped.
    """
    metrics: dict[str, float] = {}
    step: int | None = None
    memo = MEMO.get
    for key, text in pairs:
        name = memo(key)
        if name is None:
            name = canonical(key)
        if not name:
            continue
        try:
            value = float(text)
        except ValueError:
            continue
        if name != STEP:
            metrics[name] = value
        elif step is None:
            step = to_step(value)
    if not metrics:
        return None
    return new(Parsed, (step, derive(metrics), NO_EVENTS, None))


def _step_phrase(line: str) -> int | None:
    """The N of the first ``step N`` / ``iter N`` / ``iteration N`` that starts a word."""
    for m in _STEP_PHRASE(line):
        before = line[m.start() - 1] if m.start() else " "
        if not (before.isalnum() or before in "_."):
            return int(m.group(1))
    return None


def _put(
    metrics: dict[str, float],
    key: str,
    v: str,
    step: int | None,
    *,
    pct: str | None = None,
    avg: str | None = None,
) -> int | None:
    """Add one pair; returns the step (a step-spelled key sets it once)."""
    name = canonical(key)
    if not name:
        return step
    if name == STEP:
        return to_step(v) if step is None else step
    if (pct or "%" in key) and is_fraction(name):
        metrics[name] = percent(v)
        if avg:
            metrics[name + "_avg"] = percent(avg)
    else:
        metrics[name] = float(v)
        if avg:
            metrics[name + "_avg"] = float(avg)
    return step


def _inline(line: str, start: int, metrics: dict[str, float]) -> int | None:
    step: int | None = None
    search = (_SEP_VALUE if ":" in line else _EQ_VALUE) if "=" in line else _COLON_VALUE
    m = search(line, start)
    if m is None:
        return None
    n = len(line)
    rev = line[::-1]
    while m is not None:
        k = _RKEY(rev, n - m.start())
        if k is not None:
            key = (k.group("multi") or k.group("one"))[::-1]
            step = _put(metrics, key, m.group("v"), step, pct=m.group("pct"), avg=m.group("avg"))
        m = search(line, m.end())
    return step


def _spaced(line: str, metrics: dict[str, float], step: int | None) -> int | None:
    for m in _SPACED(line):
        key = m.group("k")
        if canonical(key) not in metrics:
            step = _put(metrics, key, m.group("v"), step, pct=m.group("pct"), avg=m.group("avg"))
    return step


def _fields(line: str, metrics: dict[str, float]) -> int | None:
    step: int | None = None
    keys = _KEYS.get
    for field in line.split("|") if "\t" not in line else _TAB_OR_PIPE(line):
        key, sep, value = field.partition(": ")
        if not sep:
            key, sep, value = field.partition("=")
        if sep:
            hit = keys(key)
            name, percent_key = hit if hit is not None else _field_name(key)
            if name:
                v = value.strip()
                if v and v[0] in _NUMERIC_START and v[-1] in _NUMERIC_END:
                    try:
                        number = float(v)
                    except ValueError:
                        pass
                    else:
                        if name != STEP:
                            metrics[name] = percent(v) if percent_key else number
                        elif step is None:
                            step = to_step(number)
                        continue
                m = _FIELD_VALUE(value)
                if m is not None:
                    step = _put(
                        metrics, key, m.group("v"), step, pct=m.group("pct"), avg=m.group("avg")
                    )
                continue
            found = _inline(field, 0, metrics)
            step = found if step is None else step
            continue
        if field[:1] in _NOT_FIELD_START:  # a log prefix "[2024-…] [INFO] …": no regex
            continue
        m = _FIELD(field)
        if m is not None:
            step = _put(
                metrics, m.group("k"), m.group("v"), step, pct=m.group("pct"), avg=m.group("avg")
            )
    return step


def _field_name(raw: str) -> tuple[str, bool]:
    """(canonical name, is a percentage) for the text before a field's ``:``/``=``.

    The name is ``""`` if the text is no key. Memoised: a log repeats its few
    keys millions of times. A fraction metric whose key says ``%``
    (``acc (%)``) is a percentage.
    """
    hit = _KEYS.get(raw)
    if hit is None:
        if _FIELD_KEY(raw) is None:
            hit = ("", False)
        else:
            name = canonical(raw)
            hit = (name, "%" in raw and is_fraction(name))
        if len(_KEYS) >= 4096:
            _KEYS.clear()
        _KEYS[raw] = hit
    return hit


def _megatron_validation(line: str) -> Parsed | None:
    """``validation loss at iteration N | lm loss value: X | lm loss PPL: Y |`` (Megatron).

    -> step N, ``val_loss`` X, ``val_perplexity`` Y (other loss names alike:
    ``<name> value`` -> ``val_<name>``, ``<name> PPL`` -> ``val_<name>_perplexity``).
    """
    m = _MEGATRON_VAL(line)
    if m is None:
        return None
    metrics: dict[str, float] = {}
    for field in m.group(2).split("|"):
        key, sep, text = field.partition(": ")
        key = key.strip()
        value = to_float(text) if sep else None
        if value is None:
            continue
        if key.endswith(" value"):
            key = key[: -len(" value")]
        elif key.endswith(" PPL"):
            key = "perplexity" if key == "lm loss PPL" else key[: -len(" PPL")] + " perplexity"
        name = canonical("val " + key)
        if name:
            metrics[name] = value
    if not metrics:
        return None
    step = int(m.group(1)) if m.group(1) else None
    return new(Parsed, (step, metrics, NO_EVENTS, None))


def _progress_bar(line: str) -> Parsed | None:
    """A tqdm bar: only the ``k=v`` pairs of its postfix (after the last ``[``)."""
    if "=" not in line:
        return None
    postfix = line[line.rfind("[") + 1 :]
    metrics: dict[str, float] = {}
    step = _inline(postfix, 0, metrics)
    if not metrics:
        return None
    return new(Parsed, (step, derive(metrics), NO_EVENTS, None))
