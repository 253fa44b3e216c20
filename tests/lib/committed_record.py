"""The committed records of `make demo` and `make seeds` in docs/, and copies of them that
a test may break (tests/app/test_workflow_check.py, tests/app/test_seeds_check.py)."""

import json
import shutil
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"


def copy_record(folder, names):
    """Copy the committed files ``names`` into ``folder``; returns ``folder``."""
    for name in names:
        shutil.copy(DOCS / name, folder / name)
    return folder


def edit_json(path, edit):
    """Apply ``edit`` (a function changing the parsed document in place) to a JSON file."""
    info = json.loads(path.read_text())
    edit(info)
    path.write_text(json.dumps(info))


def quiet(message):
    """A log function that drops every message."""
