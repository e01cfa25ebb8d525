"""scripts/prepare.py imported as the module ``prepare`` (the book's preparation: steps, inputs hashes, stored
executions); registered in sys.modules so that its worker processes can find it."""
import importlib.util
import sys
from pathlib import Path

_PATH = Path(__file__).resolve().parents[2] / "scripts" / "prepare.py"
# its worker processes import it by name: scripts/ first on the path, whatever else a test file put there
if sys.path[:1] != [str(_PATH.parent)]:
    sys.path.insert(0, str(_PATH.parent))
if __name__ == "prepare":
    # this file itself was found as ``prepare`` (in a worker process whose path finds tests/helpers first): be
    # scripts/prepare.py, so that what the scheduler sent (``prepare.run_step``) is found here
    __file__ = str(_PATH)
    exec(compile(_PATH.read_text(), __file__, "exec"), globals())
    prepare = sys.modules[__name__]
else:
    if "prepare" not in sys.modules:
        _spec = importlib.util.spec_from_file_location("prepare", _PATH)
        sys.modules["prepare"] = importlib.util.module_from_spec(_spec)
        _spec.loader.exec_module(sys.modules["prepare"])
    prepare = sys.modules["prepare"]
