"""Errors the preprocess step reports. The class name is Lambda's errorType, which the execution shows."""


class PreprocessError(Exception):
    """Base class: the message says what is wrong and where."""


class InvalidExecutionInput(PreprocessError):
    pass


class InvalidDatasetUri(PreprocessError):
    pass


class DatasetNotFound(PreprocessError):
    pass


class DatasetAccessDenied(PreprocessError):
    pass


class DatasetChanged(PreprocessError):
    """An object was replaced while the run read it (each pass reads the version the plan saw)."""


class InvalidEncoding(PreprocessError):
    pass


class EmptyDataset(PreprocessError):
    pass


class MissingLabelColumn(PreprocessError):
    pass


class UnknownColumn(PreprocessError):
    """idColumn or ignoreColumns names a column the header does not have."""


class MalformedRow(PreprocessError):
    pass


class MultilineRecord(PreprocessError):
    """A quoted line break in an object that is cut into byte ranges (the cuts are at line breaks)."""


class HeaderMismatch(PreprocessError):
    """A shard whose header differs from the dataset's (its first shard's)."""


class MixedColumn(PreprocessError):
    """A column that is text in one shard and holds too many distinct numbers in another to be coded."""


class InvalidLabel(PreprocessError):
    pass


class InvalidNumber(PreprocessError):
    """nan or inf among a column's numbers (XGBoost's and numpy's readers take it for a missing or infinite
    value), or a number past float32's range (they read it as inf)."""


class TooFewRows(PreprocessError):
    pass


class TooManyCategories(PreprocessError):
    pass


class DatasetTooLarge(PreprocessError):
    pass


class InvalidQualityGate(PreprocessError):
    """qualityMetric / qualityThreshold that no run of this objective can pass or fail."""


class ShardFailed(PreprocessError):
    """A work item failed without saying why (a timeout, or the function ran out of memory)."""


class FunctionMisconfigured(PreprocessError):
    """The function's environment lacks what the stack sets (deployed by hand, or by an older stack)."""


class InvalidHyperparameter(PreprocessError):
    """A hyperparameter XGBoost or the training script would refuse, or one that does not fit the labels."""


class NotCsv(PreprocessError):
    """The dataset is another format (JSON, Parquet, a workbook) under a CSV name."""


class InvalidTuning(PreprocessError):
    """The execution's tuning (maxJobs, maxParallelJobs, ranges) that SageMaker or XGBoost would refuse, or a tuning
    on a stack that does not tune."""
