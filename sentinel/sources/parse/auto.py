"""``auto``: the default parser — every built-in format, tried in a fixed order, cheap tests first.

Order (the first family that returns a ``Parsed`` wins):

1. empty line -> ``None``.
2. by the first character, exact formats anchored at the line start:
   ``{``  -> HF-Trainer Python dict (``{'``), else JSON, else Python dict;
   ``iter `` -> nanoGPT iteration line; ``step `` -> nanoGPT eval line;
   ``Epoch `` / ``Train: `` / ``Val: `` -> the seed-004 epoch line.
   A line that fails its anchored format goes on down the list.
3. by substring: ``skipped=`` -> DeepSpeed's ``step=…, skipped=…, lr=[…]``
   line; else `` scale`` -> overflow / loss-scale lines (every one of their
   patterns holds `` scale``, so that is the same as testing ``scale``).
4. a ``{`` later in the line (a logging prefix before a dict or JSON) ->
   HF dict / JSON from there.
5. ``|`` with ``Train: `` / ``Val: `` -> the epoch line behind a prefix.
6. the generic ``key=value`` / ``key: value`` / ``|``-field parser (``kv``),
   which itself rejects, without a regex, lines that have neither ``=``,
   ``: ``, ``|``, tab nor ``(``, tqdm bars without a postfix, NCCL INFO and
   Python warnings.

So a noise line costs a handful of ``in`` tests (tens of ns each; one
character is a ``memchr``, so those go first) plus, if it holds
``: ``/``=``/``(``, one regex scan that finds nothing.

``explain`` follows the same order through the family functions and also
names the family that matched (for debugging a config, the benchmark's
per-format counts and tests); ``auto`` inlines the two commonest formats.
``tests/sources/parse`` checks that they agree (and the golden logs what
both give). Keep them in step when changing the order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sentinel.sources.parse import epoch, jsonl, kv, lossscale, nanogpt, pydict
from sentinel.sources.parse.parsed import NO_EVENTS, Parsed, Parser, new

_parse_iter = nanogpt.parse_iter
_parse_eval = nanogpt.parse_eval
_parse_epoch = epoch.parse
_parse_overflow = lossscale.parse_overflow
_parse_ds_step = lossscale.parse_deepspeed_step
_parse_pydict = pydict.parse
_parse_json = jsonl.parse
_parse_kv = kv.parse
_scan_kv = kv.scan
_EPOCH_STARTS = ("Epoch ", "Train: ", "Val: ")
_ITER = nanogpt.ITER
_TRAIN = pydict.TRAIN
_pairs = pydict.pairs


def auto(line: str) -> Parsed | None:
    """Parse ``line`` with the first built-in format that accepts it (order: module docstring).

    The two commonest metric lines, nanoGPT's iteration line and the
    Trainer's training dict, are parsed inline with the same regex and
    conversions as their family's function, which saves a call per line.
    """
    if not line:
        return None
    c = line[0]
    if c == "i":
        m = _ITER(line)
        if m is not None:
            step, loss, ms, mfu = m.groups()
            try:
                metrics = {"loss": float(loss), "iter_time_ms": float(ms), "mfu": float(mfu)}
            except ValueError:
                pass
            else:
                return new(Parsed, (int(step), metrics, NO_EVENTS, None))
    elif c == "{":
        if line[1:2] == "'":
            m = _TRAIN(line)
            if m is not None:
                loss, grad_norm, lr, ep = m.groups()
                try:
                    metrics = {
                        "loss": float(loss),
                        "grad_norm": float(grad_norm),
                        "lr": float(lr),
                        "epoch": float(ep),
                    }
                except ValueError:
                    pass
                else:
                    return new(Parsed, (None, metrics, NO_EVENTS, None))
            p = _pairs(line, 0)
        else:
            p = _parse_json(line) or _parse_pydict(line)
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
    # one-character tests (memchr) before substrings (a scan of the line each):
    # "skipped=" needs "=", and every loss-scale pattern " scale".
    eq = "=" in line
    if eq and "skipped=" in line:
        p = _parse_ds_step(line)
        if p is not None:
            return p
    elif " scale" in line:
        p = _parse_overflow(line)
        if p is not None:
            return p
    if c != "{" and "{" in line:
        p = _embedded(line, line.find("{"))
        if p is not None:
            return p
    bar = "|" in line
    if bar and (("T" in line and "Train: " in line) or ("V" in line and "Val: " in line)):
        p = _parse_epoch(line)
        if p is not None:
            return p
    return _scan_kv(line, bar, eq)


def _embedded(line: str, brace: int) -> Parsed | None:
    if line.startswith('{"', brace):
        return _parse_json(line)
    return _parse_pydict(line) if line.startswith("{'", brace) else None


def _embedded_parser(line: str) -> Parsed | None:
    return _embedded(line, line.find("{"))


def explain(line: str) -> tuple[str, Parsed] | None:
    """``auto``'s answer with the name of the family that produced it (see ``FAMILIES``)."""
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


FAMILIES = (
    "json",
    "hf_dict",
    "nanogpt_iter",
    "nanogpt_eval",
    "epoch",
    "loss_scale",
    "deepspeed_step",
    "kv",
)
"""The family names ``explain`` reports."""

PARSERS: Mapping[str, Parser] = {
    "auto": auto,
    "kv": kv.parse,
    "hf_dict": pydict.parse,
    "json": jsonl.parse,
    "nanogpt": nanogpt.parse,
    "loss_scale": lossscale.parse,
    "epoch": epoch.parse,
}
"""The built-in parsers by the name a source's config uses (``parser: json``)."""


def chain(parsers: Sequence[Parser]) -> Parser:
    """A parser trying ``parsers`` in order: the first ``Parsed`` wins (user parsers, then auto)."""
    if len(parsers) == 1:
        return parsers[0]
    ordered = tuple(parsers)

    def chained(line: str) -> Parsed | None:
        for parser in ordered:
            p = parser(line)
            if p is not None:
                return p
        return None

    return chained
