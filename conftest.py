# Makes `import lib` work from the repository root in the test suite, whichever checkout it runs in.
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("COURSE_SCALE", "tiny")
