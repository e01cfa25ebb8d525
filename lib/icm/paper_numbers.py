"""The paper's own numbers that chapter 1 quotes, each with where it is published.

Le, Zhang, Cricri, Youvalari, Rezazadegan Tavakoli, Aksu, Hannuksela, Rahtu, "Bridging the Gap Between Image
Coding for Machines and Humans", ICIP 2022: the numbers are in the authors' poster, Table 1 (instance segmentation
with a Mask R-CNN-type network on Open Images; "VGG" is a feature distance, lower is better; the bitrate is the same
in every row, by construction). Numbers the course measured itself on the authors' published pictures are kept
apart (:data:`PROJECT_PAGE_ARTIFACT`): they are ours, not the paper's.
"""

from __future__ import annotations

from typing import NamedTuple

SOURCE = "poster Table 1"


class Row(NamedTuple):
    """One row of the poster's Table 1."""
    map: float           # mask mAP
    psnr: float          # dB
    ssim: float
    vgg: float           # feature distance
    map_change: float    # relative mask-mAP change against the base codec, %


# poster Table 1, rows keyed "k×s" (k aligned patches of s×s pixels); "base" is the codec before finetuning and
# "LI 3×128" the "low adversarial impact" setting
TABLE_1: dict[str, Row] = {
    "base": Row(0.766, 27.695, 0.709, 0.495, 0.0),
    "3×64": Row(0.752, 28.526, 0.764, 0.497, -1.83),
    "3×32": Row(0.750, 28.316, 0.740, 0.537, -2.09),
    "5×64": Row(0.749, 28.540, 0.765, 0.499, -2.22),
    "1×64": Row(0.748, 28.518, 0.763, 0.502, -2.35),
    "3×128": Row(0.754, 28.498, 0.763, 0.502, -1.57),   # the abstract's "-1.6 %"
    "LI 3×128": Row(0.766, 28.129, 0.726, 0.469, 0.00),
}
MAIN = "3×64"   # the poster's main setting: 3 patches of 64×64


def main_row() -> Row:
    """The row of the poster's main setting, :data:`MAIN`."""
    return TABLE_1[MAIN]

# BD-rate of the same group's earlier ICM codec against VVC, for object detection (Le et al., "Image Coding for
# Machines: an End-to-End Learned Approach", ICASSP 2021, arXiv 2108.09993, abstract), %
ICASSP2021_BD_RATE_DETECTION = -37.87

# The course's artifact score (lib.icm.checkerboard_score, P=4) on the crops the project page shows, measured while
# preparing the course: not a number of the paper, and not re-measured by the chapter
PROJECT_PAGE_ARTIFACT = {"base": 0.225, "PatchGAN": 0.038, "LI": 0.197}
PROJECT_PAGE_ARTIFACT_SOURCE = "project-page crops, P=4, measured while preparing the course (unverified)"
