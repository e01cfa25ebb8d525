# The Colab rehearsal's kernels start like Colab's: with google.colab imported (the stand-in in colab/rehearsal).
import google.colab  # noqa: F401
