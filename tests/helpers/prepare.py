"""scripts/prepare.py imported as the module ``prepare`` (the book's preparation: steps, inputs hashes, stored
executions); registered in sys.modules so that its worker processes can find it."""
import importlib.util
import sys
from pathlib import Path

# its worker processes import it by name: scripts/ first on the path, whatever else a test file put there
_SCRIPTS = str(Path(__file__).resolve().parents[2] / "scripts")
if sys.path[:1] != [_SCRIPTS]:
    sys.path.insert(0, _SCRIPTS)
if "prepare" not in sys.modules:
    _spec = importlib.util.spec_from_file_location("prepare",
                                                   Path(__file__).resolve().parents[2] / "scripts" / "prepare.py")
    sys.modules["prepare"] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(sys.modules["prepare"])
prepare = sys.modules["prepare"]
