"""Training: the Lightning fit (:mod:`aeflow.training.engine`) and the one training service that every
train stage goes through (:mod:`aeflow.training.service`: tracking, offline store, resume, atomic outputs,
registration). The names most callers need are re-exported here."""

from aeflow.training.engine import (
    FitResult,
    ResumeState,
    code_fingerprint,
    fingerprint,
    fit_autoencoder,
    make_trainer,
    quiet_lightning,
)
from aeflow.training.service import TrainingJob, TrainingPlan, check_validation, resume_folder, train

__all__ = [
    "FitResult",
    "ResumeState",
    "TrainingJob",
    "TrainingPlan",
    "check_validation",
    "code_fingerprint",
    "fingerprint",
    "fit_autoencoder",
    "make_trainer",
    "quiet_lightning",
    "resume_folder",
    "train",
]
