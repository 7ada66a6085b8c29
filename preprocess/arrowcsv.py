"""The csv path's work through Arrow's CSV parser (C++): the profile and the split the csv module gives, several
times faster.

Arrow reads some bytes the csv module refuses: `"a"b` as `ab`, a quote left open at the end as a value. So the
profile's read checks every quote first (checked). Anything Arrow refuses, a field longer than the csv module
takes, anything the csv path refuses, and any value whose rule depends on how the csv path batches its rows (a
nan or a large number before the first text of a column that turns to text, a label of numbers and text) raises
Unsure: the csv module then reads the item, and gives the named error or the same profile. No error is raised
here. The split reads again, unchecked, bytes that a profile read here.
"""
from __future__ import annotations

import csv
import re
import struct
from collections import Counter
from itertools import accumulate
from typing import Iterable, Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as arrow_csv

from . import profile as profiling
from .csvrows import last_record_end
from .errors import PreprocessError
from .plan import (CSV_SPECIAL, IDENTIFIER_EVIDENCE, LARGE_NUMBER, MAX_CLASSES_FROM_INTEGERS, NOT_FINITE, NUMBER,
                   Columns, NumericLabelWatch)
from .profile import ColumnProfile, Restart, item_profile
from .source import BOM
from .split import SplitWriter

FIELD_LIMIT = csv.field_size_limit()       # the csv module's longest field, in characters
RECORD_LIMIT = 8 << 20                     # bytes without a line break outside quotes: the csv module reads it
FLOAT32_PAST = 2.0 ** 128 - 2.0 ** 103     # the least double that rounds to inf as a float32 (plan.past_float32)
NUMBER_BYTES = b"0123456789.-+eE"
NUMBER_OR_EMPTY = f"^(?:{NUMBER.pattern})?$"
NOT_FINITE_VALUE = f"(?i)^{NOT_FINITE.pattern}$"
# Records whose every quote opens a field (at its start), closes one (before a separator or the end) or is
# doubled inside one: the quoting that the csv module (strict) and Arrow read alike.
QUOTED = re.compile(rb'[^"]*+|(?:[^"]*[,\r\n])?"[^"]*+"(?:(?:[,\r\n](?:[^"]*[,\r\n])?)?"[^"]*+")*+(?:[,\r\n][^"]*+)?')


def _text(*values: str) -> pa.Array:
    """Strings as an Arrow array, built from its buffers: pyarrow's conversion of a Python value looks for pandas
    first (where numpy is installed), which a local run would import for 0.3 s."""
    data = [value.encode() for value in values]
    offsets = struct.pack(f"<{len(data) + 1}i", *accumulate(map(len, data), initial=0))
    return pa.Array.from_buffers(pa.string(), len(data), [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(data))])


EMPTY, COMMA, LINE_BREAK, QUOTE = _text("", ",", "\n", '"')
TRUE = pa.Array.from_buffers(pa.bool_(), 1, [None, pa.py_buffer(b"\x01")])[0]


class Unsure(Exception):
    """The csv module must read this item."""


def pieces(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The chunks regrouped into whole records: each piece ends at the last line break outside quotes (an even
    count of quotes before it, which holds where the quoting is QUOTED). Unsure at a record longer than
    RECORD_LIMIT."""
    pending = b""
    for chunk in chunks:
        data = pending + chunk
        cut = last_record_end(data)
        if cut:
            yield data[:cut]
        pending = data[cut:]
        if len(pending) > RECORD_LIMIT:
            raise Unsure("a record longer than the csv module's limit")
    if pending:
        yield pending


def checked(pieces: Iterable[bytes]) -> Iterator[bytes]:
    """The pieces while Arrow reads them as the csv module does: their quoting QUOTED, and no UTF-8 byte order
    mark at a piece's start (Arrow drops it there, the csv module keeps it: joined files); else Unsure."""
    for piece in pieces:
        if piece.startswith(BOM) or QUOTED.fullmatch(piece) is None:
            raise Unsure("quoting that the csv module refuses, or a byte order mark")
        yield piece


def batches(pieces: Iterable[bytes], width: int, header: list[str] | None) -> Iterator[pa.RecordBatch]:
    """The rows of whole-record pieces, every field a string, each piece parsed from memory (from a stream,
    Arrow's I/O thread reads ahead through Python, and a reader dropped mid-item aborts the process at its
    exit); a stream that starts its object has its header row checked and left out. Unsure when Arrow refuses
    the bytes."""
    names = [str(i) for i in range(width)]
    parse = arrow_csv.ParseOptions(newlines_in_values=True)
    convert = arrow_csv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()))
    pending_header = header is not None
    for piece in pieces:
        try:
            table = arrow_csv.read_csv(pa.BufferReader(piece), read_options=arrow_csv.ReadOptions(
                use_threads=False, block_size=len(piece) + 1, column_names=names), parse_options=parse,
                convert_options=convert)
        except pa.ArrowException as error:
            raise Unsure(str(error)) from None
        for batch in table.to_batches():
            if pending_header and batch.num_rows:
                if [column[0].as_py() for column in batch.columns] != header:
                    raise Unsure("not the dataset's header")
                batch, pending_header = batch.slice(1), False
            if batch.num_rows:
                yield batch


def profile_item(chunks: Iterable[bytes], header: list[str] | None, single_line: bool, columns: Columns,
                 text: frozenset[int] = frozenset()) -> dict:
    """profile.profile_item's result for the item (text: columns known to be text, a Restart), or Unsure."""
    features = {i: ColumnProfile(numeric=i not in text) for i in columns.features}
    label = ColumnProfile(numeric=columns.label not in text)
    watch = NumericLabelWatch(columns.label_name)
    rows = 0
    try:
        for batch in batches(checked(pieces(chunks)), len(columns.header), header):
            _within_limits(batch, single_line)
            labels = batch.column(columns.label)
            if pc.any(pc.equal(labels, EMPTY)).as_py():
                raise Unsure("an empty label")
            for i, profile in features.items():
                was_numeric = profile.numeric and profile.values is None
                _profile_column(profile, batch.column(i), profiling.NUMBER_VALUES_KEPT)
                if was_numeric and not profile.numeric:
                    raise Restart(set(text) | {i})
            was_numeric = label.numeric
            _profile_column(label, labels, MAX_CLASSES_FROM_INTEGERS)
            if was_numeric and not label.numeric and (rows or _any(labels, NUMBER_OR_EMPTY)):
                raise Unsure("a label of numbers and text")
            if label.numeric and watch.seen is not None:
                watch.add(labels.slice(0, IDENTIFIER_EVIDENCE - watch.rows).to_pylist())
            rows += batch.num_rows
    except PreprocessError as error:
        raise Unsure(str(error)) from None
    return item_profile(rows, features, label, watch)


def _within_limits(batch: pa.RecordBatch, single_line: bool) -> None:
    """Unsure at a field longer than the csv module takes, or a line break in a field of a byte range."""
    for column in batch.columns:
        if pc.max(pc.binary_length(column)).as_py() > FIELD_LIMIT:
            raise Unsure("a field longer than the csv module's limit")
        if single_line and (pc.any(pc.match_substring_regex(column, "[\r\n]")).as_py()):
            raise Unsure("a line break in a field")


def _profile_column(profile: ColumnProfile, column: pa.Array, number_limit: int) -> None:
    """ColumnProfile.add for a batch's column. Where the column turns to text, a nan, an inf or a number that
    may be past float32's range before its first other non-number makes Unsure: the csv path judges those by
    its batches of 2,048 rows."""
    numeric = profile.numeric and _numbers(column)
    if profile.numeric and not numeric:
        not_finite = pc.match_substring_regex(column, NOT_FINITE_VALUE)
        numbers = pc.match_substring_regex(column, NUMBER_OR_EMPTY)
        first_word = pc.index(pc.invert(pc.or_(numbers, not_finite)), TRUE).as_py()
        doubts = pc.or_(not_finite, pc.and_(numbers, pc.match_substring_regex(column, LARGE_NUMBER)))
        first_doubt = pc.index(doubts, TRUE).as_py()
        if first_word < 0 or 0 <= first_doubt < first_word:
            raise Unsure("a nan, inf or large number before the first text where a column turns to text")
    values = () if profile.values is None else pc.unique(column)
    if len(values) > (number_limit if numeric else profiling.MAX_CATEGORIES):
        profile.values = None           # more than add keeps: not made Python strings
    profile.add(values if profile.values is None else values.to_pylist(), numeric, profiling.MAX_CATEGORIES,
                number_limit)


def _numbers(column: pa.Array) -> bool:
    """Every value is a NUMBER or empty (plan.number_values); Unsure when one is past float32's range. Arrow's
    cast takes exactly the NUMBERs among strings of NUMBER_BYTES."""
    if _data(column).translate(None, NUMBER_BYTES):
        return False
    try:
        doubles = pc.cast(column, pa.float64())
    except pa.ArrowInvalid:
        if not _all(column, NUMBER_OR_EMPTY):
            return False
        doubles = pc.cast(pc.filter(column, pc.not_equal(column, EMPTY)), pa.float64())
    if len(doubles) and pc.max(pc.abs(doubles)).as_py() >= FLOAT32_PAST:
        raise Unsure("a number past float32's range")
    return True


def _any(column: pa.Array, pattern: str) -> bool:
    return pc.any(pc.match_substring_regex(column, pattern)).as_py()


def _all(column: pa.Array, pattern: str) -> bool:
    return pc.all(pc.match_substring_regex(column, pattern)).as_py()


def _data(column: pa.Array) -> bytes:
    """A string array's values, one after another."""
    offsets, data = column.buffers()[1:3]
    start, end = (struct.unpack_from("<i", offsets, 4 * index)[0]
                  for index in (column.offset, column.offset + len(column)))
    return memoryview(data)[start:end].tobytes() if data is not None else b""


def split_item(chunks: Iterable[bytes], header: list[str] | None, columns: Columns, plan: dict,
               writer: SplitWriter) -> dict:
    """split.split_item's work through Arrow: label first, codes for text columns and mapped classes."""
    categories = {int(i): _text(*values) for i, values in plan["categories"].items()}
    classes = _text(*plan["classes"]) if plan["mapped"] else None
    for batch in batches(pieces(chunks), len(columns.header), header):
        label = batch.column(columns.label)
        features = [_codes(batch.column(i), categories[i]) if i in categories else batch.column(i)
                    for i in plan["features"]]
        held_out = [label] if columns.id is None else [batch.column(columns.id), label]
        write_columns(writer, label if classes is None else _codes(label, classes), features, held_out)
    return writer.result()


def _codes(column: pa.Array, values: pa.Array) -> pa.Array:
    """Each value's index in values, as text; an empty value stays empty."""
    return pc.fill_null(pc.cast(pc.index_in(column, value_set=values), pa.string()), EMPTY)


def write_columns(writer: SplitWriter, labels: pa.Array, features: list[pa.Array], held_out: list[pa.Array]) -> None:
    """SplitWriter.write for columns: labels as trained, the features as written (numbers and codes: nothing to
    quote), the held-out columns as written."""
    masks = writer.splitter.masks(len(labels))
    chosen = {split: pc.cast(pa.Array.from_buffers(pa.uint8(), len(labels), [None, pa.py_buffer(mask)]), pa.bool_())
              for split, mask in masks.items()}
    train_labels = labels.filter(chosen["train"])
    writer.tally(lambda: _counts(train_labels), lambda: pc.cast(train_labels, pa.float64()).to_pylist())
    rows = pa.RecordBatch.from_arrays([labels, *features], names=[str(i) for i in range(len(features) + 1)])
    test = rows.filter(chosen["test"])
    held = [_quoted(column.filter(chosen["test"])) for column in held_out]
    line = pc.binary_join_element_wise(*held, COMMA) if len(held) > 1 else held[0]
    writer.put(masks, rows.filter(chosen["train"]), rows.filter(chosen["validation"]), test.drop_columns(["0"]),
               pc.binary_join_element_wise(line, EMPTY, LINE_BREAK), _lines)


def _lines(rows: pa.RecordBatch | pa.Array) -> bytes:
    """An object's bytes: rows of values to write as they are (Arrow's writer, no header), or lines as they are
    (an array of them, each ending in a line break)."""
    if isinstance(rows, pa.Array):
        return _data(rows)
    out = pa.BufferOutputStream()
    arrow_csv.write_csv(rows, out, arrow_csv.WriteOptions(include_header=False, quoting_style="none"))
    return out.getvalue().to_pybytes()


def _quoted(column: pa.Array) -> pa.Array:
    """plan.csv_field of each value: quoted (quotes doubled) only when it holds a comma, quote or line break.
    Arrow's own writer quotes every text value, or none."""
    special = pc.match_substring_regex(column, CSV_SPECIAL.pattern)
    if not pc.any(special).as_py():
        return column
    quoted = pc.binary_join_element_wise(QUOTE, pc.replace_substring(column, '"', '""'), QUOTE, EMPTY)
    return pc.if_else(special, quoted, column)


def _counts(labels: pa.Array) -> Counter:
    counted = pc.value_counts(labels)
    return Counter(dict(zip(counted.field("values").to_pylist(), counted.field("counts").to_pylist())))
