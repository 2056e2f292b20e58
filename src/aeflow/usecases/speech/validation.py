"""The expectation suite for an ingested speech corpus (its ``manifest.csv``).

The manifest has one row per clip (speaker, split, duration, rate, level, clipping and silence ratios,
measured by ingest). Great-expectations column expectations check each rule on it directly; a per-speaker
frame checks that no speaker appears in two splits (the held-out-speaker promise of the evaluation), and a
per-split frame checks that every split has clips.
"""

from __future__ import annotations

import pandas as pd

from aeflow.usecases.speech.params import SpeechValidateParams
from aeflow.validation.core import Check, FrameSuite

SPLITS = ("train", "val", "test")


def speech_suites(
    manifest: pd.DataFrame, file: str, params: SpeechValidateParams, sample_rate: int
) -> list[FrameSuite]:
    """Suites for a speech manifest expected at ``sample_rate`` Hz."""
    fix_ingest = "re-run ingest (it conditions every clip) or fix the files at the source"
    clip_checks = [
        Check(
            "ExpectColumnValuesToBeInSet",
            {"column": "sample_rate", "value_set": [sample_rate]},
            f"every clip must be at speech.ingest.sample_rate = {sample_rate} Hz; {fix_ingest}",
            "one sample rate",
        ),
        Check(
            "ExpectColumnValuesToBeBetween",
            {"column": "duration_s", "min_value": params.min_duration_s, "max_value": params.max_duration_s},
            "clips must last between speech.validate.min_duration_s and max_duration_s; short clips are "
            "joined per speaker by ingest (speech.ingest.min_duration_s), long ones are cut",
            "duration bounds",
        ),
        Check(
            "ExpectColumnValuesToBeBetween",
            {"column": "clipping_ratio", "min_value": 0.0, "max_value": params.max_clipping_ratio},
            "these recordings are clipped (samples at full scale); record them again at a lower gain, "
            "drop them, or raise speech.validate.max_clipping_ratio",
            "clipping ratio",
        ),
        Check(
            "ExpectColumnValuesToBeBetween",
            {"column": "silence_ratio", "min_value": 0.0, "max_value": params.max_silence_ratio},
            "these clips are mostly silence; trim or drop them, or raise speech.validate.max_silence_ratio",
            "silence ratio",
        ),
        Check(
            "ExpectColumnValuesToBeInSet",
            {"column": "split", "value_set": list(SPLITS)},
            "split must be train, val or test; re-run ingest",
            "known split",
        ),
        Check(
            "ExpectColumnValuesToNotBeNull",
            {"column": "speaker"},
            "every clip needs a speaker; check speech.ingest.speaker_pattern",
            "speaker set",
        ),
        Check(
            "ExpectColumnValuesToBeUnique",
            {"column": "id"},
            "clip ids must be unique; re-run ingest",
            "unique ids",
        ),
    ]
    speakers = (
        manifest.groupby("speaker")["split"].nunique().rename("splits").reset_index()
        if len(manifest)
        else pd.DataFrame({"speaker": pd.Series(dtype=str), "splits": pd.Series(dtype=int)})
    )
    counts = manifest["split"].value_counts() if len(manifest) else pd.Series(dtype=int)
    per_split = pd.DataFrame({"split": list(SPLITS), "clips": [int(counts.get(s, 0)) for s in SPLITS]})
    return [
        FrameSuite("clips", file, manifest, clip_checks, row_label="clip"),
        FrameSuite(
            "speakers",
            file,
            speakers,
            [
                Check(
                    "ExpectColumnValuesToBeBetween",
                    {"column": "splits", "min_value": 1, "max_value": 1},
                    "a speaker may appear in one split only (test speakers must be unseen); set "
                    "speech.ingest.test_speakers / val_speakers to disjoint lists",
                    "speaker-disjoint splits",
                )
            ],
            row_label="speaker",
        ),
        FrameSuite(
            "splits",
            file,
            per_split,
            [
                Check(
                    "ExpectColumnValuesToBeBetween",
                    {"column": "clips", "min_value": params.min_clips_per_split},
                    "every split needs clips; add recordings or speakers, or change the speaker split",
                    f"≥ {params.min_clips_per_split} clip(s) per split",
                )
            ],
            row_label="split",
        ),
    ]
