"""sagestep beyond one machine, on the local engine: a sharded dataset through the preprocess Distributed
Maps at concurrency 1 and 4, then trained on 1 and 2 hosts, in one run, side by side.

  python bench/scale.py              # about 2 GB in 16 shards (12 plain CSV, 4 gzip)
  python bench/scale.py --gb 0.25    # a quicker look (and a 0.06 GB copy for the fit)

Each configuration is one whole execution of the synthesized state machine (preprocessConcurrency and
trainingInstanceCount set as `pulumi config set` would): its states' seconds come from the execution history.
A third execution, of a quarter-size copy (the same 16 shards) at concurrency 1, separates what a work item
costs whatever its size from what each megabyte costs: the Maps' time at concurrency 1 is fitted as
reads x (items x fixed + size / rate), reads being 1 for these numbers (each item split in the read that
profiles it, SplitShards skipped) and 2 where SplitShards runs; docs/scaling.md's model for AWS starts from
both figures. On this engine the Lambdas are threads of one process (and the training hosts processes) on
this machine's cores, so concurrency shows what overlaps here, not what separate Lambdas would do.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SHARDS = 16
GZIP_SHARDS = 4                 # the last ones, to mix plain and gzip as a real prefix might
FEATURES = 20
HYPERPARAMETERS = {"num_round": 40, "max_depth": 6, "eta": 0.3}
CONFIGURATIONS = ((1, 1), (4, 2))         # (preprocessConcurrency, trainingInstanceCount)


def write_shard(path: str, rows: int, seed: int, compress: bool) -> int:
    """Integer features (fast to write) and a label that depends on two of them, with noise."""
    import io

    import numpy as np
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 100_000, size=(rows, FEATURES))
    label = ((x[:, 0] + x[:, 1] + rng.integers(-20_000, 20_000, rows)) > 100_000).astype(int)
    buffer = io.BytesIO()
    np.savetxt(buffer, np.column_stack([x, label]), fmt="%d", delimiter=",",
               header=",".join([f"f{i}" for i in range(FEATURES)] + ["label"]), comments="")
    data = buffer.getvalue()
    Path(path).write_bytes(gzip.compress(data, compresslevel=1) if compress else data)
    return len(data)


def make_dataset(folder: Path, gigabytes: float) -> int:
    """SHARDS shards of about gigabytes in all (as CSV); returns the CSV bytes."""
    folder.mkdir()
    rows = int(gigabytes * 1e9 / SHARDS / (FEATURES * 6.5 + 2))
    with ProcessPoolExecutor(max_workers=os.cpu_count()) as pool:
        sizes = pool.map(write_shard, [str(folder / f"part-{k:02d}.csv{'.gz' if k >= SHARDS - GZIP_SHARDS else ''}")
                                       for k in range(SHARDS)],
                         [rows] * SHARDS, range(SHARDS), [k >= SHARDS - GZIP_SHARDS for k in range(SHARDS)])
        return sum(sizes)


def run(folder: Path, concurrency: int, hosts: int) -> dict:
    from sagestep.local.engine import LocalEngine
    from sagestep.runner import follow, result_of
    from sagestep.synth import synthesize
    synthesis = synthesize(f"scale{concurrency}x{hosts}", {"preprocessConcurrency": concurrency,
                                                           "trainingInstanceCount": hosts})
    with LocalEngine(synthesis) as engine:
        uri = engine.upload_dataset(folder, sorted(folder.iterdir()))
        sfn = engine.client("stepfunctions")
        started = time.perf_counter()
        arn = sfn.start_execution(stateMachineArn=engine.state_machine_arn, name=f"scale-{concurrency}-{hosts}",
                                  input=json.dumps({"datasetUri": uri, "hyperparameters": HYPERPARAMETERS}))["executionArn"]
        description, progress = follow(sfn, arn, timeout_seconds=7200)
        wall = time.perf_counter() - started
        result = result_of(description, progress)
    if result["status"] != "SUCCEEDED":
        raise SystemExit(f"concurrency {concurrency}, {hosts} host(s): {result['error']}: {result['cause']}")
    seconds = {state["name"]: state["seconds"] for state in result["states"]}
    output = result["output"]
    preprocess = sum(seconds.get(name, 0) for name in ("Preprocess", "ProfileShards", "MergeProfiles",
                                                        "AnyItemToSplit", "SplitShards", "FinishPreprocess"))
    return {"wall": wall, "preprocess": preprocess, "maps": seconds["ProfileShards"] + seconds.get("SplitShards", 0),
            "reads": 2 if "SplitShards" in seconds else 1,
            "train": seconds["Train"], "rows": output["rows"], "shards": output["shards"],
            "metric": next(value for name, value in result["metrics"].items() if name.startswith("validation:")),
            "metricName": next(name for name in result["metrics"] if name.startswith("validation:")),
            "accuracy": output["evaluation"]["metrics"]["accuracy"]}


def per_item_and_rate(small: tuple[int, float], large: tuple[int, float], items: int,
                      reads: int) -> tuple[float, float]:
    """From two datasets of the same items, each item read reads times, (bytes, seconds) each: the seconds an
    item costs per read whatever its size, and the MB/s per read (seconds = reads x (items x fixed + bytes /
    rate))."""
    (bytes_small, seconds_small), (bytes_large, seconds_large) = small, large
    rate = reads * (bytes_large - bytes_small) / 1e6 / (seconds_large - seconds_small)
    fixed = (seconds_small / reads - bytes_small / 1e6 / rate) / items
    return fixed, rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gb", type=float, default=2.0, help="dataset size in GB of CSV (default 2)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder, quarter = Path(tmp, "clicks"), Path(tmp, "quarter")
        started = time.perf_counter()
        size, small = make_dataset(folder, args.gb), make_dataset(quarter, args.gb / 4)
        stored = sum(path.stat().st_size for path in folder.iterdir())
        print(f"dataset: {SHARDS} shards ({GZIP_SHARDS} gzip), {size / 1e9:.2f} GB of CSV, {stored / 1e9:.2f} GB "
              f"stored, written in {time.perf_counter() - started:.0f} s; {os.cpu_count()} cores, "
              f"load average {os.getloadavg()[0]:.2f} before the runs")
        results = {config: run(folder, *config) for config in CONFIGURATIONS}
        fit = run(quarter, 1, 1)
    one, many = results[CONFIGURATIONS[0]], results[CONFIGURATIONS[1]]
    rows = sum(one["rows"].values())
    print(f"{rows:,} rows ({one['rows']['train']:,} train), {one['shards']} work items\n")
    print(f"{'':34}{'concurrency 1, 1 host':>24}{'concurrency 4, 2 hosts':>24}")
    for label, key, unit in (("preprocess (its states)", "preprocess", "s"), ("  the Maps", "maps", "s"),
                             ("training", "train", "s"), ("whole execution", "wall", "s")):
        print(f"{label:34}{one[key]:>23.1f}{unit}{many[key]:>23.1f}{unit}")
    print(f"{one['metricName']:34}{one['metric']:>24.5f}{many['metric']:>24.5f}")
    print(f"{'test accuracy':34}{one['accuracy']:>24.4f}{many['accuracy']:>24.4f}")
    print(f"\npreprocess speed-up at concurrency 4: {one['preprocess'] / many['preprocess']:.2f}x")
    reads = one["reads"]
    fixed, rate = per_item_and_rate((small, fit["maps"]), (size, one["maps"]), one["shards"], reads)
    print(f"the Maps at concurrency 1: {fit['maps']:.1f} s for {small / 1e9:.2f} GB, {one['maps']:.1f} s for "
          f"{size / 1e9:.2f} GB, {one['shards']} work items each, {reads} read{'s' if reads > 1 else ''} of each "
          "byte")
    print(f"per work item and read: {fixed:.2f} s whatever its size + {rate:.1f} MB/s of CSV "
          f"(the size over the time alone would say {reads * size / 1e6 / one['maps']:.1f} MB/s per read)")
    gap = abs(many["metric"] - one["metric"]) / one["metric"] * 100
    print(f"2 hosts vs 1 host: {one['metricName']} differs by {gap:.2f}% "
          f"({'within' if gap <= 1 else 'NOT within'} 1%)")


if __name__ == "__main__":
    main()
