"""Splitter: cuts the bytes of one file, fed in arbitrary chunks, into Line records.

The tailer's only text logic; no I/O, so it is tested (and property-tested)
on its own. The records it produces do not depend on how the bytes were
chunked — that is the invariant every rule below keeps:

- A record is a segment between terminators, ``\\n`` or ``\\r``: a progress bar
  rewriting its line with ``\\r`` gives one record per update, as soon as the
  next ``\\r`` arrives. Empty records (``\\r\\n`` endings, blank lines) are
  dropped; line numbers still count every ``\\n``.
- A record longer than ``max_line`` bytes is cut at the bound (one record,
  counted in ``cut``) and the rest of it is discarded up to the next
  terminator. The cut happens as soon as more than ``max_line`` bytes of the
  record are held, so memory stays bounded by ``max_line`` plus one chunk
  even for a 1 MiB line whose newline has not been written yet.
- Invalid UTF-8 is replaced (U+FFFD) and the record counted in ``invalid``.
- The bytes after the last terminator wait in ``pending`` until their
  terminator arrives or ``flush`` is called (the file was rotated away).
"""

from __future__ import annotations

from sentinel.sources.line import Line

_new = tuple.__new__  # builds a Line without the NamedTuple's Python-level __new__


class Splitter:
    """State: ``line`` (``\\n`` seen so far), ``pending`` bytes, ``discarding`` a cut record."""

    __slots__ = ("cut", "discarding", "invalid", "line", "max_line", "pending")

    def __init__(
        self, max_line: int = 64 * 1024, *, line: int = 0, discarding: bool = False
    ) -> None:
        if max_line < 4:
            raise ValueError("max_line must be at least 4 bytes (one UTF-8 character)")
        self.max_line = max_line
        self.line = line
        self.discarding = discarding
        self.pending = b""
        self.cut = 0  # records cut at max_line (never reset)
        self.invalid = 0  # records with invalid UTF-8 (never reset)

    def reset(self, *, line: int = 0, discarding: bool = False) -> None:
        """Start a new incarnation of the file (counters are kept)."""
        self.line = line
        self.discarding = discarding
        self.pending = b""

    def feed(self, data: bytes, path: str, out: list[Line]) -> None:
        """Append the records completed by ``data`` to ``out``."""
        if self.discarding:
            nl, cr = data.find(b"\n"), data.find(b"\r")
            end = cr if nl < 0 else (nl if cr < 0 else min(nl, cr))
            if end < 0:
                return
            # The terminator itself is kept: it ends an (empty, dropped) record
            # and, if it is a newline, counts a line.
            self.discarding = False
            data = data[end:]
        elif self.pending:
            data = self.pending + data
            self.pending = b""
        last = max(data.rfind(b"\n"), data.rfind(b"\r"))
        if last >= 0:
            self._complete(data[: last + 1] if last + 1 < len(data) else data, path, out)
            data = data[last + 1 :]
        self._hold(data, path, out)

    def flush(self, path: str, out: list[Line]) -> None:
        """Emit the held partial record as a line of its own (its file is gone)."""
        if self.pending:
            out.append(_new(Line, (path, self.line + 1, self._decode(self.pending))))
            self.line += 1
        self.pending = b""
        self.discarding = False

    # -- internals -----------------------------------------------------------------
    def _hold(self, tail: bytes, path: str, out: list[Line]) -> None:
        if len(tail) > self.max_line:
            # Cut now rather than at the newline: the newline may never come.
            out.append(_new(Line, (path, self.line + 1, self._decode_cut(tail))))
            self.cut += 1
            self.discarding = True
        else:
            self.pending = tail

    def _complete(self, block: bytes, path: str, out: list[Line]) -> None:
        """``block`` ends with a terminator; every record in it is complete."""
        base = self.line
        self.line = base + block.count(b"\n")
        if b"\r" not in block:
            try:
                texts = block.decode().split("\n")
            except UnicodeDecodeError:
                pass
            else:
                texts.pop()  # after the final newline: always empty
                # A char is at most 4 bytes: below max_line // 4 chars no record needs a cut.
                if max(map(len, texts)) <= self.max_line // 4:
                    out += [_new(Line, (path, n, t)) for n, t in enumerate(texts, base + 1) if t]
                    return
        self._slow(block, base, path, out)

    def _slow(self, block: bytes, base: int, path: str, out: list[Line]) -> None:
        """Record by record: progress-bar segments, over-long records, invalid bytes."""
        limit = self.max_line
        for n, physical in enumerate(block.split(b"\n"), base + 1):
            for seg in physical.split(b"\r") if b"\r" in physical else (physical,):
                if not seg:
                    continue
                if len(seg) > limit:
                    self.cut += 1
                    text = self._decode_cut(seg)
                else:
                    text = self._decode(seg)
                out.append(_new(Line, (path, n, text)))

    def _decode(self, raw: bytes) -> str:
        try:
            return raw.decode()
        except UnicodeDecodeError:
            self.invalid += 1
            return raw.decode(errors="replace")

    def _decode_cut(self, raw: bytes) -> str:
        """The first ``max_line`` bytes, less a multi-byte character the cut split."""
        head = raw[: self.max_line]
        try:
            return head.decode()
        except UnicodeDecodeError as e:
            if e.reason == "unexpected end of data":
                return head[: e.start].decode()  # the first error is the cut: the rest is valid
        return self._decode(head)
