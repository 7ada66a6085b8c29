"""The fast path: a numeric CSV, split in one pass with per-chunk bytes operations.

Per-field work never runs in Python: a chunk is checked with bytes.translate (only number
characters), each line's field count with map(bytes.count), rows are routed with
itertools.compress and joined. Anything else (quotes, text, labels that need a mapping) raises
NotNumeric before an output is committed, and the general path takes over.
"""
from __future__ import annotations

import csv
from itertools import compress, repeat
from operator import itemgetter
from typing import Iterable, Iterator

from .errors import EmptyDataset, InvalidEncoding, InvalidLabel, MalformedRow
from .plan import (FEATURES_PART, LABEL_PART, MAX_CLASSES_FROM_INTEGERS, Columns, LabelStats, NumericLabelWatch,
                   labels_header, numbers_only, problem_type)
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


def _arrange(lines: list[bytes], columns: Columns) -> tuple[list[bytes], list[bytes] | None]:
    """Label-first rows of the feature columns, and the ids when there is an id column."""
    commas = len(columns.header) - 1
    if columns.id is None and not columns.ignored:
        return _label_first(lines, columns.label, commas), None
    fields = list(map(bytes.split, lines, repeat(b",")))
    rows = list(map(b",".join, map(itemgetter(columns.label, *columns.features), fields)))
    return rows, (None if columns.id is None else list(map(itemgetter(columns.id), fields)))


def split_numeric(chunks: Iterable[bytes], columns: Columns, splitter: RowSplitter, outputs,
                  first_line: int = 2) -> dict:
    """Write label-first train/validation rows, test features and test labels; return the profile."""
    header, label_name = columns.header, columns.label_name
    commas = len(header) - 1
    counts = dict.fromkeys(("train", "validation", "test"), 0)
    labels: set[bytes] | None = set()
    stats = LabelStats(limit=MAX_CLASSES_FROM_INTEGERS)
    watch = NumericLabelWatch(label_name)
    line_number = first_line
    tail = b""
    outputs["labels"].write(labels_header(columns).encode())

    def process(block: bytes) -> None:
        nonlocal labels, line_number
        if b"\r" in block:
            block = block.replace(b"\r\n", b"\n")
        lines = _lines_of(block, line_number, commas)
        rows, ids = _arrange(lines, columns)
        if any(map(bytes.startswith, rows, repeat(b","))):
            index = next(i for i, row in enumerate(rows) if row.startswith(b","))
            raise InvalidLabel(f"row {line_number + _physical_index(block, index)}: the label column "
                               f"{label_name!r} is empty")
        masks = splitter.masks(len(rows))
        train = list(compress(rows, masks["train"]))
        if labels is not None or watch.seen is not None:
            block_labels = list(map(LABEL_PART, map(bytes.partition, rows, repeat(b","))))
            watch.add(block_labels)
            if labels is not None:
                labels.update(block_labels)
                if len(labels) > MAX_CLASSES_FROM_INTEGERS:
                    labels = None                   # more values than classes: regression
            stats.add(list(compress(block_labels, masks["train"])))
        else:
            stats.add(list(map(LABEL_PART, map(bytes.partition, train, repeat(b",")))))
        validation = list(compress(rows, masks["validation"]))
        for split, group in (("train", train), ("validation", validation)):
            if group:
                outputs[split].write(b"\n".join(group) + b"\n")
        test = list(map(bytes.partition, compress(rows, masks["test"]), repeat(b",")))
        if test:
            outputs["test"].write(b"\n".join(map(FEATURES_PART, test)) + b"\n")
            test_labels = map(LABEL_PART, test)
            if ids is not None:                     # numbers: nothing to quote
                test_labels = map(b",".join, zip(compress(ids, masks["test"]), test_labels))
            outputs["labels"].write(b"\n".join(test_labels) + b"\n")
        for split, mask in masks.items():
            counts[split] += mask.count(1)
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
    watch.check()
    kind, classes = problem_type(label_name, values) if sum(counts.values()) else ("regression", None)
    if classes is not None and classes != [str(code) for code in range(len(classes))]:
        raise NotNumeric("labels need a mapping to 0..k-1")
    return {"counts": counts, "problem": kind, "classes": classes,
            "labelStats": stats.summary(kind, [code.encode() for code in classes or []]),
            "features": [{"name": header[i], "type": "numeric"} for i in columns.features]}


def _physical_index(block: bytes, row_index: int) -> int:
    """The line offset within the block of the row_index-th non-empty line (error messages only)."""
    seen = -1
    for offset, line in enumerate(block.split(b"\n")):
        if line:
            seen += 1
            if seen == row_index:
                return offset
    return 0
