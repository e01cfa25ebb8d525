"""Image coding for machines → humans: PatchGAN finetuning of an ICM decoder's first layers.

Le, Zhang, Cricri, Youvalari, Rezazadegan Tavakoli, Aksu, Hannuksela, Rahtu, "Bridging the Gap Between Image
Coding for Machines and Humans", ICIP 2022 (arXiv 2401.10732). Chapter 1 of the course.

- :mod:`lib.icm.config`       the chapter's settings, one frozen :class:`ICMConfig` per scale (``CONFIGS``), and
                              the finetuning runs it shows (``cfg.runs()``)
- :mod:`lib.icm.paper_numbers` the poster's Table 1, each number with its source
- :mod:`lib.icm.decoder_finetuning` the paper's idea: what is frozen, what trains, the loss with every term
- :mod:`lib.icm.codec`        the ICM codec (CompressAI factorized prior, straight-through rounding and clamping)
- :mod:`lib.icm.machine`      the machine (EfficientNet-Lite0 at tiny scale; Mask R-CNN + COCO mAP at colab)
- :mod:`lib.icm.base`         training the base codec for the machine (rate + task loss)
- :mod:`lib.icm.data`         the offline photos and object scenes; :mod:`lib.icm.kodak`, :mod:`lib.icm.coco`: the
                              downloaded sets of ``colab``
- :mod:`lib.icm.experiment`   the chapter's steps, each made as the configuration says (memoised)
- :mod:`lib.icm.patchgan`     the PatchGAN discriminator and the aligned patches it judges
- :mod:`lib.icm.plots`        the chapter's figures and tables (drawing only)
- :mod:`lib.icm.checkerboard` the periodic-artifact score
- :mod:`lib.icm.evaluate`     bpp from real bitstreams, PSNR, MS-SSIM, task fidelity, artifact score
- :mod:`lib.icm.diagnosis`    one point of the chapter's diagnosis sweep (budget, seed, λ_adv, trained layers)
- :mod:`lib.icm.recipe`       the ``paper`` scale: the poster's recipe as a command under ``torchrun``;
                              :mod:`lib.icm.recipe_results` its evaluation, cost estimate and scorecard
"""

from lib.icm.checkerboard import checkerboard_score, phase_means, residual_spectrum  # noqa: F401
from lib.icm.config import CONFIGS  # noqa: F401
from lib.icm.codec import compress_all, decompress_all  # noqa: F401
from lib.icm.decoder_finetuning import FinetuneConfig, gan_loss  # noqa: F401
from lib.icm.patchgan import PatchDiscriminator, aligned_patches, receptive_field  # noqa: F401
from lib.icm import paper_numbers  # noqa: F401
