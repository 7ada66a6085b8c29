"""The general path: any RFC 4180 CSV (quotes, text, categorical columns, string labels).

One pass through the csv module (C) in batches; work per field stays in C: columns come from
zip(*batch), categories are encoded with map(dict.__getitem__, ...), rows are joined with
map(",".join, ...), and one bytes.translate over each batch's output checks that every numeric
column stayed numeric (codes are digits). Types are taken from the first
batch; category and class codes follow their sorted order within the batch where they first
appear (deterministic, and fully sorted whenever the first batch holds them all). A later batch
that contradicts a type, or numeric classes that need a mapping, restart the pass with what was
learnt; nothing is committed before the pass ends.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, replace
from itertools import compress, islice, repeat
from typing import Callable, Iterable, Iterator

from .errors import InvalidEncoding, InvalidLabel, MalformedRow, TooManyCategories
from .plan import (FEATURES_PART, Columns, LabelStats, NumericLabelWatch, classification, csv_field, identifier_like,
                   labels_header, numbers_only, problem_type)
from .rowsplit import RowSplitter

MAX_CATEGORIES = 50_000    # distinct values a text column may have (more looks like an identifier)
BATCH = 2048               # rows per batch: small enough that a batch stays in the CPU caches
NUMBER_CHARACTERS = b"0123456789.-+eE"
OUTPUT_CHARACTERS = b"0123456789.-+eE,\n"


class _ChunkStream(io.RawIOBase):
    """A raw stream over an iterator of byte chunks, so io's text layer can decode it."""

    def __init__(self, chunks: Iterator[bytes]):
        self._chunks = chunks
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending:
            chunk = next(self._chunks, b"")
            if not chunk:
                return 0
            self._pending = memoryview(chunk)
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def _reader(chunks: Iterable[bytes]):
    text = io.TextIOWrapper(io.BufferedReader(_ChunkStream(iter(chunks)), 1 << 20), encoding="utf-8", newline="")
    return csv.reader(text, strict=True)


def _batches(chunks: Iterable[bytes], where: str) -> Iterator[tuple[int, list[list[str]]]]:
    """(row number of the batch's first row, rows) with blank lines dropped; the header is row 1."""
    reader = _reader(chunks)
    row = 1
    try:
        while True:
            batch = list(islice(reader, BATCH))
            if not batch:
                return
            rows = list(filter(None, batch))
            yield row, rows
            row += len(rows)
    except UnicodeDecodeError as error:
        raise InvalidEncoding(f"{where} is not UTF-8 text ({error.reason} after line {reader.line_num})") from None
    except csv.Error as error:
        raise MalformedRow(f"line {reader.line_num}: {error}") from None


def read_rows(chunks: Iterable[bytes], where: str) -> Iterator[list[str]]:
    """Every non-blank row of a CSV stream, fields unquoted."""
    for _, rows in _batches(chunks, where):
        yield from rows


def read_header(open_chunks: Callable[[], Iterable[bytes]], where: str) -> list[str]:
    for _, rows in _batches(open_chunks(), where):
        if rows:
            return rows[0]
    return []


def _only(text: str, characters: bytes) -> bool:
    """text holds nothing but these ASCII characters (bytes.translate runs in C)."""
    return text.isascii() and not text.encode("ascii").translate(None, characters)


def _column_is_numeric(values) -> bool:
    """Only number characters (empty fields are missing values)."""
    return _only("".join(values), NUMBER_CHARACTERS)


@dataclass
class _Plan:
    """What a pass must know from its start; a pass that learns otherwise restarts with more."""
    text_columns: set[int] | None = None          # None: decide from the first batch
    label: str | None = None                       # "numeric" | "text" | "mapped"; None: first batch
    classes: list[str] | None = None               # with "mapped": the label values in code order


class _Restart(Exception):
    def __init__(self, plan: _Plan):
        self.plan = plan


def _encode(codes: dict[str, str], values) -> list[str]:
    """Codes for a text column; new values get the next codes in sorted order. An empty field stays
    empty (a missing value): codes holds "" -> "" for that."""
    codes.setdefault("", "")
    new = set(values) - codes.keys()
    for value in sorted(new):
        codes[value] = str(len(codes) - 1)
    return list(map(codes.__getitem__, values))


def _in_code_order(codes: dict[str, str]) -> list[str]:
    return sorted((value for value in codes if value), key=lambda value: int(codes[value]))


def _output_is_numeric(text: str) -> bool:
    """Only number characters, commas and newlines: what the outputs hold when every numeric
    column stayed numeric (codes are digits too)."""
    return _only(text, OUTPUT_CHARACTERS)


@dataclass
class _Plan:
    """What a pass must know from its start; a pass that learns otherwise restarts with more."""
    text_columns: set[int] | None = None          # None: decide from the first batch
    label: str | None = None                       # "numeric" | "text" | "mapped"; None: first batch
    classes: list[str] | None = None               # with "mapped": the label values in code order
    identifiers: set[int] | None = None            # text columns left out as identifiers; None: first batch
    kept: frozenset[int] = frozenset()             # text columns a pass showed are not identifiers


class _Restart(Exception):
    def __init__(self, plan: _Plan):
        self.plan = plan


def _retype(plan: _Plan, columns: list[tuple[str, ...]], label_index: int, features: list[int]) -> _Plan:
    """Which assumption a batch broke (only after the cheap whole-batch check failed)."""
    if plan.label == "numeric" and not numbers_only(set(columns[label_index])):
        return replace(plan, label="text")
    flipped = {i for i in features if i not in plan.text_columns and not _column_is_numeric(columns[i])}
    return replace(plan, text_columns=plan.text_columns | flipped)


def _quoted(values) -> Iterator[str]:
    return map(csv_field, values)


def _pass(open_chunks, columns: Columns, splitter: RowSplitter, outputs, where: str, plan: _Plan) -> dict:
    """One pass: per batch, columns by zip(*rows), codes by map, rows back by map(",".join, zip(...))."""
    header, label_index, label_name = columns.header, columns.label, columns.label_name
    width = len(header)
    codes: dict[int, dict[str, str]] = {}
    distinct: dict[int, set[str] | None] = {}       # identifier columns: their values, while few enough
    label_codes = {value: str(code) for code, value in enumerate(plan.classes)} if plan.label == "mapped" else {}
    numeric_labels: set[str] | None = set()
    stats, watch = LabelStats(limit=MAX_CATEGORIES), NumericLabelWatch(label_name)
    counts = dict.fromkeys(("train", "validation", "test"), 0)
    header_pending = True
    outputs["labels"].write(labels_header(columns).encode())
    for row, rows in _batches(open_chunks(), where):
        if header_pending:
            rows, row, header_pending = rows[1:], row + 1, False
        if not rows:
            continue
        if set(map(len, rows)) != {width}:
            index = next(i for i, fields in enumerate(rows) if len(fields) != width)
            raise MalformedRow(f"row {row + index}: expected {width} fields, found {len(rows[index])}")
        table = list(zip(*rows))
        label = table[label_index]
        if "" in label:
            raise InvalidLabel(f"row {row + label.index('')}: the label column {label_name!r} is empty")
        if plan.text_columns is None:
            plan.text_columns = {i for i in columns.features if not _column_is_numeric(table[i])}
        if plan.identifiers is None:
            plan.identifiers = {i for i in plan.text_columns - plan.kept
                                if identifier_like(len(set(table[i]) - {""}), len(rows))}
        if plan.label is None:
            plan.label = "numeric" if numbers_only(set(label)) else "text"
        if plan.label == "numeric":
            label_values = label
            watch.add(label)
        elif plan.label == "text":
            label_values = _encode(label_codes, label)
            if len(label_codes) > MAX_CATEGORIES:
                raise TooManyCategories(f"label column {label_name!r} has more than {MAX_CATEGORIES} distinct "
                                        "non-numeric values; set labelColumn to the column to predict")
        elif set(label) <= label_codes.keys():
            label_values = list(map(label_codes.__getitem__, label))
        else:
            raise _Restart(replace(plan, label="text", classes=None))
        features = [i for i in columns.features if i not in plan.identifiers]
        encoded = []
        for i in features:
            if i not in plan.text_columns:
                encoded.append(table[i])
                continue
            encoded.append(_encode(codes.setdefault(i, {}), table[i]))
            if len(codes[i]) - 1 > MAX_CATEGORIES:
                seen = sum(counts.values()) + len(rows)
                if i not in plan.kept and identifier_like(len(codes[i]) - 1, seen):
                    raise _Restart(replace(plan, identifiers=plan.identifiers | {i}))
                raise TooManyCategories(f"column {header[i]!r} has more than {MAX_CATEGORIES} distinct non-numeric "
                                        "values; leave it out with ignoreColumns")
        for i in plan.identifiers:
            known = distinct.setdefault(i, set())
            if known is not None:
                known.update(table[i])
                distinct[i] = known if len(known) <= MAX_CATEGORIES else None
        joined = list(map(",".join, zip(label_values, *encoded)))
        masks = splitter.masks(len(joined))
        test = list(map(str.partition, compress(joined, masks["test"]), repeat(",")))
        texts = {"train": "\n".join(compress(joined, masks["train"])),
                 "validation": "\n".join(compress(joined, masks["validation"])),
                 "test": "\n".join(map(FEATURES_PART, test))}
        if not all(map(_output_is_numeric, texts.values())):
            raise _Restart(_retype(plan, table, label_index, columns.features))
        test_labels = _quoted(compress(label, masks["test"]))
        if columns.id is not None:
            test_labels = map(",".join, zip(_quoted(compress(table[columns.id], masks["test"])), test_labels))
        texts["labels"] = "\n".join(test_labels)
        if plan.label == "numeric" and numeric_labels is not None:
            numeric_labels.update(label)
            if len(numeric_labels) > MAX_CATEGORIES:
                numeric_labels = None                       # a continuous label
        stats.add(list(compress(label_values, masks["train"])))
        for name, text in texts.items():
            if text:
                outputs[name].write((text + "\n").encode())
        for split, mask in masks.items():
            counts[split] += mask.count(1)

    rows = sum(counts.values())
    for i in sorted(plan.identifiers or ()):
        known = distinct.get(i, set())
        if known is not None and not identifier_like(len(known - {""}), rows):
            raise _Restart(replace(plan, identifiers=plan.identifiers - {i}, kept=plan.kept | {i}))
    for i in sorted(set(codes) - (plan.identifiers or set()) - plan.kept):
        if identifier_like(len(codes[i]) - 1, rows):
            raise _Restart(replace(plan, identifiers=plan.identifiers | {i}))
    if plan.label == "numeric":
        watch.check()
        kind, classes = problem_type(label_name, numeric_labels)
        if classes is not None and classes != [str(code) for code in range(len(classes))]:
            raise _Restart(replace(plan, label="mapped", classes=classes))
        keys = classes or []
    else:
        classes = plan.classes if plan.label == "mapped" else _in_code_order(label_codes)
        kind = classification(label_name, classes, rows=rows)
        keys = [str(code) for code in range(len(classes))]
    identifiers = sorted(plan.identifiers or ())
    return {"counts": counts, "problem": kind, "classes": classes, "labelStats": stats.summary(kind, keys),
            "features": [{"name": header[i], "type": "categorical", "categories": _in_code_order(codes.get(i, {}))}
                         if i in plan.text_columns else {"name": header[i], "type": "numeric"}
                         for i in columns.features if i not in identifiers],
            "ignored": [{"name": header[i], "reason": _identifier_reason(distinct.get(i), rows)} for i in identifiers]}


def _identifier_reason(known: set[str] | None, rows: int) -> str:
    many = f"more than {MAX_CATEGORIES}" if known is None else str(len(known - {""}))
    return f"identifier: {many} distinct values in {rows} rows"


def split_general(open_chunks: Callable[[], Iterable[bytes]], columns: Columns,
                  make_splitter: Callable[[], RowSplitter], make_outputs, finish: Callable[[dict, object], dict],
                  where: str) -> dict:
    """Passes until one needs no restart, each into fresh outputs (a restarted one is aborted)."""
    plan = _Plan()
    while True:
        with make_outputs() as outputs:
            try:
                result = _pass(open_chunks, columns, make_splitter(), outputs, where, plan)
            except _Restart as restart:
                plan = restart.plan
                outputs.abort()
                continue
            return finish(result, outputs)
