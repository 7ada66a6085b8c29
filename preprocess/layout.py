"""Where a run's data lives in the data bucket, and the code in the artifacts bucket. Shared by the
Lambda, the stack and the IAM policies."""

DATASETS_PREFIX = "datasets/"
RANGE_BYTES = 128 << 20          # one Lambda's share of a large plain object (about 5 s at 25 MB/s)
MODELS_PREFIX = "models/"           # training output, in the artifacts bucket
RUNS_PREFIX = "runs/"

# Under runs/<executionName>/:
TRAIN_DIR = "train/"
VALIDATION_DIR = "validation/"
TEST_FEATURES_DIR = "test-features/"   # the batch transform input
TEST_LABELS_DIR = "test-labels/"     # the held-out labels, one object per test-features object
SCHEMA = f"{VALIDATION_DIR}schema.json"  # in a channel every training host gets whole, so the model carries it
PREDICTIONS_DIR = "predictions/"        # the batch transform output
JOINED_PREDICTIONS = "predictions.csv"  # the Evaluate step's: held-out rows and predictions, with a header
EVALUATION = "evaluation.json"          # the Evaluate step's metrics
CHECKPOINTS_DIR = "checkpoints/"        # managed spot training
WORK_DIR = "preprocess/"                # the preprocess step's own records: its items, profiles, plan, results
REQUEST = f"{WORK_DIR}request.json"     # the execution input and the dataset header, for every action
ITEMS = f"{WORK_DIR}items.json"         # the profile Map's ItemReader reads it
SPLIT_ITEMS = f"{WORK_DIR}split-items.json"   # the split Map's: the items the profile's read did not split
PROFILES_DIR = f"{WORK_DIR}profiles/"
SPLITS_DIR = f"{WORK_DIR}splits/"
FAILURES_DIR = f"{WORK_DIR}failures/"
PLAN = f"{WORK_DIR}plan.json"
MAP_RESULTS_DIR = f"{WORK_DIR}map-results/"   # the Distributed Maps' ResultWriter


def part_name(item: int, part: int | None = None, suffix: str = ".csv") -> str:
    """The object one work item writes (and its part, where an item writes one per instance); sorted
    keys follow the dataset's order."""
    return f"part-{item:05d}" + ("" if part is None else f"-{part:03d}") + suffix


def run_prefix(execution_name: str) -> str:
    return f"{RUNS_PREFIX}{execution_name}/"


def code_key_prefix(bundle: str) -> str:
    """Every code bundle of one name ("training", "inference") in the artifacts bucket starts so."""
    return f"code/{bundle}-"
