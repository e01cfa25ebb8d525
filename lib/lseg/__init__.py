"""LSeg: language-driven semantic segmentation (Li et al., ICLR 2022, arXiv 2201.03546), for Chapter 3.

- :mod:`lib.lseg.spatial_regularization` the paper's label-equivariant blocks on the logit map
- :mod:`lib.lseg.config`   the chapter's settings per scale (tiny, colab, paper), built from small parts
- :mod:`lib.lseg.paper_numbers` the paper's own numbers, each with its table or source
- :mod:`lib.lseg.model`    the DPT-style dense encoder over a timm ViT, the fixed-temperature pixel-text logits
- :mod:`lib.lseg.text`     frozen text encoders (CLIP ViT-B/32 text, MiniLM, random control), cached by label
- :mod:`lib.lseg.official` loading the released checkpoint (state-dict layout of the official ``LSegNet``)
- :mod:`lib.lseg.metrics`  mIoU / FB-IoU of the zero-shot protocol, pixel accuracy, the all-labels protocol
- :mod:`lib.lseg.data`     the tiny data: Tux Paint photo cut-outs composited on real photos
- :mod:`lib.lseg.training` CE over the offered labels, ignore index, poly schedule (``lib.train.fit``): the tiny runs
  and the PASCAL-5i folds
- :mod:`lib.lseg.evaluation` measurements on a trained LSeg: protocols, controls, label removal, "other", coarse labels
- :mod:`lib.lseg.experiment` the chapter's runs put together, and the verdicts of its scorecard and glance
- :mod:`lib.lseg.tables`   the chapter's tables (formatting only)
- :mod:`lib.lseg.plots`    the chapter's figures (drawing only)
- :mod:`lib.lseg.weights`  colab: OpenAI's CLIP from open_clip's Hugging Face source (safetensors), timm's ImageNet ViT
- :mod:`lib.lseg.pascal`   colab: PASCAL-5i folds from VOC2012, episodes {others, class}, the zero-shot protocol
- :mod:`lib.lseg.diagnosis` the diagnosis sweep: the spatial blocks' mIoU over seeds, and the power it has
- :mod:`lib.lseg.recipe`   paper: the PASCAL-5i recipe as a command under ``torchrun`` (train, evaluate, plan)
"""

from lib.lseg.model import ARCHITECTURES, TEMPERATURE, Architecture, LSeg, architecture  # noqa: F401
from lib.lseg.official import (UNUSED_PREFIXES, convert_official_checkpoint, fetch_official,  # noqa: F401
                               from_official_state_dict, split_official_state_dict)
from lib.lseg.spatial_regularization import SpatialRegularization  # noqa: F401
from lib.lseg.text import CLIPText, MiniLMText, RandomText, TextEncoder, check_labels  # noqa: F401
