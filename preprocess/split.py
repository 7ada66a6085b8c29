"""The second phase: split each work item with the merged plan, then put the items' results together.

Row i of the dataset (counted over the items in order) goes to train, validation or test by the seed and i
alone (rowsplit.py), so the split does not depend on how the dataset is cut into shards or ranges. An item
writes its train rows as one object per training host and its test rows as one object per transform
instance (ShardedByS3Key and a batch transform share objects, not rows); its held-out labels go beside its
test features, object for object, with the labels file's header in each.
"""
from __future__ import annotations

import math
from collections import Counter
from itertools import compress, repeat
from typing import Iterable

from . import layout
from .errors import TooFewRows
from .plan import FEATURES_PART, Columns, csv_field, labels_header
from .rowsplit import RowSplitter, SPLITS


def output_keys(prefix: str, item: int, training_hosts: int, transform_instances: int) -> dict[str, str]:
    """The objects one item writes, by output name: train0.., validation, test0.., labels0.. ."""
    keys = {f"train{k}": f"{prefix}{layout.TRAIN_DIR}{layout.part_name(item, k)}" for k in range(training_hosts)}
    keys["validation"] = f"{prefix}{layout.VALIDATION_DIR}{layout.part_name(item)}"
    for k in range(transform_instances):
        keys[f"test{k}"] = f"{prefix}{layout.TEST_FEATURES_DIR}{layout.part_name(item, k)}"
        keys[f"labels{k}"] = f"{prefix}{layout.TEST_LABELS_DIR}{layout.part_name(item, k)}"
    return keys


def _deal(rows: list, dealt: int, parts: int) -> list[list]:
    """rows continue a sequence of which dealt were dealt already: part k gets every row whose index
    in the sequence is k modulo parts."""
    return [rows[(k - dealt) % parts::parts] for k in range(parts)]


def split_item(batches: Iterable[tuple[int, list[list[str]]]], columns: Columns, plan: dict, splitter: RowSplitter,
               outputs, training_hosts: int, transform_instances: int) -> dict:
    """Write the item's rows (label first, codes for text; test features without the label) and return
    its counts per split and per object, and its train labels' counts (classes) or sum (regression)."""
    categories = {int(i): {"": "", **{value: str(code) for code, value in enumerate(values)}}
                  for i, values in plan["categories"].items()}
    classes = {value: str(code) for code, value in enumerate(plan["classes"] or [])} if plan["mapped"] else None
    features = plan["features"]
    counts = dict.fromkeys(SPLITS, 0)
    written = Counter()
    label_counts: Counter = Counter()
    label_sum = []
    header = labels_header(columns).encode()
    for k in range(transform_instances):
        outputs[f"labels{k}"].write(header)
    for _, batch in batches:
        table = list(zip(*batch))
        label = table[columns.label]
        label_values = list(map(classes.__getitem__, label)) if classes is not None else label
        encoded = [list(map(categories[i].__getitem__, table[i])) if i in categories else table[i] for i in features]
        joined = list(map(",".join, zip(label_values, *encoded)))
        masks = splitter.masks(len(joined))
        train = list(compress(joined, masks["train"]))
        train_labels = list(compress(label_values, masks["train"]))
        if plan["problem"] == "regression":
            label_sum.append(math.fsum(map(float, train_labels)))
        else:
            label_counts.update(train_labels)
        for k, rows in enumerate(_deal(train, counts["train"], training_hosts)):
            if rows:
                outputs[f"train{k}"].write(("\n".join(rows) + "\n").encode())
                written[f"train{k}"] += len(rows)
        validation = list(compress(joined, masks["validation"]))
        if validation:
            outputs["validation"].write(("\n".join(validation) + "\n").encode())
            written["validation"] += len(validation)
        test = list(map(FEATURES_PART, map(str.partition, compress(joined, masks["test"]), repeat(","))))
        held_out = map(csv_field, compress(label, masks["test"]))
        if columns.id is not None:
            held_out = map(",".join, zip(map(csv_field, compress(table[columns.id], masks["test"])), held_out))
        dealt_features = _deal(test, counts["test"], transform_instances)
        for k, labels in enumerate(_deal(list(held_out), counts["test"], transform_instances)):
            if labels:
                outputs[f"test{k}"].write(("\n".join(dealt_features[k]) + "\n").encode())
                outputs[f"labels{k}"].write(("\n".join(labels) + "\n").encode())
                written[f"test{k}"] += len(labels)
        for split, mask in masks.items():
            counts[split] += mask.count(1)
    labels = ({"trainSum": math.fsum(label_sum)} if plan["problem"] == "regression"
              else {"trainCounts": dict(label_counts)})
    return {"counts": counts, "written": dict(written), **labels}


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
