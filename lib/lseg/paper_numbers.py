"""The paper's own numbers that chapter 3 compares with, each with where it is printed.

Li, Weinberger, Belongie, Koltun, Ranftl, "Language-driven Semantic Segmentation", ICLR 2022 (arXiv 2201.03546).
The per-fold zero-shot numbers of the ResNet-101 models and the FSS-1000 numbers are also in the authors' README
(github isl-org/lang-seg, ``README.MD``, table "dataset / fold / backbone / text encoder / performance"), which
lists one released checkpoint per row. Values are mIoU in %.
"""

from __future__ import annotations

# §5.1, the PASCAL-5i zero-shot table; per fold, LSeg with the ResNet-101 image encoder and CLIP ViT-B/32 text
# (the same four values as the authors' README)
PASCAL5I_RN101 = {0: 52.8, 1: 53.8, 2: 44.4, 3: 38.5}
# §5.1, the same table: the mean over the four folds of the row above (47.375, printed rounded)
PASCAL5I_RN101_MEAN = 47.4
# §5.1, the same table: the mean over the folds with the ViT-L/16 image encoder (not in the README)
PASCAL5I_VITL16_MEAN = 52.3
# §5.1, the FSS-1000 zero-shot table: ViT-L/16 image encoder (the README's "fss ViT-L/16" row)
FSS1000_VITL16 = 87.8
# §5 ablation on ADE20K (a table of block types and depths): the baseline row, ViT-B/32 image and text encoders,
# no spatial regularization blocks (as a user of github isl-org/lang-seg quotes it in the issue tracker)
ADE20K_VITB32_NO_BLOCKS = 37.8
