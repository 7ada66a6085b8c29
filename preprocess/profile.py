"""The first phase: profile each work item, then merge the profiles into one plan, so that every item
is split with the same column types, category codes and class indices whatever the order the items ran in.

Codes follow the sorted order of the values over the whole dataset, so they do not depend on which item
saw a value first. A profile keeps each column's distinct values while they may be needed as codes: up to
MAX_CATEGORIES for text, NUMBER_VALUES_KEPT while a column holds only numbers (a column that is text in
another shard needs them), and for a numeric label its values while they may be classes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

from .errors import (EmptyDataset, InvalidLabel, InvalidNumber, MalformedRow, MissingLabelColumn, MixedColumn,
                     TooFewRows, TooManyCategories)
from .plan import (IDENTIFIER_EVIDENCE, MAX_CLASSES_FROM_INTEGERS, Columns, NumericLabelWatch, classification,
                   first_past_float32, identifier_like, not_finite, number_values, past_float32_message, problem_type)
from .rowsplit import RowSplitter, SPLITS

MAX_CATEGORIES = 50_000          # distinct values a text column may have (more looks like an identifier)
NUMBER_VALUES_KEPT = 1_000       # distinct values kept of a column that holds only numbers
MIN_ROWS = 10
EXACT_SPLIT_COUNT_ROWS = 5_000_000   # up to this many rows, the plan counts each split before splitting


@dataclass
class ColumnProfile:
    """One column of an item: only numbers so far or not, and its distinct values while they are few
    enough (str from the csv path; bytes from the numeric path, decoded in the summary)."""
    numeric: bool = True
    values: set | None = field(default_factory=set)

    def add(self, column, numeric: bool, text_limit: int, number_limit: int) -> None:
        self.numeric = self.numeric and numeric
        if self.values is not None:
            self.values.update(column)
            if len(self.values) > (number_limit if self.numeric else text_limit):
                self.values = None

    def summary(self) -> dict:
        values = None if self.values is None else sorted(
            value.decode() if isinstance(value, bytes) else value for value in self.values)
        return {"numeric": self.numeric, "values": values}


def item_profile(rows: int, features: dict[int, ColumnProfile], label: ColumnProfile,
                 watch: NumericLabelWatch) -> dict:
    """What an item's profile holds, whichever path read it."""
    return {"rows": rows, "columns": {str(i): profile.summary() for i, profile in features.items()},
            "label": {**label.summary(), "identity": _identity(watch) if label.numeric else None}}


class Restart(Exception):
    """A column turned to text after its numbers were no longer kept: read the item again."""

    def __init__(self, text: set[int]):
        self.text = text


def profile_item(batches: Iterable[tuple[int, list[list[str]]]], columns: Columns, where: str,
                 text: frozenset[int] = frozenset()) -> dict:
    """Rows, and per label and feature column: only numbers or not, and its distinct values while they
    are few enough. text: columns known to be text (a restart)."""
    width = len(columns.header)
    profiles = {i: ColumnProfile(numeric=i not in text) for i in columns.features}
    label = ColumnProfile(numeric=columns.label not in text)
    watch = NumericLabelWatch(columns.label_name)
    rows = 0
    for row, batch in batches:
        if set(map(len, batch)) != {width}:
            index = next(i for i, fields in enumerate(batch) if len(fields) != width)
            raise MalformedRow(f"{where}, row {row + index}: expected {width} fields, found {len(batch[index])}")
        table = list(zip(*batch))
        labels = table[columns.label]
        if "" in labels:
            raise InvalidLabel(f"{where}, row {row + labels.index('')}: the label column {columns.label_name!r} "
                               "is empty")
        for i in columns.features:
            profile = profiles[i]
            was_numeric = profile.numeric and profile.values is None
            numbers = number_values(table[i], empty=True) if profile.numeric else None
            numeric = numbers is not None
            if profile.numeric and not numeric:
                _finite(table[i], row, columns.header[i], where)
            elif numeric and numbers.may_be_large:
                _within_float32(table[i], row, columns.header[i], where)
            profile.add(table[i], numeric, MAX_CATEGORIES, NUMBER_VALUES_KEPT)
            if was_numeric and not profile.numeric:
                raise Restart(set(text) | {i})
        distinct = set(labels)
        numbers = number_values(distinct) if label.numeric else None
        numeric_label = numbers is not None
        if label.numeric and not numeric_label:
            _finite(labels, row, columns.label_name, where)
        elif numeric_label and numbers.may_be_large:
            _within_float32(labels, row, columns.label_name, where)
        if label.values is None and label.numeric and not numeric_label:
            raise Restart(set(text) | {columns.label})
        label.add(distinct, numeric_label, MAX_CATEGORIES, MAX_CLASSES_FROM_INTEGERS)
        if label.numeric:
            watch.add(labels)
        rows += len(batch)
    return item_profile(rows, profiles, label, watch)


def _finite(values, row: int, name: str, where: str) -> None:
    """Refuses a nan or inf among numbers (plan.not_finite), naming its row, column and value."""
    index = not_finite(values)
    if index is not None:
        raise InvalidNumber(f"{where}, row {row + index}, column {name!r}: {values[index]!r} among numbers; nan "
                            "and inf are refused: write a missing value as an empty field")


def _within_float32(values, row: int, name: str, where: str) -> None:
    """Refuses a number float32 cannot hold (plan.past_float32), naming its row, column and value."""
    index = first_past_float32(values)
    if index is not None:
        raise InvalidNumber(past_float32_message(where, row + index, name, values[index]))


def profile_with_restarts(profile: Callable[[frozenset[int]], dict]) -> dict:
    """profile(text) over fresh rows, again with more text columns (text) if one turned late (Restart)."""
    text: frozenset[int] = frozenset()
    while True:
        try:
            return profile(text)
        except Restart as restart:
            text = frozenset(restart.text)


def _identity(watch: NumericLabelWatch) -> list[str] | None:
    """The label's values while they are distinct whole numbers (the evidence that it is an identifier)."""
    return None if watch.seen is None else sorted(watch.seen, key=float)


def merge_profiles(profiles: list[dict], columns: Columns, where: list[str], ratios: dict[str, float],
                   seed: int, streams: list[str]) -> dict:
    """One plan for every item (where[i] names item i in messages, streams[i] is its split draws): which
    features are text and their codes, which text columns are identifiers, the label's classes."""
    rows = sum(profile["rows"] for profile in profiles)
    if rows == 0:
        raise EmptyDataset(f"{where[0] if len(where) == 1 else 'the dataset'} has a header but no data rows")
    if rows < MIN_ROWS:
        raise TooFewRows(f"the dataset has {rows} data rows; at least {MIN_ROWS} are needed to train, validate "
                         "and test")
    categories, identifiers = {}, []
    for i in columns.features:
        column = [profile["columns"][str(i)] for profile in profiles]
        if all(part["numeric"] for part in column):
            continue
        values = _union(column, columns.header[i], where)
        count = MAX_CATEGORIES + 1 if values is None else len(values - {""})
        if identifier_like(count, rows):
            many = f"more than {MAX_CATEGORIES}" if values is None else str(count)
            identifiers.append({"name": columns.header[i],
                                "reason": f"identifier: {many} distinct values in {rows} rows"})
        elif values is None:
            raise TooManyCategories(f"column {columns.header[i]!r} has more than {MAX_CATEGORIES} distinct "
                                    "non-numeric values; leave it out with ignoreColumns")
        else:
            categories[str(i)] = sorted(values - {""})
    label = [profile["label"] for profile in profiles]
    name = columns.label_name
    if all(part["numeric"] for part in label):
        watch = NumericLabelWatch(name)
        for part in label:
            if part["identity"] is None:
                watch.seen = None
            watch.add((part["identity"] or [])[:IDENTIFIER_EVIDENCE])
        watch.check()
        values = None if any(part["values"] is None for part in label) else set().union(
            *(part["values"] for part in label))
        kind, classes = problem_type(name, values)
        mapped = classes is not None and classes != [str(code) for code in range(len(classes))]
    else:
        values = _union(label, name, where)
        if values is None:
            raise TooManyCategories(f"label column {name!r} has more than {MAX_CATEGORIES} distinct non-numeric "
                                    "values; set labelColumn to the column to predict")
        classes = sorted(values)
        kind, mapped = classification(name, classes, rows=rows), True
    if rows <= EXACT_SPLIT_COUNT_ROWS:
        _check_splits([profile["rows"] for profile in profiles], streams, ratios, seed)
    left_out = {identifier["name"] for identifier in identifiers}
    if all(columns.header[i] in left_out for i in columns.features):
        reasons = "; ".join(f"{identifier['name']}: {identifier['reason']}" for identifier in identifiers)
        raise MissingLabelColumn(f"every feature column looks like an identifier ({reasons}); there is nothing to "
                                 "learn from: add feature columns, or set labelColumn to the column to predict")
    return {"problem": kind, "classes": classes, "mapped": mapped, "categories": categories,
            "features": [i for i in columns.features if columns.header[i] not in left_out],
            "identifiers": identifiers, "rows": rows}


def _union(parts: list[dict], name: str, where: list[str]) -> set[str] | None:
    """A text column's values over every item; None when some item had too many text values to keep.
    An item where the column held too many distinct numbers to keep cannot be coded: MixedColumn."""
    values: set[str] = set()
    for index, part in enumerate(parts):
        if part["values"] is None:
            if part["numeric"]:
                text = next(where[i] for i, other in enumerate(parts) if not other["numeric"])
                raise MixedColumn(f"column {name!r} holds text in {text} but more than {NUMBER_VALUES_KEPT} "
                                  f"distinct numbers in {where[index]}: make it one type in every shard, or leave "
                                  "it out with ignoreColumns")
            return None
        values.update(part["values"])
    return values


def _check_splits(rows: list[int], streams: list[str], ratios: dict[str, float], seed: int) -> None:
    """The split of an item's row i depends only on i, the seed and the item's stream, so the plan knows
    each split's size."""
    counts = dict.fromkeys(SPLITS, 0)
    for count, stream in zip(rows, streams):
        for split, mask in RowSplitter(ratios, seed, stream).masks(count).items():
            counts[split] += mask.count(1)
    empty = [split for split in SPLITS if counts[split] == 0]
    if empty:
        raise TooFewRows(f"the dataset's {sum(rows)} data rows leave the {', '.join(empty)} split empty; add rows "
                         "or change splitRatios")
