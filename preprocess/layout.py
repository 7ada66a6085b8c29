"""Where a run's data lives in the data bucket, and the code in the artifacts bucket. Shared by the
Lambda, the stack and the IAM policies."""

DATASETS_PREFIX = "datasets/"
MODELS_PREFIX = "models/"           # training output, in the artifacts bucket
RUNS_PREFIX = "runs/"

# Under runs/<executionName>/:
TRAIN_DIR = "train/"
VALIDATION_DIR = "validation/"
TEST_FEATURES_DIR = "test-features/"   # the batch transform input
TEST_LABELS = "test-labels.csv"
SCHEMA = f"{TRAIN_DIR}schema.json"     # in the train channel, so the model carries it
PREDICTIONS_DIR = "predictions/"        # the batch transform output
JOINED_PREDICTIONS = "predictions.csv"  # the Evaluate step's: held-out rows and predictions, with a header
EVALUATION = "evaluation.json"          # the Evaluate step's metrics
CHECKPOINTS_DIR = "checkpoints/"        # managed spot training


def run_prefix(execution_name: str) -> str:
    return f"{RUNS_PREFIX}{execution_name}/"


def code_key_prefix(bundle: str) -> str:
    """Every code bundle of one name ("training", "inference") in the artifacts bucket starts so."""
    return f"code/{bundle}-"
