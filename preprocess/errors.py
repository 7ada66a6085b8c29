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


class InvalidLabel(PreprocessError):
    pass


class TooFewRows(PreprocessError):
    pass


class TooManyCategories(PreprocessError):
    pass


class DatasetTooLarge(PreprocessError):
    pass


class InvalidQualityGate(PreprocessError):
    """qualityMetric / qualityThreshold that no run of this objective can pass or fail."""


class FunctionMisconfigured(PreprocessError):
    """The function's environment lacks what the stack sets (deployed by hand, or by an older stack)."""
