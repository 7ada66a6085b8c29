"""What a file that is not CSV looks like, from its first bytes: a JSON export or a Parquet file named .csv
otherwise fails far from the cause (as a header of JSON fragments with no label column)."""
from __future__ import annotations

# Magic numbers at offset 0 (each format's specification), and what to call the file.
SIGNATURES = (
    (b"PAR1", "a Parquet file"),
    (b"PK\x03\x04", "a ZIP archive (an Excel .xlsx workbook is one)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Excel 97-2003 workbook (.xls)"),
    (b"ORC", "an ORC file"),
    (b"Obj\x01", "an Avro file"),
    (b"%PDF", "a PDF document"),
    (b"BZh", "a bzip2 archive (only gzip is read)"),
    (b"\xfd7zXZ\x00", "an xz archive (only gzip is read)"),
    (b"\x28\xb5\x2f\xfd", "a Zstandard archive (only gzip is read)"),
)
JSON_STARTS = (b"{", b"[{", b"[[", b'["', b"[]")


def looks_like(first: bytes) -> str | None:
    """What the file's first (decompressed, BOM-less) bytes say it is, when that is not CSV; None otherwise.
    A CSV header starting with "{" or "[{" is not one anybody writes; JSON and JSON Lines always do."""
    for magic, name in SIGNATURES:
        if first.startswith(magic):
            return name
    text = b"".join(first[:256].split())                 # JSON allows whitespace between tokens
    if text.startswith(JSON_STARTS):
        return "JSON (or JSON Lines)"
    return None


def not_csv_message(where: str, first: bytes) -> str | None:
    """The one line that says a file is not CSV, or None when it may be."""
    kind = looks_like(first)
    return f"{where} is not a CSV file: it looks like {kind}; export it as CSV with a header row" if kind else None
