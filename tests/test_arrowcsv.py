"""The csv path through Arrow: the same profile, plan and bytes as the csv module, or the csv module itself where
Arrow might read otherwise (and then its named error)."""
import csv
import itertools
import subprocess
import sys

import pyarrow as pa
import pytest

from preprocess import arrowcsv, errors
from preprocess.csvrows import last_record_end
from sagestep import ROOT
from preprocess.numeric import profile_any, split_any
from preprocess.plan import NUMBER, Columns, Request, find_columns, past_float32
from preprocess.profile import merge_profiles
from preprocess.rowsplit import RowSplitter
from preprocess.sink import Outputs
from preprocess.split import SplitWriter, output_keys

RATIOS = {"train": 0.7, "validation": 0.15, "test": 0.15}


class MemoryOutput:
    def __init__(self):
        self.data, self.committed = bytearray(), b""

    def write(self, data: bytes) -> None:
        self.data += data

    def commit(self) -> None:
        self.committed = bytes(self.data)

    def abort(self) -> None:
        self.data.clear()


def preprocess(text: str, csv_module: bool, monkeypatch, chunk: int = 1 << 20, hosts: int = 1, instances: int = 1,
               label: str | None = None, id_column: str | None = None) -> dict:
    """One item's profile, plan and split, through Arrow or (csv_module) as the csv module reads it."""
    data = text.encode()
    pieces = [data[i:i + chunk] for i in range(0, len(data), chunk)]
    header = next(csv.reader([text.splitlines()[0]]))
    request = Request(bucket="", key="d.csv", label_column=label, execution_name="x", execution_arn="x",
                      hyperparameters={}, ratios=RATIOS, seed=7, id_column=id_column)
    columns = find_columns(header, request, "d.csv")
    with monkeypatch.context() as patch:
        if csv_module:
            patch.setattr(arrowcsv, "profile_item", lambda *args: (_ for _ in ()).throw(arrowcsv.Unsure("forced")))
        profile, path, _ = profile_any(lambda: iter(pieces), "d.csv", header, False, columns)
    plan = merge_profiles([profile], columns, ["d.csv"], RATIOS, 7, [""])
    outputs = Outputs({name: MemoryOutput() for name in output_keys("", 0, hosts, instances)})
    result, split_path = split_any(lambda: iter(pieces), "d.csv", header, False, columns, plan,
                                   lambda: SplitWriter(outputs, columns, RowSplitter(RATIOS, 7), plan["problem"] ==
                                                       "regression", hosts, instances), outputs, path)
    outputs.commit()
    return {"profile": profile, "path": path, "split path": split_path, "plan": plan, "result": result,
            "objects": {name: output.committed for name, output in outputs.outputs.items()}}


def rows(count: int, row) -> str:
    return "".join(row(i) for i in range(count))


DATASETS = {
    "quoted text, doubled quotes, commas, line breaks": "n,city,note,label\n" + rows(
        300, lambda i: f'{i * 0.25},"{["Paris", "New York, NY", "The ""Big"" Smoke", "São Paulo"][i % 4]}",'
                       f'{["", chr(34) + "two" + chr(10) + "lines" + chr(34), "plain"][i % 3]},'
                       f'{["stay", "churn"][i % 2]}\n'),
    "crlf, blank lines, empty fields": "a,b,kind,label\r\n" + rows(
        200, lambda i: f"{i},{'' if i % 5 == 0 else i / 3},{['x', '', 'y'][i % 3]},{i % 3}\r\n"
                       + ("\r\n" if i % 7 == 0 else "")),
    "a column of numbers that turns to text late (a restart)": "a,code,label\n" + rows(
        4000, lambda i: f"{i},{i if i < 3500 else 'Z' + str(i % 9)},{i % 2}\n"),
    "labels 1 and 2 (classes mapped), an id column": "id,a,b,label\n" + rows(
        300, lambda i: f'"row, {i}",{i % 11},{["p", "q"][i % 2]},{1 + i % 2}\n'),
    "a regression beside a text column": "a,b,target\n" + rows(
        400, lambda i: f"{['u', 'v', 'w'][i % 3]},{i % 17},{i * 1.37 - 50:.3f}\n"),
    "a text column of numbers and words, 'nan' and 1e39 after the first word": "a,b,label\n" + rows(
        300, lambda i: f"{i},{[str(i), 'word', 'nan', '1e39'][i % 4] if i > 2 else 'word'},{['yes', 'no'][i % 2]}\n"),
    "lone carriage returns, 'ınf' (a dotless i) among numbers": "a,b,label\r" + rows(
        100, lambda i: f"{i},{'ınf' if i == 3 else i % 7},{['p', 'q'][i % 2]}\r"),
    "no line break at the end": "a,b,label\n" + rows(50, lambda i: f'{i},"x{i % 3}",{i % 2}\n') + '9,"x1",1',
}


@pytest.mark.parametrize("name", DATASETS)
def test_arrow_profiles_and_splits_as_the_csv_module_does(name, monkeypatch):
    text = DATASETS[name]
    through_arrow = preprocess(text, False, monkeypatch, chunk=997)
    by_csv_module = preprocess(text, True, monkeypatch)
    assert (through_arrow["path"], through_arrow["split path"]) == ("arrow", "arrow")
    assert (by_csv_module["path"], by_csv_module["split path"]) == ("csv module", "csv module")
    for part in ("profile", "plan", "objects"):
        assert through_arrow[part] == by_csv_module[part], part
    arrow_result, csv_result = through_arrow["result"], by_csv_module["result"]
    if "trainSum" in csv_result:
        # Summed per batch, and Arrow's batches are larger than the csv module's: equal to the last bits.
        assert arrow_result.pop("trainSum") == pytest.approx(csv_result.pop("trainSum"), rel=1e-12)
    assert arrow_result == csv_result
    assert sum(csv_result["counts"].values()) == through_arrow["plan"]["rows"]


def test_rows_are_dealt_to_hosts_and_instances_as_the_csv_module_deals_them(monkeypatch):
    text = DATASETS["labels 1 and 2 (classes mapped), an id column"]
    through_arrow = preprocess(text, False, monkeypatch, hosts=3, instances=2, id_column="id")
    by_csv_module = preprocess(text, True, monkeypatch, hosts=3, instances=2, id_column="id")
    assert through_arrow["path"] == "arrow" and through_arrow["objects"] == by_csv_module["objects"]
    assert through_arrow["objects"]["labels1"].startswith(b'id,label\n"row, ')


# Bytes that Arrow would read where the csv module refuses them, or a rule the csv module judges per batch: each is
# left to the csv module, which gives its named error (or its own result).
REFUSED = {
    'a closing quote followed by text ("a"b)': ('a,b,label\n1,"x"y,0\n', errors.MalformedRow,
                                                "',' expected after '\"': a quoted field ends at a quote followed"),
    "a quote left open at the end": ('a,b,label\n1,2,0\n1,"x,1\n', errors.MalformedRow,
                                     "unexpected end of data: a quoted field is not closed"),
    "a field past the csv module's limit": ("a,b,label\n1," + "x" * 131073 + ",0\n", errors.MalformedRow,
                                            "field larger than field limit .*: a field may hold at most 131,072"),
    "a row of two fields": ("a,b,label\n1,2,0\n1,2\n", errors.MalformedRow, "row 3: expected 3 fields, found 2"),
    "a row of one blank": ("a,b,label\n1,2,0\n \n", errors.MalformedRow, "row 3: expected 3 fields, found 1"),
    "another header": ("a,c,label\n1,2,0\n", errors.HeaderMismatch, "has the header 'a,c,label'"),
    "bytes that are not UTF-8": ("a,b,label\n1,\udcff,0\n", errors.InvalidEncoding, "is not UTF-8"),
    "an empty label": ('a,b,label\n1,"x",0\n2,"y",\n', errors.InvalidLabel, "row 3: the label column 'label' is empty"),
    "nan before the batch where a column turns to text": (
        'a,b,label\n' + "1,2,0\n" * 30 + '1,nan,0\n' + "1,2,0\n" * 2100 + '"2",x,1\n', errors.InvalidNumber,
        "row 32, column 'b': 'nan' among numbers"),
    "a number past float32 among numbers": ('a,b,label\n"1",1e39,0\n', errors.InvalidNumber, "1e39 is past float32"),
}


@pytest.mark.parametrize("name", REFUSED)
def test_what_arrow_might_read_otherwise_gets_the_csv_modules_named_error(name, monkeypatch):
    text, error, message = REFUSED[name]
    data = text.encode("utf-8", "surrogateescape")
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        profile_any(lambda: [data], "d.csv", ["a", "b", "label"], False, Columns(("a", "b", "label"), 2))
    columns = Columns(("a", "b", "label"), 2)
    with pytest.raises(arrowcsv.Unsure):
        arrowcsv.profile_item([data], ["a", "b", "label"], False, columns)


@pytest.mark.parametrize("text, path", [
    ('a,b,label\n1,5\'11",0\n2,6\'1",1\n', "csv module"),          # a quote inside an unquoted field
    ('a,b,label\n1,"x",1\n2,"y",0\n3,7,1\n', "arrow"),
    ('a,b,label\n1,x,nan\n2,y,stay\n', "csv module"),               # nan among the labels' text
    ('a,b,label\n1,x,3\n2,y,stay\n', "csv module"),                 # a label of numbers and text
])
def test_the_path_an_item_takes(text, path):
    columns = Columns(("a", "b", "label"), 2)
    assert profile_any(lambda: [text.encode()], "d.csv", ["a", "b", "label"], False, columns)[1] == path


def test_a_byte_range_that_starts_with_a_byte_order_mark_is_read_by_the_csv_module():
    """Arrow drops the mark at the start of its stream; the csv module keeps it in the first field."""
    columns = Columns(("a", "b", "label"), 2)
    data = "\ufeff1,x,0\n2,y,1\n".encode()
    profile, path, _ = profile_any(lambda: [data[:2], data[2:]], "d.csv (bytes 9-30)", None, True, columns)
    assert path == "csv module" and profile["columns"]["0"]["values"] == ["2", "\ufeff1"]


def test_a_line_break_in_a_field_of_a_byte_range_is_the_csv_modules_multiline_error():
    columns = Columns(("a", "b", "label"), 2)
    data = b'1,"two\nlines",0\n2,x,1\n'
    with pytest.raises(errors.MultilineRecord, match="a quoted field holds a line break"):
        profile_any(lambda: [data], "d.csv (bytes 5-9)", None, True, columns)


def test_the_quote_check_does_not_depend_on_where_chunks_are_cut():
    good = b'a,"x, ""y""\n z",c\r\n"",1,""""\n"q",\n' * 3
    bad = [b'a,"x"y,c\n', b'a,b"c",d\n', b'a,"x\n', b'"a"\n"b" \n', b'a,""x\n', "\ufeffa,b\n".encode()]
    for data, ok in [(good, True)] + [(case, False) for case in bad]:
        for cut in range(len(data) + 1):
            whole = list(arrowcsv.pieces([data[:cut], data[cut:]]))
            assert b"".join(whole) == data and all(last_record_end(piece) == len(piece) for piece in whole[:-1])
            if ok:
                assert list(arrowcsv.checked(whole)) == whole
            else:
                with pytest.raises(arrowcsv.Unsure):
                    list(arrowcsv.checked(whole))
    # A byte order mark inside a piece is a value's, as for the csv module; at a piece's start, Arrow would drop it.
    data = "a,b\n\ufeffc,d\n".encode()
    for cut in range(len(data) + 1):
        try:
            read = list(arrowcsv.batches(arrowcsv.checked(arrowcsv.pieces([data[:cut], data[cut:]])), 2, None))
        except arrowcsv.Unsure:
            continue
        assert [value for batch in read for value in batch.column(0).to_pylist()] == ["a", "\ufeffc"], cut


def test_arrows_cast_takes_exactly_the_numbers_among_number_characters():
    """_numbers' cast: over every string of up to 5 number characters, alone and beside an empty value."""
    for size in range(1, 6):
        for chars in itertools.product("0.eE+-", repeat=size):
            value = "".join(chars)
            expected = NUMBER.fullmatch(value) is not None
            assert arrowcsv._numbers(pa.array([value])) is expected, value
            assert arrowcsv._numbers(pa.array([value, ""])) is expected, value


@pytest.mark.parametrize("value", ["3.4028234e38", "3.40282356e38", "340282356779733661637539395458142568447",
                                   "340282356779733661637539395458142568448", "3.4028236e38", "-3.5e38", "1e999",
                                   "-1e38", "1e-50"])
def test_a_number_past_float32_is_unsure_exactly_where_plan_refuses_it(value):
    for column in ([value], [value, ""]):      # the cast alone, and the cast after the pattern (an empty value)
        if past_float32(value):
            with pytest.raises(arrowcsv.Unsure):
                arrowcsv._numbers(pa.array(column))
        else:
            assert arrowcsv._numbers(pa.array(column)) is True


def test_an_item_of_numbers_in_a_dataset_with_text_is_split_through_arrow_as_the_csv_module_splits_it():
    header = ["a", "b", "label"]
    columns = Columns(tuple(header), 2)
    numbers = ("a,b,label\n" + rows(300, lambda i: f"{i % 13},{i * 0.5},{i % 2}\n")).encode()
    text = ("a,b,label\n" + rows(300, lambda i: f"{['x', 'y', ''][i % 3]},{i},{i % 2}\n")).encode()
    found = [profile_any(lambda data=data: [data], "d.csv", header, False, columns) for data in (numbers, text)]
    assert [path for _, path, _ in found] == ["numeric", "arrow"]
    plan = merge_profiles([profile for profile, _, _ in found], columns, ["n.csv", "t.csv"], RATIOS, 7, ["", "t"])
    assert plan["categories"]["0"] == ["0", "1", "10", "11", "12", "2", "3", "4", "5", "6", "7", "8", "9", "x", "y"]
    written = {}
    for path in ("numeric", "csv module"):
        outputs = Outputs({name: MemoryOutput() for name in output_keys("", 0, 1, 1)})
        written[split_any(lambda: [numbers], "n.csv", header, False, columns, plan,
                          lambda: SplitWriter(outputs, columns, RowSplitter(RATIOS, 7), False, 1, 1), outputs,
                          path)[1]] = {name: output.data for name, output in outputs.outputs.items()}
    assert set(written) == {"arrow", "csv module"} and written["arrow"] == written["csv module"]


def test_arrow_reads_text_without_importing_pandas():
    """pyarrow looks for pandas when it converts a Python value (where numpy is installed, as here); the path
    converts none, so a local run does not import pandas (0.3 s)."""
    script = ("import sys, numpy; from tests.test_arrowcsv import DATASETS, preprocess, MemoryOutput\n"
              "class Patch:\n"
              "    def context(self): import contextlib; return contextlib.nullcontext(self)\n"
              "result = preprocess(DATASETS['labels 1 and 2 (classes mapped), an id column'], False, Patch(), "
              "hosts=2, instances=2, id_column='id')\n"
              "print(result['path'], result['split path'], 'pandas' in sys.modules)")
    found = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert found.stdout.split() == ["arrow", "arrow", "False"], found.stderr[-2000:]


def test_a_process_that_left_arrow_for_the_csv_module_mid_item_exits_cleanly():
    """Arrow reading a stream reads ahead on its I/O thread through Python, and a reader dropped mid-item aborted
    the process at its exit ("terminate called without an active exception"): it reads whole pieces from memory."""
    script = ("from preprocess import errors\nfrom preprocess.numeric import profile_any\n"
              "from preprocess.plan import Columns\n"
              "rows = b''.join(b'%d,\"x %d\",%d\\n' % (i, i % 5, i % 2) for i in range(500000))\n"
              "data = b'a,b,label\\n1,x,\\n' + rows\n"
              "pieces = [data[i:i + (1 << 16)] for i in range(0, len(data), 1 << 16)]\n"
              "columns = Columns(('a', 'b', 'label'), 2)\n"
              "try:\n    profile_any(lambda: iter(pieces), 'd.csv', ['a', 'b', 'label'], False, columns)\n"
              "except errors.InvalidLabel as error:\n    print(type(error).__name__)\n")
    found = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert (found.returncode, found.stdout.strip(), found.stderr) == (0, "InvalidLabel", "")
