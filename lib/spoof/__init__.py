"""Chapter 2: how spoofing countermeasures detect partially spoofed audio (Liu et al., Interspeech 2024, arXiv 2406.02483).

One idea per file:
  rcq.py           RCQ per segment type: the rule of the authors' scoring code, or a "clean" rule
  gradcam.py       Grad-CAM over time, batched (temporal_cam: the formula; pytorch-grad-cam: the reference)
  ssl_res1d.py     the SSL-Res1D countermeasure (XLS-R front-end) and its CPU sibling with the same back-end
  countermeasure.py  train a CM, score utterances, Grad-CAM and RCQ: one cell pair of Table 2
  metrics.py       EER (scikit-learn's ROC) and the trial checks
  config.py        SpoofConfig per scale (CONFIGS): a data source, a countermeasure, its training
  paper_numbers.py the paper's own numbers, each with its table
  experiment.py    the chapter's runs at the scale in force, memoised
  data.py          an offline partial-spoof corpus: real speech, silero-vad, Griffin-Lim re-synthesis, splices
  partialspoof.py  readers for PartialSpoof v1.2 and ASVspoof 2019 LA (protocols, audio, archives)
  partialspoof_labels.py  their label formats and the five segment types derived from the public labels
  partialspoof_subset.py  the subsets the colab scale downloads
  recipe.py        paper: the recipe as a command under torchrun (train, evaluate, plan)
  diagnosis.py     the diagnosis sweep: Table 3 across training budgets and seeds
  audio.py, plots.py   audio I/O and checks; the chapter's figures and tables (matplotlib, seaborn)
"""
from .audio import SR, batch_waveforms, check_waveform, load_audio
from .gradcam import gradcam, gradcam_reference, temporal_cam
from .rcq import KINDS, frame_of, rcq, rcq_counts, rcq_per_utterance, segment_frames
from .ssl_res1d import SpoofCM, build_ssl_res1d, n_frames, p2sgrad_loss, tiny_cm
