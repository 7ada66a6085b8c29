"""Every value checked as what it is: a value that is not a number is never written raw, on the numeric
fast path and on the csv path alike; nan and inf are refused by name; empty fields are missing values."""
import itertools
import json

import pytest

from preprocess import errors
from preprocess.handler import handler
from preprocess.numeric import profile_any
from preprocess.plan import NUMBER, NUMBERS, Columns, numbers_only, only_numbers
from tests.test_preprocess import event, put, read, read_split, s3, schema_of  # noqa: F401  (s3 is a fixture)

NOT_NUMBERS = ["1.2.3", "--e", "1e", ".", "-", "+", "e5", "0x1F", "1e5e5", "1..2", "1-2", "2024-01-05", "1,5",
               " 1", "1_000"]
# The extra column that sends an item down each path: none (numbers only), a quoted text column (Arrow), and a
# quote inside an unquoted field, which Arrow reads as the csv module does but the quote check leaves to the csv module.
PATHS = {"numeric": "", "arrow": ',"a, b"', "csv module": ',5\'11"'}


def dataset(value: str, column: str, extra: str) -> str:
    """40 rows of numbers, value in row 7's column b (column "label": its label; "both": in both); extra: more
    columns."""
    field = f'"{value}"' if "," in value else value
    rows = []
    for i in range(40):
        b = field if column in ("b", "both") and i == 5 else str(i % 4 * 0.5)
        label = field if column in ("label", "both") and i == 5 else str(i % 2)
        rows.append(f"{i},{b},{label}{extra}")
    header = "a,b,label" + (",note" if extra else "")
    return header + "\n" + "\n".join(rows) + "\n"


def written_fields(s3, width: int) -> set[str]:
    """Every field of the train, validation and test-features outputs, each line checked to hold width
    fields (the label and the features; one fewer in the test features)."""
    fields = set()
    for folder in ("train", "validation", "test-features"):
        for line in read_split(s3, folder).splitlines():
            assert len(line.split(",")) == width - (folder == "test-features"), line
            fields.update(line.split(","))
    return fields


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("value", NOT_NUMBERS)
def test_a_value_that_is_not_a_number_makes_a_feature_categorical_and_the_labels_classes(s3, value, path):
    handler(event(put(s3, "datasets/d.csv", dataset(value, "both", PATHS[path]))), None)
    schema = schema_of(s3)
    feature = next(f for f in schema["features"] if f["name"] == "b")
    assert feature["type"] == "categorical" and value in feature["categories"]
    assert schema["problem"] == "multiclass" and value in schema["label"]["classes"]
    assert {line.split(",")[0] for line in read_split(s3, "train").splitlines()} <= {"0", "1", "2"}
    assert value not in written_fields(s3, 3 + bool(PATHS[path]))


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("column", ["b", "label"])
@pytest.mark.parametrize("value", ["nan", "NaN", "-inf", "inf", "Infinity"])
def test_nan_and_inf_among_numbers_are_refused_with_row_column_and_value(s3, value, column, path):
    with pytest.raises(errors.InvalidNumber) as caught:
        handler(event(put(s3, "datasets/d.csv", dataset(value, column, PATHS[path]))), None)
    assert f"d.csv, row 7, column {column!r}: {value!r}" in str(caught.value)
    assert "empty field" in str(caught.value)
    assert "Contents" not in s3.list_objects_v2(Bucket="sagestep-dev-data", Prefix="runs/")


PAST_FLOAT32 = ["1e39", "-3.5e38", "1e999", "3.4028236e38", "1" + "0" * 39, "0.5e+040"]
WITHIN_FLOAT32 = ["3.4028234e38", "-1e38", "1e-50", "1E+37", "9" * 29 + ".5", "0" * 35 + "1"]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("value, column", [(value, "b") for value in PAST_FLOAT32] + [("1e39", "label"),
                                                                                     (PAST_FLOAT32[4], "label")])
def test_a_number_past_float32_is_refused_with_row_column_and_value(s3, value, column, path):
    """XGBoost and train.py read values as float32, where these are inf."""
    with pytest.raises(errors.InvalidNumber) as caught:
        handler(event(put(s3, "datasets/d.csv", dataset(value, column, PATHS[path]))), None)
    assert f"d.csv, row 7, column {column!r}: {value} is past float32's range (3.4e38)" in str(caught.value)
    assert "Contents" not in s3.list_objects_v2(Bucket="sagestep-dev-data", Prefix="runs/")


def test_only_values_the_screen_flags_can_be_past_float32():
    """The size check reads only lines with a positive exponent of two digits or 30 digits in a row: no value
    without either reaches float32's range (every digit count with every exponent, signs and points)."""
    from preprocess.plan import may_be_large, past_float32
    for digits, exponent, form in itertools.product(range(1, 42), range(0, 46), ("{}e{}", "{}E+{}", "{}.9e0{}")):
        value = form.format("9" * digits, exponent)
        assert may_be_large(value) or not past_float32(value), value
        assert may_be_large(value.encode()) == may_be_large(value)


@pytest.mark.parametrize("path", PATHS)
def test_numbers_within_float32_are_written_as_they_are(s3, path):
    rows = "".join(f"{i},{WITHIN_FLOAT32[i % len(WITHIN_FLOAT32)]},{i % 2}{PATHS[path]}\n" for i in range(40))
    handler(event(put(s3, "datasets/d.csv", "a,b,label" + (",note" if PATHS[path] else "") + "\n" + rows)), None)
    assert set(WITHIN_FLOAT32) <= written_fields(s3, 3 + bool(PATHS[path]))
    assert json.loads(read(s3, "runs/Run_1/preprocess/profiles/part-00000.json"))["path"] == path


def test_nan_among_words_is_a_category(s3):
    text = "a,colour,label\n" + "".join(f"{i},{['red', 'blue', 'NaN'][i % 3]},{i % 2}\n" for i in range(40))
    handler(event(put(s3, "datasets/d.csv", text)), None)
    colour = next(f for f in schema_of(s3)["features"] if f["name"] == "colour")
    assert colour == {"name": "colour", "type": "categorical", "categories": ["NaN", "blue", "red"]}


@pytest.mark.parametrize("path", PATHS)
def test_empty_fields_are_missing_values_and_the_column_stays_numeric(s3, path):
    text = dataset("", "b", PATHS[path])
    handler(event(put(s3, "datasets/d.csv", text)), None)
    assert next(f for f in schema_of(s3)["features"] if f["name"] == "b")["type"] == "numeric"
    written = [line.split(",") for split in ("train", "validation") for line in read_split(s3, split).splitlines()]
    assert "" in {fields[2] for fields in written}


@pytest.mark.parametrize("value", NOT_NUMBERS[:-3])
def test_the_fast_path_hands_an_item_with_a_non_number_to_arrow(value):
    data = dataset(value, "b", "").encode()
    columns = Columns(("a", "b", "label"), 2)
    good = dataset("7", "b", "").encode()
    assert profile_any(lambda: [good], "d.csv", ["a", "b", "label"], False, columns)[1] == "numeric"
    assert profile_any(lambda: [data], "d.csv", ["a", "b", "label"], False, columns)[1] == "arrow"


def test_the_block_checks_and_the_csv_path_agree_on_every_short_field():
    """The fast path's screen and NUMBERS (bytes) and numbers_only (the csv path) against plan.NUMBER, on
    every string of up to 5 number characters, alone and between fields."""
    for size in range(1, 6):
        for chars in itertools.product("0.eE+-", repeat=size):
            value = "".join(chars)
            expected = NUMBER.fullmatch(value) is not None
            assert numbers_only([value]) is expected, value
            for line in (value, f"1,{value}", f"{value},2\n3,4", f",{value}\n.5,"):
                assert (NUMBERS.fullmatch(line.encode()) is not None) is expected, line
                assert only_numbers(line.encode()) is expected, line


def test_the_screen_agrees_with_the_pattern_on_every_short_block():
    """Every block of up to 6 characters of numbers, commas and line breaks."""
    for size in range(7):
        for chars in itertools.product(b"0.e-+E,\n", repeat=size):
            block = bytes(chars)
            assert only_numbers(block) is (NUMBERS.fullmatch(block) is not None), block



@pytest.mark.parametrize("values, empty, expected", [
    (["1", "-2.5e3"], False, True), (["1", ""], False, False), (["1", ""], True, True),
    (["1\n2"], False, False), (["1,5"], False, False), (["nan"], False, False), (["1e999"], False, True),
    (["١"], False, False), ([" 1"], False, False), (["1_000"], False, False), (["0x1F"], False, False),
])
def test_a_value_as_the_csv_path_reads_it(values, empty, expected):
    """A quoted value holding a line break or a comma is one value, never two numbers."""
    assert numbers_only(values, empty=empty) is expected
