"""Split each work item with the plan, then put the items' results together.

Row i of an item goes to train, validation or test by the seed, the item's stream and i alone (rowsplit.py),
so an item's split does not depend on the order the items run in or on any other item. An item of numbers
only is split in the same read as it is profiled (numeric.profile_any), its labels as written; it is split
again only when the merged plan needs codes or other columns. An item writes its train rows as one object
per training host and its test rows as one object per transform instance (ShardedByS3Key and a batch
transform share objects, not rows); its held-out labels go beside its test features, object for object,
with the labels file's header in each.
"""
from __future__ import annotations

import math
from collections import Counter
from itertools import chain, compress, repeat
from typing import Callable, Iterable

from . import layout
from .errors import TooFewRows
from .plan import FEATURES_PART, MAX_CLASSES_FROM_INTEGERS, Columns, csv_field, labels_header
from .rowsplit import RowSplitter, SPLITS


def output_keys(prefix: str, item: int, training_hosts: int, transform_instances: int) -> dict[str, str]:
    """The objects one item writes, by output name: train0.., validation, test0.., labels0.. ."""
    keys = {f"train{k}": f"{prefix}{layout.TRAIN_DIR}{layout.part_name(item, k)}" for k in range(training_hosts)}
    keys["validation"] = f"{prefix}{layout.VALIDATION_DIR}{layout.part_name(item)}"
    for k in range(transform_instances):
        keys[f"test{k}"] = f"{prefix}{layout.TEST_FEATURES_DIR}{layout.part_name(item, k)}"
        keys[f"labels{k}"] = f"{prefix}{layout.TEST_LABELS_DIR}{layout.part_name(item, k)}"
    return keys


def _deal(rows, dealt: int, parts: int) -> list:
    """rows (a list or an Arrow array) continue a sequence of which dealt were dealt already: part k gets every
    row whose index in the sequence is k modulo parts."""
    return [rows[(k - dealt) % parts::parts] for k in range(parts)]


def _lines(rows: list) -> bytes:
    """Rows (str or bytes) as the lines of an object."""
    return b"\n".join(rows) + b"\n" if isinstance(rows[0], bytes) else ("\n".join(rows) + "\n").encode()


class SplitWriter:
    """Writes an item's rows, batch by batch, however they were read (the csv module or the numeric fast
    path, as str or bytes; Arrow, as its arrays): train rows dealt to one object per training host, test
    rows (features without the label, and their held-out labels beside them) to one pair of objects per
    transform instance.
    regression None: not known yet (a split in the profile's read), so the train labels are counted while
    they may be classes, and summed batch by batch (from the batch's counts while they are kept) in case
    they are not."""

    def __init__(self, outputs, columns: Columns, splitter: RowSplitter, regression: bool | None,
                 training_hosts: int, transform_instances: int):
        self.outputs, self.splitter, self.regression = outputs, splitter, regression
        self.hosts, self.instances = training_hosts, transform_instances
        self.counts = dict.fromkeys(SPLITS, 0)
        self.written: Counter = Counter()
        self.label_counts: Counter | None = Counter()
        self.label_sums: list[float] = []
        header = labels_header(columns).encode()
        for k in range(transform_instances):
            outputs[f"labels{k}"].write(header)

    def write(self, joined: list, labels: list, held_out: list[tuple], quote=None) -> None:
        """joined: label-first rows as training reads them; labels: their label as trained (a class code or
        a number); held_out: the held-out labels file's columns as written (the id column first, with one,
        then the label), each quoted with quote, when given, for the test rows only."""
        masks = self.splitter.masks(len(joined))
        train_labels = list(compress(labels, masks["train"]))
        self.tally(lambda: Counter(train_labels), lambda: map(float, train_labels))
        comma = b"," if isinstance(joined[0], bytes) else ","
        test = list(map(FEATURES_PART, map(type(comma).partition, compress(joined, masks["test"]), repeat(comma))))
        columns = [compress(column, masks["test"]) for column in held_out]
        if quote is not None:
            columns = [map(quote, column) for column in columns]
        held = list(map(comma.join, zip(*columns))) if len(columns) > 1 else list(columns[0])
        self.put(masks, list(compress(joined, masks["train"])), list(compress(joined, masks["validation"])), test,
                 held, _lines)

    def tally(self, counts: Callable[[], Counter], numbers: Callable[[], Iterable[float]]) -> None:
        """Counts (classes) or sums (regression) the batch's train labels, given as their counts and as numbers."""
        if self.regression is None and self.label_counts is not None:
            # The batch's sum from its counts: fsum is exact whatever the order, so it is the regression's own.
            batch = counts()
            self.label_sums.append(math.fsum(chain.from_iterable(map(repeat, map(float, batch), batch.values()))))
            self.label_counts.update(batch)
            if len(self.label_counts) > MAX_CLASSES_FROM_INTEGERS:
                self.label_counts = None
        elif self.regression is False:
            self.label_counts.update(counts())
        else:
            self.label_sums.append(math.fsum(numbers()))

    def put(self, masks: dict[str, bytes], train, validation, test, held, lines: Callable) -> None:
        """A batch's rows by split (lists, or Arrow arrays of lines; lines(rows) makes an object's bytes): train
        dealt to one object per training host, test features and their held-out labels to one pair per
        transform instance."""
        for k, rows in enumerate(_deal(train, self.counts["train"], self.hosts)):
            self._put(f"train{k}", rows, lines)
        self._put("validation", validation, lines)
        features = _deal(test, self.counts["test"], self.instances)
        for k, rows in enumerate(_deal(held, self.counts["test"], self.instances)):
            if len(rows):
                self.outputs[f"labels{k}"].write(lines(rows))
                self._put(f"test{k}", features[k], lines)
        for split, mask in masks.items():
            self.counts[split] += mask.count(1)

    def _put(self, name: str, rows, lines: Callable) -> None:
        if len(rows):
            self.outputs[name].write(lines(rows))
            self.written[name] += len(rows)

    def result(self) -> dict:
        """Counts per split and per object, and the train labels' counts (classes) or sum (regression), or
        both (regression None; no counts when there were too many values to be classes)."""
        labels = {}
        if self.regression is not False:
            labels["trainSum"] = math.fsum(self.label_sums)
        if self.regression is not True:
            labels["trainCounts"] = None if self.label_counts is None else {
                (key.decode() if isinstance(key, bytes) else key): count for key, count in self.label_counts.items()}
        return {"counts": self.counts, "written": dict(self.written), **labels}


def split_item(batches: Iterable[tuple[int, list[list[str]]]], columns: Columns, plan: dict,
               writer: SplitWriter) -> dict:
    """The csv path: label first, codes for text columns and mapped classes, the rest as written."""
    categories = {int(i): {"": "", **{value: str(code) for code, value in enumerate(values)}}
                  for i, values in plan["categories"].items()}
    classes = {value: str(code) for code, value in enumerate(plan["classes"] or [])} if plan["mapped"] else None
    features = plan["features"]
    for _, batch in batches:
        table = list(zip(*batch))
        label = table[columns.label]
        label_values = list(map(classes.__getitem__, label)) if classes is not None else label
        encoded = [list(map(categories[i].__getitem__, table[i])) if i in categories else table[i] for i in features]
        held_out = [label] if columns.id is None else [table[columns.id], label]
        writer.write(list(map(",".join, zip(label_values, *encoded))), label_values, held_out, quote=csv_field)
    return writer.result()


def empty_outputs(written: dict[str, int], names: Iterable[str]) -> list[str]:
    """The outputs an item wrote no row to (left out: a host or instance would get an empty object);
    a labels object goes with its test object."""
    empty = [name for name in names if not name.startswith("labels") and not written.get(name)]
    return empty + [f"labels{name[len('test'):]}" for name in empty if name.startswith("test")]


def combine(results: list[dict], plan: dict) -> dict:
    """The items' results together: rows per split, and the train labels' counts per class (in class
    order) or mean, the baselines the Evaluate step measures against."""
    counts = {split: sum(result["counts"][split] for result in results) for split in SPLITS}
    empty = [split for split in SPLITS if counts[split] == 0]
    if empty:
        raise TooFewRows(f"the dataset's {sum(counts.values())} data rows leave the {', '.join(empty)} split empty; "
                         "add rows or change splitRatios")
    if plan["problem"] == "regression":
        stats = {"trainMean": math.fsum(result["trainSum"] for result in results) / counts["train"]}
    else:
        keys = [str(code) for code in range(len(plan["classes"]))] if plan["mapped"] else plan["classes"]
        stats = {"trainCounts": [sum(result["trainCounts"].get(key, 0) for result in results) for key in keys]}
    return {"counts": counts, "labelStats": stats}
