"""docs/reliability.md's table names only tests that exist."""
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_every_test_the_reliability_table_names_exists():
    text = (REPO / "docs/reliability.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| fault")]
    assert len(rows) >= 15
    named = 0
    for row in rows:
        last_file = None
        for ref in re.findall(r"`([\w/]*test_\w+\.py)?(?:::(test_\w+))?`", row.split(" | ")[-1]):
            file, func = ref
            if file:
                path = REPO / file if "/" in file else REPO / "tests/reliability" / file
                assert path.is_file(), file
                last_file = path
            if func:
                assert last_file is not None, row
                assert re.search(rf"^def {func}\(", last_file.read_text(), re.M), f"{last_file.name}::{func}"
                named += 1
    assert named >= 15
