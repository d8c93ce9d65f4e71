"""The parsers as they were before the fast paths: the reference ``test_equivalence`` holds them to.

A verbatim copy (docstrings dropped, clashing names prefixed) of ``auto``,
``kv``, ``pydict``, ``nanogpt``, ``lossscale`` and ``log_records`` /
``read_records`` from before the parsers were made faster. The fast code must
give exactly what this gives for every line; what the speed-up did not touch
(``epoch``, ``jsonl``, ``canonical``, the CSV and trainer_state readers) is
imported. A deliberate change of behaviour changes both, in the same commit.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from sentinel.sources.parse import epoch, jsonl, tables
from sentinel.sources.parse.aliases import STEP, canonical, derive, is_fraction
from sentinel.sources.parse.parsed import (
    NO_EVENTS,
    NUMBER,
    OVERFLOW,
    Parsed,
    Parser,
    new,
    percent,
    to_float,
    to_step,
)
from sentinel.sources.parse.tables import Record

# --- nanogpt.py ---------------------------------------------------------------


_NANOGPT_ITER = re.compile(r"iter (\d+): loss ([^,]+), time ([^m,]+)ms, mfu ([^%]+)%").match
_NANOGPT_EVAL = re.compile(r"step (\d+): train loss ([^,]+), val loss (\S+)").match


def nanogpt_parse(line: str) -> Parsed | None:
    if line.startswith("iter "):
        return parse_iter(line)
    if line.startswith("step "):
        return parse_eval(line)
    return None


def parse_iter(line: str) -> Parsed | None:
    m = _NANOGPT_ITER(line)
    if m is None:
        return None
    step, loss, ms, mfu = m.groups()
    try:
        metrics = {"loss": float(loss), "iter_time_ms": float(ms), "mfu": float(mfu)}
    except ValueError:
        return None
    return new(Parsed, (int(step), metrics, NO_EVENTS, None))


def parse_eval(line: str) -> Parsed | None:
    m = _NANOGPT_EVAL(line)
    if m is None:
        return None
    step, train, val = m.groups()
    try:
        loss = float(train)
        metrics = {"train_loss": loss, "val_loss": float(val), "loss": loss}
    except ValueError:
        return None
    return new(Parsed, (int(step), metrics, NO_EVENTS, None))


# --- lossscale.py -------------------------------------------------------------


# DeepSpeed names the rank right before "Skipping step"; one search finds both.
_RANK_ATTEMPTED = re.compile(
    r"Rank (\d+) Skipping step\.? Attempted loss scale: ([^\s,]+),? reducing to ([^\s,]+)"
).search
_ATTEMPTED = re.compile(r"Attempted loss scale: ([^\s,]+),? reducing to ([^\s,]+)").search
_LOG_RANK = re.compile(r"\[Rank (\d+)\]").search
_APEX = re.compile(
    r"Gradient overflow\.\s+Skipping step, loss scaler \d+ reducing loss scale to (\S+)"
).search
_FAIRSEQ = re.compile(
    r"overflow detected, (?:ignoring gradient, )?setting (?:loss )?scale to:? (\S+)"
).search
_REDUCING = re.compile(r"Reducing dynamic loss scale from \S+ to (\S+)").search
_RANK_STEP = re.compile(r"Rank (\d+)\] step=(\d+), skipped=(\d+), lr=\[\s*([^\],\s]+)").search
_DS_STEP = re.compile(r"()step=(\d+), skipped=(\d+), lr=\[\s*([^\],\s]+)").search


def loss_scale_parse(line: str) -> Parsed | None:
    if "skipped=" in line:
        return parse_deepspeed_step(line)
    if "scale" in line:
        return parse_overflow(line)
    return None


def parse_overflow(line: str) -> Parsed | None:
    rank: str | None = None
    if "Attempted loss scale" in line:
        m = _RANK_ATTEMPTED(line)
        if m is not None:
            rank, _attempted, text = m.groups()
        else:
            m = _ATTEMPTED(line)
            if m is None:
                return None
            text = m.group(2)
            r = _LOG_RANK(line, 0, m.start())  # DeepSpeed's log_dist prefix
            rank = r.group(1) if r is not None else None
    elif "reducing loss scale to" in line:
        m = _APEX(line)
        if m is None:
            return None
        text = m.group(1)
    elif "overflow detected" in line:
        m = _FAIRSEQ(line)
        if m is None:
            return None
        text = m.group(1)
    elif "Reducing dynamic loss scale" in line:
        m = _REDUCING(line)
        value = to_float(m.group(1)) if m is not None else None
        if value is None:
            return None
        return new(Parsed, (None, {"loss_scale": value}, NO_EVENTS, None))
    else:
        return None
    value = to_float(text)
    if value is None:
        return None
    return new(Parsed, (None, {"loss_scale": value}, OVERFLOW, int(rank) if rank else None))


def parse_deepspeed_step(line: str) -> Parsed | None:
    m = _RANK_STEP(line) or _DS_STEP(line)
    if m is None:
        return None
    rank, step, skipped, lr = m.groups()
    try:
        metrics = {"lr": float(lr), "skipped_steps": float(skipped)}
    except ValueError:
        return None
    return new(Parsed, (int(step), metrics, NO_EVENTS, int(rank) if rank else None))


# --- kv.py --------------------------------------------------------------------


_UNIT = r"(?:(?P<pct>%)|[A-Za-z]+(?:/[A-Za-z]+)?)?(?:\s*/\s*\d+)?"
_AVG = rf"(?:\s*\((?P<avg>{NUMBER})(?:%|[A-Za-z]+)?\))?"
_VALUE = rf"(?P<v>{NUMBER}){_UNIT}(?![\w:/.\-]|,\d){_AVG}"
# a separator and the value after it; the key is found backwards from m.start().
_SEP_VALUE = re.compile(rf"[=:](?:(?<==)|(?=\s))\s*{_VALUE}").search
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
_SPACED_HINT = re.compile(r"\d%? ?\(\s*[-+]?\.?\d").search
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
_KEYS: dict[str, tuple[str, bool]] = {}


def kv_parse(line: str) -> Parsed | None:
    metrics: dict[str, float] = {}
    step: int | None
    if "|" in line or "\t" in line:
        if "%|" in line:
            return _progress_bar(line)
        if "validation loss at" in line:
            return _megatron_validation(line)
        step = _fields(line, metrics)
        if "| valid on " in line:  # fairseq's validation summary
            metrics = {k if k == "epoch" else canonical("val_" + k): v for k, v in metrics.items()}
    elif "=" in line or ": " in line:
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
    if step is None and ("tep " in line or "ter" in line or "TE" in line):
        step = _step_phrase(line)
    return new(Parsed, (step, derive(metrics), NO_EVENTS, None))


def record(pairs: Iterable[tuple[str, str]]) -> Parsed | None:
    metrics: dict[str, float] = {}
    step: int | None = None
    for key, text in pairs:
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
    n = len(line)
    rev = ""
    m = _SEP_VALUE(line, start)
    while m is not None:
        if not rev:
            rev = line[::-1]
        k = _RKEY(rev, n - m.start())
        if k is not None:
            key = (k.group("multi") or k.group("one"))[::-1]
            step = _put(metrics, key, m.group("v"), step, pct=m.group("pct"), avg=m.group("avg"))
        m = _SEP_VALUE(line, m.end())
    return step


def _spaced(line: str, metrics: dict[str, float], step: int | None) -> int | None:
    for m in _SPACED(line):
        key = m.group("k")
        if canonical(key) not in metrics:
            step = _put(metrics, key, m.group("v"), step, pct=m.group("pct"), avg=m.group("avg"))
    return step


def _fields(line: str, metrics: dict[str, float]) -> int | None:
    step: int | None = None
    for field in line.split("|") if "\t" not in line else _TAB_OR_PIPE(line):
        key, sep, value = field.partition(": ")
        if not sep:
            key, sep, value = field.partition("=")
        if sep:
            name, percent_key = _field_name(key)
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
        m = _FIELD(field)
        if m is not None:
            step = _put(
                metrics, m.group("k"), m.group("v"), step, pct=m.group("pct"), avg=m.group("avg")
            )
    return step


def _field_name(raw: str) -> tuple[str, bool]:
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
    if "=" not in line:
        return None
    postfix = line[line.rfind("[") + 1 :]
    metrics: dict[str, float] = {}
    step = _inline(postfix, 0, metrics)
    if not metrics:
        return None
    return new(Parsed, (step, derive(metrics), NO_EVENTS, None))


# --- pydict.py ----------------------------------------------------------------


_TRAIN = re.compile(
    r"\{'loss': ([^,]+), 'grad_norm': ([^,]+), 'learning_rate': ([^,]+), 'epoch': ([^,}]+)\}$"
).match
# a value must be closed by "," or "}" (or tensor's ","): a line cut mid-number gives nothing.
_PAIRS = re.compile(r"['\"]([^'\"]*)['\"]: (?:tensor\()?([^,{}\[\]()'\"]+)(?=[,}])").findall


def pydict_parse(line: str) -> Parsed | None:
    m = _TRAIN(line)
    if m is not None:
        loss, grad_norm, lr, epoch = m.groups()
        try:
            metrics = {
                "loss": float(loss),
                "grad_norm": float(grad_norm),
                "lr": float(lr),
                "epoch": float(epoch),
            }
        except ValueError:
            pass
        else:
            return new(Parsed, (None, metrics, NO_EVENTS, None))
    start = line.find("{")
    if start < 0:
        return None
    pairs = _PAIRS(line, start)
    return record(pairs) if pairs else None


# --- auto.py ------------------------------------------------------------------

_parse_iter = parse_iter
_parse_eval = parse_eval
_parse_epoch = epoch.parse
_parse_overflow = parse_overflow
_parse_ds_step = parse_deepspeed_step
_parse_pydict = pydict_parse
_parse_json = jsonl.parse
_parse_kv = kv_parse
_EPOCH_STARTS = ("Epoch ", "Train: ", "Val: ")


def auto(line: str) -> Parsed | None:
    if not line:
        return None
    c = line[0]
    if c == "{":
        p = (
            _parse_pydict(line)
            if line.startswith("{'")
            else _parse_json(line) or _parse_pydict(line)
        )
        if p is not None:
            return p
    elif c == "i":
        p = _parse_iter(line)  # anchored: fails at once on other "i…" lines
        if p is not None:
            return p
    elif c == "s":
        p = _parse_eval(line)
        if p is not None:
            return p
    elif c in "ETV" and line.startswith(_EPOCH_STARTS):
        p = _parse_epoch(line)
        if p is not None:
            return p
    if "skipped=" in line:
        p = _parse_ds_step(line)
        if p is not None:
            return p
    elif "scale" in line:
        p = _parse_overflow(line)
        if p is not None:
            return p
    if c != "{":
        brace = line.find("{")
        if brace > 0:
            p = _embedded(line, brace)
            if p is not None:
                return p
    if "|" in line and ("Train: " in line or "Val: " in line):
        p = _parse_epoch(line)
        if p is not None:
            return p
    return _parse_kv(line)


def _embedded(line: str, brace: int) -> Parsed | None:
    if line.startswith('{"', brace):
        return _parse_json(line)
    return _parse_pydict(line) if line.startswith("{'", brace) else None


def _embedded_parser(line: str) -> Parsed | None:
    return _embedded(line, line.find("{"))


def explain(line: str) -> tuple[str, Parsed] | None:
    if not line:
        return None
    c = line[0]
    steps: list[tuple[str, Parser]] = []
    if c == "{":
        if line.startswith("{'"):
            steps.append(("hf_dict", _parse_pydict))
        else:
            steps += [("json", _parse_json), ("hf_dict", _parse_pydict)]
    elif c == "i":
        steps.append(("nanogpt_iter", _parse_iter))
    elif c == "s":
        steps.append(("nanogpt_eval", _parse_eval))
    elif c in "ETV" and line.startswith(_EPOCH_STARTS):
        steps.append(("epoch", _parse_epoch))
    if "skipped=" in line:
        steps.append(("deepspeed_step", _parse_ds_step))
    elif "scale" in line:
        steps.append(("loss_scale", _parse_overflow))
    brace = line.find("{")
    if c != "{" and brace > 0:
        family = "json" if line.startswith('{"', brace) else "hf_dict"
        steps.append((family, _embedded_parser))
    if "|" in line and ("Train: " in line or "Val: " in line):
        steps.append(("epoch", _parse_epoch))
    steps.append(("kv", _parse_kv))
    for family, parser in steps:
        p = parser(line)
        if p is not None:
            return family, p
    return None


PARSERS: Mapping[str, Parser] = {
    "auto": auto,
    "kv": kv_parse,
    "hf_dict": pydict_parse,
    "json": jsonl.parse,
    "nanogpt": nanogpt_parse,
    "loss_scale": loss_scale_parse,
    "epoch": epoch.parse,
}


# --- tables.py (the log half of read_records) -------------------------------


def log_records(lines: Iterable[str], parser: Parser | None = None) -> Iterator[Record]:
    parse = auto if parser is None else parser
    for number, line in enumerate(lines, 1):
        parsed = parse(line.rstrip("\r\n"))
        if parsed is not None:
            yield number, parsed


def read_records(path: str | Path, parser: Parser | None = None) -> Iterator[Record]:
    path = Path(path)
    if path.suffix.lower() == ".csv":
        yield from tables.csv_records(path.read_text(encoding="utf-8", errors="replace"))
        return
    if path.suffix.lower() == ".json":
        text = path.read_text(encoding="utf-8", errors="replace")
        if text.lstrip().startswith("{") and '"log_history"' in text:
            yield from tables.trainer_state_records(text)
            return
        yield from log_records(text.splitlines(), parser)
        return
    with path.open(encoding="utf-8", errors="replace", newline="") as f:
        yield from log_records(f, parser)
