"""Training time and batch-inference throughput, each beside its baseline in the same run.

  .sagestep/image-env/bin/python bench/train_infer.py        # CPU training; inference beside its baselines
  .sagestep/image-env/bin/python bench/train_infer.py --gpu  # also SM_NUM_GPUS=1 (needs a CUDA xgboost)

Run it with the image environment's Python (the image's numpy, pandas and pyarrow; the first local job
builds it). Training runs training/train.py as SageMaker would (SM_* environment, channels on disk);
inference times inference.py's handlers on one full MaxPayloadInMB (6 MB) request, beside the parse alone
(the handler's limit), the previous np.loadtxt parse with the same predict and output, and a per-row handler.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "inference"))
import inference  # noqa: E402

PAYLOAD_BYTES = 6 * 1024 * 1024


def make_dataset(rows: int, features: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, features)).astype(np.float32)
    w = rng.normal(size=features)
    score = x @ w + np.sin(x[:, 0] * x[:, 1]) * 2 + rng.normal(scale=0.5, size=rows)
    return x, (score > 0).astype(np.float32)


def write_csv(path: Path, x: np.ndarray, y: np.ndarray | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = x if y is None else np.column_stack([y, x])
    np.savetxt(path, data, delimiter=",", fmt="%.5g")


def train(work: Path, gpus: int, rounds: int) -> dict:
    model_dir = work / f"model-{gpus}gpu"
    hps = {"objective": "binary:logistic", "eval_metric": "logloss", "num_round": str(rounds),
           "max_depth": "8", "early_stopping_rounds": str(rounds)}
    env = {**os.environ, "SM_CHANNEL_TRAIN": str(work / "train"), "SM_CHANNEL_VALIDATION": str(work / "validation"),
           "SM_MODEL_DIR": str(model_dir), "SM_OUTPUT_DIR": str(work / "output"), "SM_NUM_GPUS": str(gpus),
           "SM_HPS": json.dumps(hps), "SAGESTEP_CHECKPOINT_DIR": str(work / "no-checkpoints")}
    started = time.perf_counter()
    result = subprocess.run([sys.executable, str(ROOT / "training/train.py")], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"training on {gpus} GPU(s) failed: {result.stderr.strip()[-2000:]}")
    metrics = json.loads((model_dir / "metrics.json").read_text())
    return {"gpus": gpus, "device": metrics["device"], "train_seconds": metrics["training_seconds"],
            "wall_seconds": round(wall, 2), "validation_logloss": metrics["metrics"]["validation:logloss"],
            "model_dir": str(model_dir)}


def per_row(payload: bytes, booster) -> str:
    """The straightforward handler: parse, predict and format one record at a time (the same
    "<class>,<p0>,<p1>" lines as inference.output_fn)."""
    import xgboost as xgb
    out = []
    for line in payload.decode().splitlines():
        row = np.array([[float(v) if v else np.nan for v in line.split(",")]], dtype=np.float32)
        positive = float(booster.predict(xgb.DMatrix(row, missing=np.nan))[0])
        out.append(f"{int(positive > 0.5)},{1 - positive:.6f},{positive:.6f}")
    return "\n".join(out) + "\n"


def vectorised(payload: bytes, model) -> str:
    body, _ = inference.output_fn(inference.predict_fn(inference.input_fn(payload, "text/csv"), model), "text/csv")
    return body


def loadtxt_handler(payload: bytes, model) -> str:
    """The handler as it was: np.loadtxt's parse, then the same predict_fn and output_fn."""
    data = np.loadtxt(io.StringIO(payload.decode().rstrip("\r\n")), delimiter=",", dtype=np.float32, ndmin=2)
    body, _ = inference.output_fn(inference.predict_fn(data, model), "text/csv")
    return body


def parse_only(payload: bytes) -> np.ndarray:
    return inference.input_fn(payload, "text/csv")


def best_of(repeats: int, *contenders) -> list[tuple[float, object]]:
    """Each (fn, *args)'s best time and result, the contenders taking turns: a load that comes and goes
    on the machine weighs on all of them alike."""
    times, results = [[] for _ in contenders], [None] * len(contenders)
    for _ in range(repeats):
        for index, (fn, *args) in enumerate(contenders):
            started = time.perf_counter()
            results[index] = fn(*args)
            times[index].append(time.perf_counter() - started)
    return [(min(spent), result) for spent, result in zip(times, results)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--features", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--gpu", action="store_true", help="also train with SM_NUM_GPUS=1")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    import xgboost
    figures = {"xgboost": xgboost.__version__, "rows": args.rows, "features": args.features,
               "rounds": args.rounds, "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        x, y = make_dataset(args.rows, args.features)
        cut = int(args.rows * 0.8)
        write_csv(work / "train/part-0.csv", x[:cut], y[:cut])
        write_csv(work / "validation/part-0.csv", x[cut:], y[cut:])
        runs = [train(work, 0, args.rounds)] + ([train(work, 1, args.rounds)] if args.gpu else [])
        figures["training"] = [{k: v for k, v in r.items() if k != "model_dir"} for r in runs]

        model = inference.model_fn(runs[0]["model_dir"])
        lines, size, index = [], 0, 0
        test_rows = [",".join(f"{v:.5g}" for v in row) for row in x[cut:]]
        while size < PAYLOAD_BYTES:
            line = test_rows[index % len(test_rows)]
            if size + len(line) + 1 > PAYLOAD_BYTES:
                break
            lines.append(line)
            size += len(line) + 1
            index += 1
        payload = ("\n".join(lines) + "\n").encode()
        (fast_seconds, fast), (parse_seconds, _), (loadtxt_seconds, before) = best_of(
            7, (vectorised, payload, model), (parse_only, payload), (loadtxt_handler, payload, model))
        [(slow_seconds, slow)] = best_of(1, (per_row, payload, model.booster))
        same = np.allclose([float(v) for v in fast.replace(",", " ").split()],
                       [float(v) for v in slow.replace(",", " ").split()], atol=1e-5)
        figures["inference"] = {"payload_bytes": len(payload), "records": len(lines),
                                "vectorised_records_per_s": round(len(lines) / fast_seconds),
                                "parse_only_records_per_s": round(len(lines) / parse_seconds),
                                "loadtxt_records_per_s": round(len(lines) / loadtxt_seconds),
                                "speedup_over_loadtxt": round(loadtxt_seconds / fast_seconds, 2),
                                "same_lines_as_loadtxt": fast == before,
                                "per_row_records_per_s": round(len(lines) / slow_seconds),
                                "speedup": round(slow_seconds / fast_seconds, 1), "same_predictions": bool(same)}

    print(f"xgboost {figures['xgboost']}, {args.rows} rows x {args.features} features, {args.rounds} rounds, "
          f"{figures['cpus']} CPUs")
    for run in figures["training"]:
        print(f"training  {run['device']:>4} (SM_NUM_GPUS={run['gpus']}): {run['train_seconds']:8.2f} s in xgb.train, "
              f"{run['wall_seconds']:8.2f} s wall, validation logloss {run['validation_logloss']:.4f}")
    if len(figures["training"]) == 2:
        cpu, gpu = figures["training"]
        print(f"training  GPU speedup: {cpu['train_seconds'] / gpu['train_seconds']:.1f}x")
    inf = figures["inference"]
    print(f"inference one {inf['payload_bytes'] / 1e6:.1f} MB request, {inf['records']} records, "
          f"{os.environ.get('OMP_NUM_THREADS', 'all')} thread(s): handler {inf['vectorised_records_per_s']:,} "
          f"records/s; its parse alone {inf['parse_only_records_per_s']:,} records/s "
          f"({inf['vectorised_records_per_s'] / inf['parse_only_records_per_s']:.0%} of that limit)")
    print(f"inference np.loadtxt handler {inf['loadtxt_records_per_s']:,} records/s "
          f"({inf['speedup_over_loadtxt']}x slower), same lines: {inf['same_lines_as_loadtxt']}; "
          f"per-row {inf['per_row_records_per_s']:,} records/s ({inf['speedup']}x slower), "
          f"same predictions: {inf['same_predictions']}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
