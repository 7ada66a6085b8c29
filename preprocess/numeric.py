"""The fast path: a numeric CSV, split in one pass with per-chunk bytes operations.

Per-field work never runs in Python: a chunk is checked with bytes.translate (only number
characters), each line's field count with map(bytes.count), rows are routed with
itertools.compress and joined. Anything else (quotes, text, labels that need a mapping) raises
NotNumeric before an output is committed, and the general path takes over.
"""
from __future__ import annotations

import csv
from itertools import repeat
from typing import Iterable, Iterator

from .errors import EmptyDataset, InvalidEncoding, InvalidLabel, MalformedRow
from .plan import FEATURES_PART, LABEL_PART, MAX_CLASSES_FROM_INTEGERS, numbers_only, problem_type
from .rowsplit import RowSplitter

NOT_NUMERIC = b"0123456789.,-+eE\n"


class NotNumeric(Exception):
    """This dataset needs the general path."""


def read_header(chunks: Iterator[bytes], where: str) -> tuple[list[str], bytes]:
    """The header fields and what follows them in the stream's first chunk(s)."""
    buffered = b""
    for chunk in chunks:
        buffered += chunk
        end = buffered.find(b"\n")
        if end >= 0:
            break
    else:
        end = len(buffered)
    line, rest = buffered[:end], buffered[end + 1:]
    try:
        text = line.decode("utf-8").rstrip("\r")
    except UnicodeDecodeError as error:
        raise InvalidEncoding(f"{where} is not UTF-8 text ({error.reason} in the header row)") from None
    if '"' in text:
        raise NotNumeric("quoted header")
    header = next(csv.reader([text]), [])
    if not header:
        raise EmptyDataset(f"{where} is empty (no header row)")
    return header, rest


def _lines_of(block: bytes, first_line: int, commas: int) -> list[bytes]:
    if block.translate(None, NOT_NUMERIC):
        raise NotNumeric("non-numeric characters")
    lines = block.split(b"\n")
    lines.pop()
    if b"" in lines:
        lines = list(filter(None, lines))
    if set(map(bytes.count, lines, repeat(b","))) != {commas}:
        for number, line in enumerate(block.split(b"\n"), start=first_line):
            if line and line.count(b",") != commas:
                raise MalformedRow(f"row {number}: expected {commas + 1} fields, found {line.count(b',') + 1}")
    return lines


def _label_first(lines: list[bytes], label_index: int, commas: int) -> list[bytes]:
    if label_index == 0:
        return lines
    if label_index == commas:
        return list(map(b"".join, map(reversed, map(bytes.rpartition, lines, repeat(b",")))))
    moved = []
    for line in lines:
        fields = line.split(b",")
        moved.append(b",".join([fields.pop(label_index), *fields]))
    return moved


def split_numeric(chunks: Iterable[bytes], header: list[str], label_index: int, splitter: RowSplitter,
                  outputs, first_line: int = 2) -> dict:
    """Write label-first train/validation rows, test features and test labels; return the profile."""
    commas = len(header) - 1
    counts = dict.fromkeys(("train", "validation", "test"), 0)
    labels: set[bytes] | None = set()
    line_number = first_line
    tail = b""

    def process(block: bytes) -> None:
        nonlocal labels, line_number
        if b"\r" in block:
            block = block.replace(b"\r\n", b"\n")
        lines = _lines_of(block, line_number, commas)
        rows = _label_first(lines, label_index, commas)
        if any(map(bytes.startswith, rows, repeat(b","))):
            index = next(i for i, row in enumerate(rows) if row.startswith(b","))
            raise InvalidLabel(f"row {line_number + _physical_index(block, index)}: the label column "
                               f"{header[label_index]!r} is empty")
        if labels is not None:
            labels.update(map(LABEL_PART, map(bytes.partition, rows, repeat(b","))))
            if len(labels) > MAX_CLASSES_FROM_INTEGERS:
                labels = None                       # more values than classes: regression
        groups = splitter.split(rows)
        for split in ("train", "validation"):
            if groups[split]:
                outputs[split].write(b"\n".join(groups[split]) + b"\n")
        if groups["test"]:
            parts = list(map(bytes.partition, groups["test"], repeat(b",")))
            outputs["test"].write(b"\n".join(map(FEATURES_PART, parts)) + b"\n")
            outputs["labels"].write(b"\n".join(map(LABEL_PART, parts)) + b"\n")
        for split, group in groups.items():
            counts[split] += len(group)
        line_number += block.count(b"\n")

    for chunk in chunks:
        data = tail + chunk
        cut = data.rfind(b"\n") + 1
        tail = data[cut:]
        if cut:
            process(data[:cut])
    if tail.strip(b"\r"):
        process(tail + b"\n")

    values = None if labels is None else {value.decode() for value in labels}
    if values is not None and not numbers_only(values):
        raise NotNumeric("labels that are not numbers")
    kind, classes = problem_type(header[label_index], values) if sum(counts.values()) else ("regression", None)
    if classes is not None and classes != [str(code) for code in range(len(classes))]:
        raise NotNumeric("labels need a mapping to 0..k-1")
    return {"counts": counts, "problem": kind, "classes": classes,
            "features": [{"name": name, "type": "numeric"} for i, name in enumerate(header) if i != label_index]}


def _physical_index(block: bytes, row_index: int) -> int:
    """The line offset within the block of the row_index-th non-empty line (error messages only)."""
    seen = -1
    for offset, line in enumerate(block.split(b"\n")):
        if line:
            seen += 1
            if seen == row_index:
                return offset
    return 0
