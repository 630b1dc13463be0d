"""Delimited text as a stream: encoding, delimiter, lines, records, column types.

Everything here is synchronous and works on an iterator of byte chunks, so the
same code reads a 1 MiB sample for the preview and a 100 GiB file for the
import, holding at most one chunk and one line at a time.
"""

from __future__ import annotations

import codecs
import csv
import itertools
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

SAMPLE_BYTES = 1024 * 1024
SAMPLE_ROWS = 1000
PREVIEW_ROWS = 10
MAX_LINE_CHARS = 8 * 1024 * 1024
DECODE_PIECE = 64 * 1024
MAX_COLUMN_NAME = 256

DELIMITERS = {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe"}
CSV_TYPES = {
    "text/csv",
    "application/csv",
    "text/x-csv",
    "application/x-csv",
    "text/comma-separated-values",
}
TSV_TYPES = {"text/tab-separated-values", "text/tsv"}
TEXT_TYPES = {"text/plain", "application/octet-stream", ""}
CSV_EXTENSIONS = {".csv"}
TSV_EXTENSIONS = {".tsv", ".tab"}
TEXT_EXTENSIONS = {".txt", ".dat", ""}

INTEGER = "INTEGER"
REAL = "REAL"
TEXT = "TEXT"
INTEGER_RE = re.compile(r"[+-]?(?:0|[1-9][0-9]*)")
# No leading zeros in the integer part, so "007" and "01234" stay TEXT.
REAL_RE = re.compile(
    r"[+-]?(?:(?:0|[1-9][0-9]*)(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
)
INT64_MAX = 2**63 - 1
LINE_END_RE = re.compile(r"(\r\n|\n|\r)")


class CSVFormatError(Exception):
    """The input is not CSV we can read; ``line`` is 1-based where known."""

    def __init__(self, message: str, line: int | None = None, unclosed=False):
        super().__init__(message)
        self.message = message
        self.line = line
        self.unclosed = unclosed

    def __str__(self) -> str:
        return f"Line {self.line}: {self.message}" if self.line else self.message


@dataclass
class Column:
    name: str
    type: str


@dataclass
class Analysis:
    """What the preview shows and the import uses."""

    encoding: str
    delimiter: str
    columns: list[Column]
    sample_rows: list[list[str]] = field(default_factory=list)
    rows_sampled: int = 0

    @property
    def delimiter_name(self) -> str:
        return DELIMITERS.get(self.delimiter, repr(self.delimiter))


def file_kind(filename: str, content_type: str | None) -> str | None:
    """ "csv", "tsv", "text" (maybe delimited: sniff it) or None (not text)."""
    extension = os.path.splitext(filename or "")[1].lower()
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type in TSV_TYPES or extension in TSV_EXTENSIONS:
        return "tsv"
    if media_type in CSV_TYPES or extension in CSV_EXTENSIONS:
        return "csv"
    if media_type in TEXT_TYPES and extension in TEXT_EXTENSIONS:
        return "text"
    return None


def detect_encoding(sample: bytes) -> str:
    """UTF-8 (BOM or not), UTF-16 with a BOM, else Windows-1252 / Latin-1."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            # Not final: a multi-byte character cut at the sample's end is fine.
            codecs.getincrementaldecoder(encoding)().decode(sample, final=False)
            return encoding
        except UnicodeDecodeError:
            continue
    return "latin-1"


def looks_like_text(sample: bytes) -> bool:
    if not sample:
        return False
    encoding = detect_encoding(sample)
    if encoding != "utf-16" and b"\x00" in sample:
        return False
    return encoding != "latin-1"


def split_lines(buffer: str, final: bool) -> tuple[list[str], str]:
    """Complete lines (endings kept) and the unfinished rest.

    Only CR, LF and CRLF end lines: ``str.splitlines`` would also split on
    characters such as U+2028 that can sit inside a CSV field.
    """
    held = ""
    if not final and buffer.endswith("\r"):
        # Could be the first half of a CRLF split across two chunks.
        buffer, held = buffer[:-1], "\r"
    if "\r" in buffer and buffer.count("\r") != buffer.count("\r\n"):
        parts = LINE_END_RE.split(buffer)
        lines = [parts[i] + parts[i + 1] for i in range(0, len(parts) - 1, 2)]
        rest = parts[-1]
    else:
        parts = buffer.split("\n")
        lines = [part + "\n" for part in parts[:-1]]
        rest = parts[-1]
    return lines, rest + held


class LineReader:
    """Byte chunks in, text lines out, decoded incrementally.

    ``bytes_read`` and ``chars_out`` say how far it got. With ``final=False``
    an unfinished last line is dropped (a sample cut mid-line).
    """

    def __init__(self, chunks: Iterable[bytes], encoding: str, final: bool = True):
        self.chunks = chunks
        self.encoding = encoding
        self.final = final
        self.bytes_read = 0
        self.chars_out = 0
        self.lines_out = 0

    def _decode_error(self, ex: UnicodeDecodeError, chunk: bytes) -> CSVFormatError:
        line = self.lines_out + 1
        if self.encoding.startswith("utf-8"):
            line += chunk[: ex.start].count(b"\n")
        return CSVFormatError(
            f"the file is not valid {self.encoding.removesuffix('-sig').upper()} "
            f"(byte {self.bytes_read - len(chunk) + ex.start + 1})",
            line,
        )

    def _pieces(self) -> Iterator[memoryview]:
        # Decoding and splitting a 64 KiB piece at a time keeps the decoded
        # text and the list of lines small, however big the storage's chunks.
        for chunk in self.chunks:
            view = memoryview(chunk)
            for start in range(0, len(view), DECODE_PIECE):
                yield view[start : start + DECODE_PIECE]

    def __iter__(self) -> Iterator[str]:
        decoder = codecs.getincrementaldecoder(self.encoding)("strict")
        rest = ""
        for piece in self._pieces():
            self.bytes_read += len(piece)
            try:
                text = decoder.decode(piece)
            except UnicodeDecodeError as ex:
                raise self._decode_error(ex, bytes(piece)) from None
            lines, rest = split_lines(rest + text, final=False)
            yield from self._emit(lines)
            if len(rest) > MAX_LINE_CHARS:
                raise CSVFormatError(
                    f"the line is longer than {MAX_LINE_CHARS // (1024 * 1024)} MiB",
                    self.lines_out + 1,
                )
        if not self.final:
            return
        try:
            text = decoder.decode(b"", final=True)
        except UnicodeDecodeError as ex:
            raise self._decode_error(ex, b"") from None
        lines, rest = split_lines(rest + text, final=True)
        if rest:
            lines.append(rest)
        yield from self._emit(lines)

    def _emit(self, lines: list[str]) -> Iterator[str]:
        for line in lines:
            self.lines_out += 1
            self.chars_out += len(line)
            yield line


def read_records(lines: Iterable[str], delimiter: str) -> Iterator[tuple[int, list]]:
    """``(first line number, fields)`` per record; CSVFormatError names the line.

    ``strict`` makes csv report what it would otherwise guess around, such as
    text after a closing quote or a quote that is never closed.
    """
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    previous = 0
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as ex:
            message = str(ex)
            if "unexpected end of data" in message:
                raise CSVFormatError(
                    f"a quoted field starting on line {previous + 1} is never closed",
                    previous + 1,
                    unclosed=True,
                ) from None
            if "field larger than field limit" in message:
                raise CSVFormatError(
                    f"a field is longer than {csv.field_size_limit():,} characters "
                    "(is a quote missing?)",
                    previous + 1,
                ) from None
            raise CSVFormatError(message, reader.line_num) from None
        start, previous = previous + 1, reader.line_num
        yield start, record


def detect_delimiter(lines: list[str], kind: str | None) -> str:
    """The candidate that splits the most lines into the same (>1) number of fields."""
    if kind == "tsv":
        return "\t"
    best, best_score = ",", (0.0, 0)
    for delimiter in DELIMITERS:
        counts = [
            len(record) for record in csv.reader(lines, delimiter=delimiter) if record
        ]
        if not counts:
            continue
        mode = max(set(counts), key=counts.count)
        if mode < 2:
            continue
        score = (counts.count(mode) / len(counts), mode)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def column_names(header: list[str]) -> list[str]:
    """Header cells as column names: whitespace collapsed, blanks and duplicates named."""
    names: list[str] = []
    seen: set[str] = set()
    for i, raw in enumerate(header, start=1):
        cleaned = "".join(ch if ch.isprintable() else " " for ch in raw)
        name = " ".join(cleaned.split())[:MAX_COLUMN_NAME] or f"column_{i}"
        candidate, n = name, 2
        # SQLite column names are case-insensitive.
        while candidate.lower() in seen:
            candidate, n = f"{name}_{n}", n + 1
        seen.add(candidate.lower())
        names.append(candidate)
    return names


def value_type(value: str) -> str | None:
    value = value.strip()
    if not value:
        return None
    if INTEGER_RE.fullmatch(value) and abs(int(value)) <= INT64_MAX:
        return INTEGER
    if REAL_RE.fullmatch(value):
        return REAL
    return TEXT


def detect_types(rows: list[list[str]], width: int) -> list[str]:
    """INTEGER if every non-empty value is one, else REAL, else TEXT."""
    types = []
    for i in range(width):
        seen = {value_type(row[i]) for row in rows if i < len(row)} - {None}
        if not seen or TEXT in seen:
            types.append(TEXT)
        elif seen == {INTEGER}:
            types.append(INTEGER)
        else:
            types.append(REAL)
    return types


def too_many_fields(found: int, width: int, line: int) -> CSVFormatError:
    return CSVFormatError(f"found {found} fields, but the header has {width}", line)


def analyse(
    sample: bytes,
    complete: bool,
    kind: str | None,
    delimiter: str | None = None,
) -> Analysis:
    """Encoding, delimiter, columns and their types from the start of a file.

    ``complete`` says the sample is the whole file; otherwise its last,
    possibly cut, line is ignored.
    """
    if not sample.strip():
        raise CSVFormatError("the file is empty")
    encoding = detect_encoding(sample)
    lines = iter(LineReader([sample], encoding, final=complete))
    head = list(itertools.islice(lines, 100))
    if not head:
        raise CSVFormatError("the first line is longer than the sample read", 1)
    if delimiter is None:
        delimiter = detect_delimiter(head, kind)
    records = []
    try:
        for line, record in read_records(itertools.chain(head, lines), delimiter):
            if not record:
                continue
            if records and len(record) > len(records[0][1]):
                raise too_many_fields(len(record), len(records[0][1]), line)
            records.append((line, record))
            if len(records) > SAMPLE_ROWS:
                break
    except CSVFormatError as ex:
        # A sample cut inside a quoted field ends mid-record; that is not an error.
        if complete or not ex.unclosed:
            raise
    if not records:
        raise CSVFormatError("the file has no header row", 1)
    header = records[0][1]
    rows = [record for _, record in records[1:]]
    names = column_names(header)
    types = detect_types(rows, len(names))
    return Analysis(
        encoding=encoding,
        delimiter=delimiter,
        columns=[Column(name, type_) for name, type_ in zip(names, types, strict=True)],
        sample_rows=[
            row + [""] * (len(names) - len(row)) for row in rows[:PREVIEW_ROWS]
        ],
        rows_sampled=len(rows),
    )
