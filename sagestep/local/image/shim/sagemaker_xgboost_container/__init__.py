"""Script mode of the SageMaker XGBoost 3.0-5 image's own package, for the local engine.

The real sagemaker_xgboost_container is not on PyPI (it needs mlio, conda only). These modules keep
only its script-mode branches, which call the launcher (sagemaker-containers) directly; they run in
the image environment (sagestep/local/image), never in the project's venv.
"""
