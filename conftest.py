# Makes `import lib` work from the repository root in the test suite, whichever checkout it runs in.
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("COURSE_SCALE", "tiny")


# Each chapter notebook is executed once per `make course` + `make test`: a notebook whose execution by the book build
# (scripts/prepare.py, into the book's jupyter-cache) is recorded for the current inputs (the notebook, lib/, the
# configuration, the environment, the commit) is not executed again under nbval; tests/test_book.py checks that stored
# execution instead. Anything changed, never built, or failed: nbval executes it. COURSE_NBVAL_ALL=1 executes all.
def pytest_collection_modifyitems(config, items):
    from pathlib import Path

    book = Path(__file__).resolve().parent / "book"
    notebooks = {Path(str(i.fspath)).stem for i in items if Path(str(i.fspath)).parent == book
                 and str(i.fspath).endswith(".ipynb")}
    config.course_reused = []
    if not notebooks or os.environ.get("COURSE_NBVAL_ALL") == "1":
        return
    from scripts import prepare

    common = prepare.common_inputs()
    reused = sorted(n for n in notebooks if n in prepare.BOOK and prepare.up_to_date(n, common))
    drop = [i for i in items if Path(str(i.fspath)).parent == book and Path(str(i.fspath)).stem in reused]
    if drop:
        items[:] = [i for i in items if i not in drop]
        config.hook.pytest_deselected(items=drop)
    config.course_reused = reused


def pytest_report_collectionfinish(config, start_path, items):
    reused = getattr(config, "course_reused", [])
    if reused:
        return (f"notebooks reused from the book build (inputs unchanged; their stored execution is checked by "
                f"tests/test_book.py): {', '.join(reused)}")
