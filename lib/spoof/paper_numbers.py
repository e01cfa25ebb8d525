"""The paper's own numbers (Liu et al., Interspeech 2024, arXiv 2406.02483), each with the table or section it
comes from. Tables 2 and 3 are transcribed, not yet checked against the PDF; ``SOURCE`` says so wherever they are
shown.

RCQ is in percent per segment type (BS bona fide speech, SS spoofed speech, TR transition region, BN bona fide
non-speech, SN spoofed non-speech), EER in percent on the PartialSpoof split of the column.
"""
from __future__ import annotations

SOURCE = "Table 2 (transcribed, unverified)"

# Table 2: RCQ (%) of SSL-Res1D CMs on the partially spoofed samples of PartialSpoof, per training set
# ("ASVspoof19" = ASVspoof 2019 LA, fully spoofed; "PartialSpoof") and Grad-CAM target ("spoof" or "bona fide"),
# with the utterance EER (%) of each CM on the same split (one EER per CM: in its spoof-target row).
TABLE2 = {
    "dev": {("ASVspoof19", "spoof"): {"EER": 4.67, "BS": -3.60, "SS": 31.38, "TR": 4.07, "BN": -29.77, "SN": -13.42},
            ("ASVspoof19", "bona fide"): {"BS": -0.77, "SS": -35.07, "TR": 39.14, "BN": 30.24, "SN": 12.75},
            ("PartialSpoof", "spoof"): {"EER": 0.35, "BS": -0.06, "SS": 1.87, "TR": 15.03, "BN": -6.95, "SN": -1.81},
            ("PartialSpoof", "bona fide"): {"BS": -3.65, "SS": -7.90, "TR": 49.85, "BN": 1.27, "SN": 0.89}},
    "eval": {("ASVspoof19", "spoof"): {"EER": 3.60, "BS": -3.62, "SS": 25.81, "TR": 21.69, "BN": -33.43, "SN": -7.87},
             ("ASVspoof19", "bona fide"): {"BS": -7.11, "SS": -27.24, "TR": 37.03, "BN": 38.72, "SN": 15.26},
             # the PartialSpoof eval EER cell was garbled in transcription: 0.73 is its likely value
             ("PartialSpoof", "spoof"): {"EER": 0.73, "BS": -0.62, "SS": -0.90, "TR": 25.36, "BN": -4.72, "SN": 0.99},
             ("PartialSpoof", "bona fide"): {"BS": -8.63, "SS": -4.57, "TR": 58.01, "BN": 10.22, "SN": -1.09}},
}
TRAINING_SET = {"full": "ASVspoof19", "partial": "PartialSpoof"}   # our CMs by training data → Table 2's rows

# Table 3: RCQ (%) of the PartialSpoof-trained SSL-Res1D, spoof target, on the partially spoofed samples it
# misclassifies.
TABLE3 = {"dev": {"BS": 12.22, "SS": 17.75, "TR": -6.76, "BN": -19.89, "SN": -20.18},
          "eval": {"BS": 26.76, "SS": 27.66, "TR": -10.42, "BN": -49.19, "SN": -28.16}}

# Sec. 4 (experimental setup, as the authors' recipe runs it): the whole PartialSpoof training set, 20 epochs
TRAIN_UTTERANCES = 25_380
EPOCHS = 20


def table2(split: str) -> dict:
    """Table 2's column for a PartialSpoof split ("dev" or "eval"): ``{(training set, target): {type: value}}``."""
    if split not in TABLE2:
        raise ValueError(f"the paper reports Table 2 for the PartialSpoof splits {sorted(TABLE2)}, not {split!r}")
    return TABLE2[split]


def eer_range() -> tuple[float, float]:
    """The lowest and highest EER (%) in Table 2."""
    eers = [row["EER"] for col in TABLE2.values() for row in col.values() if "EER" in row]
    return min(eers), max(eers)

