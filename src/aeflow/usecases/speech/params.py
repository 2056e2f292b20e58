"""The ``speech`` section of params.yaml: everything the speech use case reads."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator

from aeflow.models.configs import AEConfig, ModelSection, model_section
from aeflow.sections import (
    GateParams,
    PositiveInt,
    Strict,
    TrainParams,
    UseCaseSection,
)

DEFAULT_FSDD_URL = "https://github.com/Jakobovski/free-spoken-digit-dataset/archive/refs/tags/v1.0.10.zip"

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
    parent folder's name); ``fsdd`` downloads the Free Spoken Digit Dataset archive from ``fsdd_urls``;
    ``librispeech`` downloads the LibriSpeech subset ``librispeech_subset`` (real read speech, 16 kHz,
    many speakers) from the first of ``librispeech_urls`` that serves it, speaker from the file name
    ``<speaker>-<chapter>-<utterance>``. Downloads go to ``<download_dir>/<source>/``, one folder per source
    so that their files never mix. The default ``speaker_pattern`` reads both FSDD
    (``<digit>_<speaker>_<n>``) and LibriSpeech names, so ``dir`` works on either corpus unchanged.

    Every clip is folded to mono, resampled to ``sample_rate`` and scaled to ``level_dbfs`` RMS. Clips
    shorter than ``min_duration_s`` are joined with the same speaker's next clips (``gap_s`` of silence
    between them): STOI needs about 2 s of speech to mean anything, and FSDD digits last ~0.4 s.
    """

    source: Literal["espeak", "dir", "fsdd", "librispeech"] = "espeak"
    dir: str | None = None
    speaker_pattern: str | None = r"^(?:[^_]+_|(?=\d+-\d+-\d+$))(?P<speaker>[^_]+?)(?:_|-\d+-\d+$)"
    fsdd_urls: list[str] = Field(default_factory=lambda: [DEFAULT_FSDD_URL], min_length=1)
    #: LibriSpeech's own subset names (openslr.org/12); dev-clean and test-clean (~5 h, 40 speakers each)
    #: fit in memory, the train-* subsets (100–500 h) need tens of GB of RAM once loaded.
    librispeech_subset: Literal[
        "dev-clean",
        "dev-other",
        "test-clean",
        "test-other",
        "train-clean-100",
        "train-clean-360",
        "train-other-500",
    ] = "dev-clean"
    #: URL templates tried in order; ``{subset}`` becomes the subset name (openslr.org, then its US mirror).
    librispeech_urls: list[str] = Field(
        default_factory=lambda: [
            "https://www.openslr.org/resources/12/{subset}.tar.gz",
            "https://us.openslr.org/resources/12/{subset}.tar.gz",
        ],
        min_length=1,
    )
    download_dir: str = "data/downloads/speech"
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
    espeak_sentences: PositiveInt = 12
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
        for template in self.librispeech_urls:
            # Checked here, not after a failed download: a template without {subset} would fetch the same
            # file for every subset, and a misspelt {field} would only fail at download time.
            if "{subset}" not in template:
                raise ValueError(
                    f"librispeech_urls entry {template!r} needs {{subset}}, e.g. .../{{subset}}.tar.gz"
                )
            try:
                template.format(subset=self.librispeech_subset)
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(
                    f"librispeech_urls entry {template!r} is not a valid template ({exc!r}); only {{subset}} "
                    "may appear in braces"
                ) from None
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
    #: Train/val noise only: each mixture's noise is tilted by a random slope within ± this many dB per
    #: octave (pivot 1 kHz), so a few recordings stand for a family of noise colours (0: as recorded).
    train_tilt_db_per_octave: Annotated[float, Field(ge=0, le=12)] = 0.0
    #: Train/val noise only: its level wanders smoothly within ± this many dB, about once a second, so
    #: steady recordings also teach noise that comes and goes (0: as recorded).
    train_level_wander_db: Annotated[float, Field(ge=0, le=20)] = 0.0

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
    #: Mask target only: aim at the clean magnitude *projected on the noisy phase*, ``|S|·cos(θS − θY)``
    #: (the phase-sensitive mask of Erdogan et al. 2015), instead of ``|S|``. The estimate keeps the noisy
    #: phase, and with that phase the projection is the magnitude closest to the clean STFT: where noise
    #: has turned a bin's phase, ``|S|`` itself would put back energy in the wrong direction.
    phase_sensitive: bool = False
    #: ``relative``: the network sees each bin relative to the utterance's noise floor (the mean power of
    #: its quietest ``noise_quantile`` of frames), i.e. a log a-posteriori SNR, which is what classical
    #: gain rules use; a 16-frame patch alone cannot tell the noise floor. ``absolute``: plain log-magnitude.
    input: Literal["relative", "absolute"] = "relative"
    noise_quantile: Annotated[float, Field(gt=0, le=0.5)] = 0.1
    #: Seconds of audio around each frame that its noise floor is taken from (``null``: the whole
    #: recording). A finite window lets a file be cleaned in blocks and a stream with a bounded delay
    #: (half the window, plus one patch) and follows noise that changes; recordings shorter than half the
    #: window get the whole-recording floor. Off in the class (models saved before it carry no key), on in
    #: the speech use case's default (``_speech_spectrogram``, = params.yaml).
    noise_window_s: Annotated[float, Field(gt=0, le=600)] | None = None
    inverse: Literal["istft", "griffin_lim"] = "istft"
    griffin_lim_iters: Annotated[int, Field(ge=1, le=500)] = 32
    patch_frames: Annotated[int, Field(ge=4, le=128)] = 16
    patch_hop: Annotated[int, Field(ge=1, le=128)] = 8
    #: Frames between the patches when a recording is cleaned (``null``: ``patch_hop``, as in training).
    #: Every frame's mask is the tapered mean of the patches that saw it, each from another position in
    #: its patch; more of them average out the errors of any one view. Costs the network
    #: ``patch_hop / inference_patch_hop`` times the patches. Saved with the model, like the rest of
    #: this section, so ``aeflow denoise`` and the registered model clean as the evaluate stage scored.
    inference_patch_hop: Annotated[int, Field(ge=1, le=128)] | None = None
    #: How much each time-frequency bin counts in the training loss. ``uniform``: all alike (plain MSE).
    #: ``noisy_power`` / ``clean_power``: the bin's linear power raised to ``loss_weight_exponent``,
    #: normalised to mean 1 per utterance. SI-SDR is an energy ratio decided by the loud bins, whereas a
    #: uniform loss on log values spends most of its effort on quiet bins that barely change the waveform.
    loss_weight: Literal["uniform", "noisy_power", "clean_power"] = "uniform"
    loss_weight_exponent: Annotated[float, Field(gt=0, le=2)] = 1.0
    #: What the squared error compares. ``log_mask``: the network's log ratio mask against the target's,
    #: each bin counted by ``loss_weight``. ``compressed_magnitude``: the estimated magnitude against the
    #: clean one, both raised to c = ``loss_weight_exponent`` (``(|Y|·M̂)^c`` against ``(|Y|·M)^c``; with
    #: ``loss_weight: noisy_power`` the weight carries the ``|Y|^{2c}``), the power-law compressed spectral
    #: loss of speech enhancement (c = 0.3 is the usual choice). Why: a log error weighs residual noise in a
    #: quiet bin as much as an error in a loud one, a power-weighted error hardly at all; c = 0.3 sits
    #: between, as perceived loudness does (Stevens' power law), nearer to what PESQ scores.
    loss: Literal["log_mask", "compressed_magnitude"] = "log_mask"
    #: Deepest attenuation of the mask in dB (``null``: unbounded), applied to the training target and to
    #: the estimate. Without it, bins where the clean signal is near silence ask for −80 dB or more, and
    #: these large log errors dominate the loss although −30 dB already removes the noise there. Both
    #: class defaults here are off so that models saved before these options (their ``data_config`` has
    #: neither key) load with the settings they were trained with; the speech use case's default
    #: (``_speech_spectrogram``, = params.yaml) turns them on (README: speech benchmark).
    mask_floor_db: Annotated[float, Field(ge=-120, lt=0)] | None = None

    @property
    def cleaning_hop(self) -> int:
        """Frames between the patches when a recording is cleaned."""
        return self.inference_patch_hop or self.patch_hop

    @model_validator(mode="after")
    def _check(self) -> SpectrogramParams:
        if self.mask_floor_db is not None and self.target != "mask":
            raise ValueError("mask_floor_db needs target 'mask' (it bounds the mask's attenuation)")
        if self.inference_patch_hop is not None and self.inference_patch_hop > self.patch_frames:
            raise ValueError(
                f"inference_patch_hop ({self.inference_patch_hop}) must not exceed patch_frames "
                f"({self.patch_frames}): frames between two patches would never be cleaned"
            )
        if self.hop_length > self.n_fft:
            raise ValueError("hop_length must not exceed n_fft (frames would skip samples)")
        if self.scale == "mel" and self.input == "relative":
            raise ValueError("scale 'mel' needs input 'absolute'")
        if self.scale == "mel" and self.target == "mask":
            raise ValueError("scale 'mel' needs target 'magnitude' (a mel mask cannot be applied per bin)")
        if self.phase_sensitive and self.target != "mask":
            raise ValueError("phase_sensitive needs target 'mask' (it changes what the mask aims at)")
        if self.loss == "compressed_magnitude" and (self.target, self.loss_weight) != ("mask", "noisy_power"):
            raise ValueError(
                "loss 'compressed_magnitude' needs target 'mask' and loss_weight 'noisy_power' (the "
                f"estimate is |Y|·mask; |Y|^(2c) is its weight), got target {self.target!r}, loss_weight "
                f"{self.loss_weight!r}"
            )
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
    return SpectrogramParams(loss_weight="noisy_power", mask_floor_db=-30.0, noise_window_s=4.0)


def _speech_model() -> AEConfig:
    return model_section(
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
            "epochs": 6,
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
    promotion: GateParams = Field(
        default_factory=lambda: GateParams(
            metric="test/si_sdr_improvement", mode="max", margin=0.1, margin_type="absolute"
        )
    )

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


SECTION = SpeechParams
