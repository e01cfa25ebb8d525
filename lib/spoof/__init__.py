"""Chapter 2: how spoofing countermeasures detect partially spoofed audio (Liu et al., Interspeech 2024)."""
from .rcq import KINDS, frame_of, rcq, rcq_counts, rcq_per_utterance, segment_frames
from .gradcam import gradcam, gradcam_reference
from .ssl_res1d import SpoofCM, n_frames, p2sgrad_loss, build_ssl_res1d, tiny_cm
from .audio import batch_waveforms, check_waveform, load_audio
