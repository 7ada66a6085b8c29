"""Split one dataset: the numeric fast path when it applies, else the general path."""
from __future__ import annotations

import gc
import json
from contextlib import contextmanager
from itertools import chain
from typing import Callable, Iterable

from . import general, numeric
from .errors import EmptyDataset, TooFewRows
from .plan import Columns, Request, find_columns
from .rowsplit import RowSplitter, SPLITS
from .sink import Outputs

MIN_ROWS = 10


def _finish(result: dict, columns: Columns, outputs: Outputs, where: str, check: Callable[[dict], None]) -> dict:
    """Check the split (and with check, what the caller plans from it), write the schema, and only then
    commit every output."""
    total = sum(result["counts"].values())
    if total == 0:
        raise EmptyDataset(f"{where} has a header but no data rows")
    if total < MIN_ROWS:
        raise TooFewRows(f"{where} has {total} data rows; at least {MIN_ROWS} are needed to train, validate and test")
    empty = [split for split in SPLITS if result["counts"][split] == 0]
    if empty:
        raise TooFewRows(f"{where}: {total} data rows leave the {', '.join(empty)} split empty; "
                         "add rows or change splitRatios")
    check(result)
    ignored = columns.left_out() + result.get("ignored", [])
    schema = {"dataset": where,
              "label": {"name": columns.label_name, "classes": result["classes"], **result["labelStats"]},
              "id": None if columns.id is None else columns.header[columns.id],
              "features": result["features"], "ignored": ignored, "problem": result["problem"],
              "rows": result["counts"]}
    outputs["schema"].write(json.dumps(schema, indent=2).encode())
    outputs.commit()
    return {**result, "ignored": ignored, "schema": schema}


@contextmanager
def _no_cyclic_gc():
    """The split allocates millions of short-lived rows and no cycles; the cyclic collector
    would only rescan them (about a quarter of the time on text data)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def split_dataset(open_chunks: Callable[[], Iterable[bytes]], where: str, request: Request,
                  make_outputs: Callable[[], Outputs], check: Callable[[dict], None] = lambda result: None) -> dict:
    """check sees the profile (problem, classes) before anything is committed: an error it raises
    leaves nothing behind."""
    with _no_cyclic_gc():
        return _split(open_chunks, where, request, make_outputs, check)


def _split(open_chunks, where, request, make_outputs, check) -> dict:
    chunks = iter(open_chunks())
    try:
        header, rest = numeric.read_header(chunks, where)
        columns = find_columns(header, request, where)
        with make_outputs() as outputs:
            result = numeric.split_numeric(chain([rest], chunks), columns,
                                           RowSplitter(request.ratios, request.seed), outputs)
            return {**_finish(result, columns, outputs, where, check), "path": "numeric"}
    except numeric.NotNumeric:
        pass
    finally:
        close = getattr(chunks, "close", None)
        if close:
            close()
    header = general.read_header(open_chunks, where)
    if not header:
        raise EmptyDataset(f"{where} is empty (no header row)")
    columns = find_columns(header, request, where)
    result = general.split_general(
        open_chunks, columns, lambda: RowSplitter(request.ratios, request.seed), make_outputs,
        lambda result, outputs: _finish(result, columns, outputs, where, check), where)
    return {**result, "path": "general"}
