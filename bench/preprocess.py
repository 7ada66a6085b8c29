"""The preprocess split against the usual pandas approach, side by side, locally and through S3; locally also
against polars, pyarrow and duckdb, each on one thread (the `bench` extra installs polars and duckdb).

  python bench/preprocess.py                  # 1M x 20 numeric and 1M-row text/quoted datasets
  python bench/preprocess.py --rows 200000    # smaller
  python bench/preprocess.py --memory         # peak RSS on ~100 MB and ~1 GB inputs, numbers and text

Each contender runs in its own process (peak RSS is that process's ru_maxrss). "pandas" is
read_csv of the whole object, sample the splits, to_csv each; "read only" streams the same object
and discards it; "read+write" (S3) streams it and writes the same bytes back through the same
multipart output the split uses: the I/O ceiling. S3 is moto's server in another process (on the
same cores).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from statemachine import framework  # noqa: E402  (the repository root is on the path only now)

BUCKET = "bench-data"
RATIOS = {"train": 0.7, "validation": 0.15, "test": 0.15}


# ---------------------------------------------------------------- datasets

def numeric_csv(path: Path, rows: int, columns: int = 20) -> None:
    import numpy as np
    import pandas as pd
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, columns)).round(4)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(columns)])
    frame.insert(0, "label", (x[:, 0] + x[:, 1] > 0).astype(int))
    frame.to_csv(path, index=False)


def text_csv(path: Path, rows: int) -> None:
    import numpy as np
    import pandas as pd
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(size=(rows, 10)).round(4), columns=[f"n{i}" for i in range(10)])
    cities = np.array(["Paris", "New York, NY", 'The "Big" Smoke', "São Paulo", "Zürich"])
    frame["city"] = cities[rng.integers(0, len(cities), rows)]
    frame["plan"] = np.array(["free", "pro", "team"])[rng.integers(0, 3, rows)]
    frame["note"] = np.where(rng.random(rows) < 0.1, "multi\nline", "")
    frame["label"] = np.array(["churn", "stay"])[(frame["n0"] > 0).astype(int)]
    frame.to_csv(path, index=False)


def run_helper(task: str, *args: str) -> None:
    if task in ("numeric", "text"):
        (numeric_csv if task == "numeric" else text_csv)(Path(args[0]), int(args[1]))
    elif task == "repeat":
        header, _, body = Path(args[0]).read_bytes().partition(b"\n")
        with open(args[1], "wb") as f:
            f.write(header + b"\n")
            for _ in range(int(args[2])):
                f.write(body)
    else:
        import boto3
        s3 = boto3.client("s3")
        if task == "bucket":
            s3.create_bucket(Bucket=BUCKET)
        else:
            s3.upload_file(args[0], BUCKET, f"datasets/{Path(args[0]).name}")


# ---------------------------------------------------------------- contenders (run in a child process)


def child(kind: str, where: str, source: str, out_dir: str) -> dict:
    started = time.perf_counter()
    if kind == "sagestep":
        if where == "local":
            detail = split_local_file(source, out_dir)
        else:
            import boto3

            from preprocess.handler import handler
            plan = handler({"datasetUri": source, "executionName": "bench", "executionArn": "bench"}, None)
            s3 = boto3.client("s3")
            items, to_split = (len(json.loads(s3.get_object(Bucket=BUCKET, Key=f"runs/bench/preprocess/{name}")[
                "Body"].read())) for name in ("items.json", "split-items.json"))
            detail = {"rows": plan["rows"], "path": f"{items} work item{'s' if items > 1 else ''}",
                      "reads": 2 if to_split else 1}
    elif kind == "pandas":
        import io

        import pandas as pd
        if where == "local":
            frame = pd.read_csv(source)
        else:
            import boto3
            s3 = boto3.client("s3")
            bucket, key = source[5:].split("/", 1)
            frame = pd.read_csv(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
        label = "label"
        train = frame.sample(frac=RATIOS["train"], random_state=42)
        rest = frame.drop(train.index)
        validation = rest.sample(frac=0.5, random_state=42)
        test = rest.drop(validation.index)
        columns = [label] + [c for c in frame.columns if c != label]
        parts = {"train": train[columns].to_csv(index=False, header=False),
                 "validation": validation[columns].to_csv(index=False, header=False),
                 "test": test[columns[1:]].to_csv(index=False, header=False),
                 "labels": test[label].to_csv(index=False, header=False)}
        for name, text in parts.items():
            if where == "local":
                Path(out_dir, name).write_text(text)
            else:
                s3.put_object(Bucket=BUCKET, Key=f"pandas/{name}.csv", Body=text.encode())
        detail = {"rows": {k: len(v) for k, v in (("train", train), ("validation", validation), ("test", test))}}
    elif kind in ENGINES:
        detail = {"rows": ENGINES[kind](source, Path(out_dir))}
    elif kind == "copy":
        # The I/O alone: stream the object and write the same bytes as one output, as the split does.
        import boto3

        from preprocess.sink import Outputs, S3Output, Uploader
        from preprocess.source import S3Object
        s3 = boto3.client("s3")
        bucket, key = source[5:].split("/", 1)
        uploader = Uploader()
        with Outputs({"copy": S3Output(s3, BUCKET, "copy/data.csv", "text/csv", uploader)}, uploader) as out:
            for block in S3Object(s3, bucket, key).chunks():
                out["copy"].write(block)
            out.commit()
        detail = {}
    else:  # read only
        total = 0
        if where == "local":
            with open(source, "rb") as f:
                while block := f.read(8 << 20):
                    total += len(block)
        else:
            import boto3
            bucket, key = source[5:].split("/", 1)
            body = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"]
            while block := body.read(8 << 20):
                total += len(block)
        detail = {"bytes": total}
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, **detail}


# ---------------------------------------------------------------- what a data engineer would use (local files)
# The same job on one thread each: read the CSV, a seeded 70/15/15 split, the label first, no header, into the
# train, validation, test-features and test-labels files.

def parts(rows: int):
    """Each row's part (0 train, 1 validation, 2 test), seeded: the same for every engine."""
    import numpy as np
    draw = np.random.default_rng(42).random(rows)
    return (draw >= RATIOS["train"]).astype("int8") + (draw >= RATIOS["train"] + RATIOS["validation"])


def split_polars(source: str, out: Path) -> dict:
    import polars as pl                           # POLARS_MAX_THREADS=1 (run_child's environment)
    frame = pl.read_csv(source)
    frame = frame.select(["label", *(c for c in frame.columns if c != "label")])
    part = parts(frame.height)
    for code, name in enumerate(("train", "validation", "test")):
        chosen = frame.filter(pl.Series(part == code))
        if name == "test":
            chosen.drop("label").write_csv(out / "test", include_header=False)
            chosen.select("label").write_csv(out / "labels", include_header=False)
        else:
            chosen.write_csv(out / name, include_header=False)
    return {"train": int((part == 0).sum())}


def split_pyarrow(source: str, out: Path) -> dict:
    import pyarrow as pa
    import pyarrow.csv as csv
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    table = csv.read_csv(source, read_options=csv.ReadOptions(use_threads=False),
                         parse_options=csv.ParseOptions(newlines_in_values=True))
    table = table.select(["label", *(c for c in table.column_names if c != "label")])
    part = parts(table.num_rows)
    plain = csv.WriteOptions(include_header=False, quoting_style="needed")
    for code, name in enumerate(("train", "validation", "test")):
        chosen = table.filter(pa.array(part == code))
        if name == "test":
            csv.write_csv(chosen.drop_columns(["label"]), out / "test", plain)
            csv.write_csv(chosen.select(["label"]), out / "labels", plain)
        else:
            csv.write_csv(chosen, out / name, plain)
    return {"train": int((part == 0).sum())}


def split_duckdb(source: str, out: Path) -> dict:
    import duckdb
    import pyarrow as pa
    con = duckdb.connect()
    con.execute("SET threads = 1")
    con.execute(f"CREATE TABLE t AS SELECT * FROM read_csv('{source}', header = true)")
    [(rows,)] = con.execute("SELECT count(*) FROM t").fetchall()
    con.register("p", pa.table({"part": parts(rows)}))
    con.execute("CREATE TABLE s AS SELECT * FROM t POSITIONAL JOIN p")
    for code, name in enumerate(("train", "validation", "test")):
        columns = "label, * EXCLUDE (label, part)" if name != "test" else "* EXCLUDE (label, part)"
        con.execute(f"COPY (SELECT {columns} FROM s WHERE part = {code}) TO '{out / name}' (HEADER false)")
    con.execute(f"COPY (SELECT label FROM s WHERE part = 2) TO '{out / 'labels'}' (HEADER false)")
    [(train,)] = con.execute("SELECT count(*) FROM s WHERE part = 0").fetchall()
    return {"train": train}


ENGINES = {"polars": split_polars, "pyarrow": split_pyarrow, "duckdb": split_duckdb}


def split_local_file(source: str, out_dir: str) -> dict:
    """The preprocess phases on one local file as one work item, into files: the Lambda's work without S3, on
    the paths the Lambda takes (numeric: profiled and split in one read; else through Arrow, or the csv module
    where Arrow is unsure: profile, merge, split)."""
    from preprocess.csvrows import read_rows
    from preprocess.numeric import profile_any, split_any, split_stands
    from preprocess.plan import Request, find_columns
    from preprocess.profile import merge_profiles
    from preprocess.rowsplit import RowSplitter
    from preprocess.sink import FileOutput, Outputs
    from preprocess.source import chunks
    from preprocess.split import SplitWriter

    def stream():
        return chunks(open(source, "rb"), source.endswith(".gz"), source)
    header = next(read_rows(stream(), source))
    request = Request(bucket="", key=source, label_column=None, execution_name="bench", execution_arn="bench",
                      hyperparameters={}, ratios=RATIOS, seed=42)
    columns = find_columns(header, request, source)
    names = ("train0", "validation", "test0", "labels0")

    def write(regression, split):
        with Outputs({name: FileOutput(os.path.join(out_dir, name)) for name in names}) as outputs:
            result = split(lambda: SplitWriter(outputs, columns, RowSplitter(RATIOS, 42), regression, 1, 1), outputs)
            outputs.commit() if result is not None else outputs.abort()
        return result
    found = {}

    def profile_and_split(writer, outputs):
        found["profile"], found["path"], split = profile_any(stream, source, header, False, columns, writer, outputs)
        return split
    result = write(None, profile_and_split)
    plan = merge_profiles([found["profile"]], columns, [source], RATIOS, 42, [""])
    reads = 1
    if result is None or not split_stands(plan, columns):
        reads = 2
        result = write(plan["problem"] == "regression", lambda writer, outputs: split_any(
            stream, source, header, False, columns, plan, writer, outputs, found["path"])[0])
    return {"rows": result["counts"], "path": f"{found['path']} path", "reads": reads}


def run_child(kind: str, where: str, source: str, env: dict) -> dict:
    with tempfile.TemporaryDirectory() as out_dir:
        result = subprocess.run([sys.executable, __file__, "--child", kind, where, source, out_dir],
                                capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise SystemExit(f"{kind} ({where}) failed: {result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def helper(*args: str, env: dict | None = None) -> None:
    """Data generation and uploads run in children too: peak RSS carries over fork+exec, so this
    parent stays small (it imports neither numpy, pandas nor boto3)."""
    subprocess.run([sys.executable, __file__, "--helper", *args], check=True, env=env)


# ---------------------------------------------------------------- moto server

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto() -> tuple[subprocess.Popen, str]:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return server, endpoint
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("moto server did not start")


def s3_env(endpoint: str) -> dict:
    return {**os.environ, "POLARS_MAX_THREADS": "1", "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1", "DATA_BUCKET": BUCKET, "JOB_NAME_PREFIX": "bench", "HYPERPARAMETERS": "{}",
            "OBJECTIVES": json.dumps(framework.OBJECTIVES), "QUALITY_GATE": json.dumps(framework.quality_gate("", None))}


# ---------------------------------------------------------------- report

def compare(name: str, path: Path, endpoint: str) -> None:
    size = path.stat().st_size
    env = s3_env(endpoint)
    helper("upload", str(path), env=env)
    print(f"\n{name}: {size / 1e6:.0f} MB")
    print(f"  {'where':6} {'contender':10} {'seconds':>8} {'MB/s':>8} {'peak RSS MB':>12} {'vs pandas':>10}"
          f"  {'time / sagestep':>16}")
    for where, source in (("local", str(path)), ("s3", f"s3://{BUCKET}/datasets/{path.name}")):
        kinds = ("pandas", "sagestep", *(ENGINES if where == "local" else ()), "read") + (
            ("copy",) if where == "s3" else ())
        results = {kind: run_child(kind, where, source, env) for kind in kinds}
        base, ours = results["pandas"], results["sagestep"]
        for kind, r in results.items():
            speed = size / 1e6 / r["seconds"]
            ratio = base["seconds"] / r["seconds"]
            memory = r["max_rss_mb"] / base["max_rss_mb"]
            label = {"read": "read only", "copy": "read+write", "polars": "polars 1t"}.get(kind, kind)
            extra = (f"  ({r['path']}, {r['reads']} read{'s' if r['reads'] > 1 else ''} of each byte)"
                     if "path" in r else "")
            print(f"  {where:6} {label:10} {r['seconds']:8.2f} {speed:8.1f} {r['max_rss_mb']:12.0f} "
                  f"{ratio:9.1f}x  RSS {memory:.2f}x  {r['seconds'] / ours['seconds']:8.2f}x{extra}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--memory", action="store_true", help="peak RSS on ~100 MB and ~1 GB inputs")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--helper", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return
    if args.helper:
        run_helper(*args.helper)
        return
    server, endpoint = start_moto()
    try:
        helper("bucket", env=s3_env(endpoint))
        with tempfile.TemporaryDirectory() as tmp:
            if args.memory:
                for kind, rows in (("numeric", args.rows * 2 // 3), ("text", args.rows)):
                    small = Path(tmp, f"{kind}-100mb.csv")
                    helper(kind, str(small), str(rows))
                    large = Path(tmp, f"{kind}-1gb.csv")
                    helper("repeat", str(small), str(large), "10")
                    for path in (small, large):
                        r = run_child("sagestep", "local", str(path), s3_env(endpoint))
                        print(f"{kind:7} {path.stat().st_size / 1e6:7.0f} MB: {r['seconds']:.2f} s, peak RSS "
                              f"{r['max_rss_mb']:.0f} MB ({r['path']})")
                        path.unlink()
                return
            numeric = Path(tmp, "numeric.csv")
            helper("numeric", str(numeric), str(args.rows))
            compare(f"numeric, {args.rows} rows x 20 features + label", numeric, endpoint)
            text = Path(tmp, "text.csv")
            helper("text", str(text), str(args.rows))
            compare(f"text and quoting, {args.rows} rows x 13 features + string label", text, endpoint)
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
