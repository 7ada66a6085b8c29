"""The fast path for numeric data: per block of lines, bytes operations in C instead of a csv reader.

The profile checks each block before it cuts it into lines (plan.number_marks): every value a number as
the csv path has it (plan.NUMBER) or empty, every line one field per column (MalformedRow), every number
within float32's range (InvalidNumber); the label is taken with bytes.partition. Anything else (quotes,
text, 1.2.3, 2024-01-05) raises NotNumeric, and Arrow (arrowcsv.py), or the csv module where Arrow is unsure,
reads the item, applying the rules for text (a later split relies on the profile's check of the same bytes).
Rows are numbered as the csv path numbers them (non-blank rows, the header is row 1). profile_any and
split_any choose the path for an item; profile_any also splits an item of numbers in the same read, which
stands when the merged plan agrees (split_stands).
"""
from __future__ import annotations

import csv
from itertools import chain, repeat
from operator import itemgetter
from typing import Callable, Iterable, Iterator, Sequence

from . import profile as profiling
from .errors import InvalidEncoding, InvalidLabel, InvalidNumber, MalformedRow
from .plan import (MAX_CLASSES_FROM_INTEGERS, NUMERIC, Columns, NumericLabelWatch, first_past_float32, may_be_large,
                   number_marks, past_float32_message)
from .profile import MAX_CATEGORIES, ColumnProfile, item_profile, profile_with_restarts
from .shards import check_header, data_batches
from .split import SplitWriter, split_item

LABEL_PART = itemgetter(0)


class NotNumeric(Exception):
    """This item needs the path for text (Arrow, or the csv module)."""


def numeric_blocks(chunks: Iterable[bytes], where: str, header: list[str] | None,
                   names: Sequence[str] | None) -> Iterator[tuple[int, list[bytes]]]:
    """(the row number of the block's first line, its non-blank lines), each block whole lines of numbers;
    with names (the dataset's columns), each block is checked before it is cut into lines: every value a
    number (plan.number_marks), every line one field per column (MalformedRow), every number within
    float32's range (InvalidNumber); None: the profile checked these bytes. A stream that starts its object
    has its header checked and left out."""
    tail, row = b"", 1
    chunks = iter(chunks)
    if header is not None:
        for chunk in chunks:
            tail += chunk
            if b"\n" in tail:
                break
        line, _, tail = tail.partition(b"\n")
        if b"\r" in line.removesuffix(b"\r"):
            raise NotNumeric("a line that ends in a lone carriage return")
        try:
            found = next(csv.reader([line.decode("utf-8").rstrip("\r")]), [])
        except UnicodeDecodeError as error:
            raise InvalidEncoding(f"{where} is not UTF-8 text ({error.reason} in the header row)") from None
        check_header(found, header, where)
        row = 2
    for chunk in chunks:
        data = tail + chunk
        cut = data.rfind(b"\n") + 1
        tail = data[cut:]
        if cut:
            lines = _lines(data[:cut], row, names, where)
            yield row, lines
            row += len(lines)
    if tail.strip(b"\r"):
        yield row, _lines(tail + b"\n", row, names, where)


def _lines(block: bytes, row: int, names: Sequence[str] | None, where: str) -> list[bytes]:
    if b"\r" in block:
        block = block.replace(b"\r\n", b"\n")
    if names is None:
        if block.translate(None, NUMERIC):
            raise NotNumeric("a character that is no part of a number")
    else:
        numbers = number_marks(block)
        if numbers is None:
            raise NotNumeric("a value that is not a number")
    lines = block.split(b"\n")
    lines.pop()
    if b"" in lines:
        lines = list(filter(None, lines))
    if names is not None:
        commas = len(names) - 1
        if numbers.marks.translate(None, b".e") != (b"," * commas + b"\n") * len(lines):
            _checked(row, lines, commas, where)    # a blank line, or a line of other than commas + 1 fields
        if numbers.may_be_large:
            _within_float32(row, lines, names, where)
    return lines


def _within_float32(row: int, lines: list[bytes], names: Sequence[str], where: str) -> None:
    for index, line in enumerate(lines):
        fields = line.split(b",") if may_be_large(line) else ()
        column = first_past_float32(fields)
        if column is not None:
            raise InvalidNumber(past_float32_message(where, row + index, names[column], fields[column]))


def _checked(row: int, lines: list[bytes], commas: int, where: str) -> None:
    index = next((i for i, line in enumerate(lines) if line.count(b",") != commas), None)
    if index is not None:
        raise MalformedRow(f"{where}, row {row + index}: expected {commas + 1} fields, "
                           f"found {lines[index].count(b',') + 1}")


def _label_first(lines: list[bytes], columns: Columns, features: list[int]) -> list[bytes]:
    """Rows of the label then the features, from whole lines."""
    commas = len(columns.header) - 1
    if features == [i for i in range(commas + 1) if i != columns.label]:
        if columns.label == 0:
            return lines
        if columns.label == commas:
            return list(map(b"".join, map(reversed, map(bytes.rpartition, lines, repeat(b",")))))
    return list(map(b",".join, map(itemgetter(columns.label, *features), map(bytes.split, lines, repeat(b",")))))


def profile_numeric(blocks: Iterable[tuple[int, list[bytes]]], columns: Columns, where: str,
                    values_kept: int, writer: SplitWriter | None = None) -> dict:
    """profile.profile_item's result for an item of numbers only (blocks checked); each feature's distinct
    values are kept (splitting lines into fields) only while some column has at most values_kept of them.
    writer: the item is split in the same read, every feature kept and the labels as written."""
    features = {i: ColumnProfile() for i in columns.features}
    label_profile = ColumnProfile()
    watch = NumericLabelWatch(columns.label_name)
    rows = 0
    for row, lines in blocks:
        ordered = _label_first(lines, columns, columns.features)
        label = list(map(LABEL_PART, map(bytes.partition, ordered, repeat(b","))))
        if b"" in label:
            raise InvalidLabel(f"{where}, row {row + label.index(b'')}: the label column {columns.label_name!r} "
                               "is empty")
        distinct = set(label)
        label_profile.add(distinct, True, MAX_CATEGORIES, MAX_CLASSES_FROM_INTEGERS)
        if watch.seen is not None:
            watch.add([value.decode() for value in label])
        if writer is not None:
            writer.write(ordered, label, _held_out(lines, columns, label))
        tracked = [i for i, profile in features.items() if profile.values is not None]
        if tracked:
            fields = list(map(bytes.split, lines, repeat(b",")))
            for i in tracked:
                features[i].add(map(itemgetter(i), fields), True, MAX_CATEGORIES, values_kept)
        rows += len(lines)
    return item_profile(rows, features, label_profile, watch)


def profile_any(open_chunks: Callable[[], Iterable[bytes]], where: str, header: list[str] | None,
                single_line: bool, columns: Columns, writer: Callable[[], SplitWriter] | None = None,
                outputs=None) -> tuple[dict, str, dict | None]:
    """An item's profile by the fast path, else through Arrow, else (when Arrow is unsure) by the csv module;
    which path it took; and with writer, the split's result when the fast path split the item in the same
    read (else its outputs are aborted and None). header: the dataset's, when the bytes start their object."""
    source = _FirstChunks(open_chunks())
    try:
        split = writer() if writer is not None else None
        blocks = source.until_first(numeric_blocks(source, where, header, columns.header))
        profile = profile_numeric(blocks, columns, where, profiling.NUMBER_VALUES_KEPT, split)
        return profile, "numeric", None if split is None else split.result()
    except NotNumeric:
        if outputs is not None:
            outputs.abort()
    # Imported only for an item that is not all numbers: pyarrow adds to a Lambda's cold start.
    from . import arrowcsv
    replay = source.again()

    def read() -> Iterable[bytes]:
        nonlocal replay
        chunks, replay = (open_chunks() if replay is None else replay), None
        return chunks
    try:
        return profile_with_restarts(lambda text: arrowcsv.profile_item(read(), header, single_line, columns,
                                                                        text)), "arrow", None
    except arrowcsv.Unsure:
        return profile_with_restarts(lambda text: profiling.profile_item(
            data_batches(read(), where, header, single_line), columns, where, text)), "csv module", None


class _FirstChunks:
    """An item's chunks, those read kept until the fast path has cleared its first block: an item of text
    (found there) is read through Arrow from them and the rest of the same stream, not again."""

    def __init__(self, chunks: Iterable[bytes]):
        self.chunks, self.kept = iter(chunks), []

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            if self.kept is not None:
                self.kept.append(chunk)
            yield chunk

    def until_first(self, blocks: Iterator) -> Iterator:
        """blocks, forgetting the kept chunks once the first block is through."""
        for block in blocks:
            yield block
            self.kept = None

    def again(self) -> Iterable[bytes] | None:
        """The item from its start (the kept chunks, then the stream's rest), while every chunk is kept."""
        return None if self.kept is None else chain(self.kept, self.chunks)


def split_any(open_chunks: Callable[[], Iterable[bytes]], where: str, header: list[str] | None, single_line: bool,
              columns: Columns, plan: dict, writer: Callable[[], SplitWriter], outputs,
              path: str = "numeric") -> tuple[dict, str]:
    """The split by the path the item's profile took (path): the fast path when the plan has no text feature,
    else through Arrow (an item of numbers reads there as on the fast path); the csv module for an item that
    Arrow was unsure of. A fast path that meets anything else is undone (its outputs aborted) and the csv path
    writes the item. Returns the split's result and the path."""
    if path == "numeric" and numeric_plan(plan):
        try:
            # The profile checked every value of these bytes; the split reads them again unchecked.
            return split_numeric(numeric_blocks(open_chunks(), where, header, None), columns, plan,
                                 writer()), "numeric"
        except NotNumeric:
            outputs.abort()
    elif path in ("numeric", "arrow"):
        from . import arrowcsv
        return arrowcsv.split_item(open_chunks(), header, columns, plan, writer()), "arrow"
    return split_item(data_batches(open_chunks(), where, header, single_line), columns, plan, writer()), "csv module"


def split_stands(plan: dict, columns: Columns) -> bool:
    """What profile_any split in the profile's read is the plan's split: no codes for text or classes, and
    every feature kept."""
    return numeric_plan(plan) and not plan["mapped"] and plan["features"] == columns.features


def numeric_plan(plan: dict) -> bool:
    """The split can take the fast path: no text column among the features."""
    return not plan["categories"]


def split_numeric(blocks: Iterable[tuple[int, list[bytes]]], columns: Columns, plan: dict, writer: SplitWriter) -> dict:
    """split.split_item's work for an item of numbers only."""
    classes = ({value.encode(): str(code).encode() for code, value in enumerate(plan["classes"])}
               if plan["mapped"] else None)
    for _, lines in blocks:
        ordered = _label_first(lines, columns, plan["features"])
        parts = list(map(bytes.partition, ordered, repeat(b",")))
        label = list(map(LABEL_PART, parts))
        if classes is not None:
            codes = list(map(classes.__getitem__, label))
            ordered = list(map(b",".join, zip(codes, map(itemgetter(2), parts))))
        else:
            codes = label
        writer.write(ordered, codes, _held_out(lines, columns, label))
    return writer.result()


def _held_out(lines: list[bytes], columns: Columns, label: list[bytes]) -> list[list[bytes]]:
    """The held-out labels file's columns for these lines: the id column first, with one, then the label."""
    return [label] if columns.id is None else [
        list(map(itemgetter(columns.id), map(bytes.split, lines, repeat(b",")))), label]
