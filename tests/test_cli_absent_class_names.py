"""``calibrate``'s warning about classes with no calibration row names them as the scores file does.

Audit AI: with named score columns the warning said "classes 0, 1 and 4 have no row among the 20
calibration rows": positions in a sorted list of names the user never sees.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from cli_helpers import call

NAMES = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "zero"]


def test_absent_classes_are_named_as_the_columns_name_them(tmp_path, capsys):
    rng = np.random.default_rng(0)
    z = rng.normal(size=(40, len(NAMES)))
    y = rng.choice(7, size=40)  # "eight", "nine" and "zero" have no row
    pd.DataFrame(z, columns=[f"logit_{c}" for c in NAMES]).to_csv(tmp_path / "s.csv", index=False)
    pd.DataFrame({"label": [NAMES[i] for i in y]}).to_csv(tmp_path / "l.csv", index=False)
    rc, _, err = call(capsys, "calibrate", "--logits", tmp_path / "s.csv", "--labels", tmp_path / "l.csv",
                      "--out", tmp_path / "c.npz", "--method", "vector")
    assert rc == 0
    line = next(line for line in err.splitlines() if "no row among" in line)
    assert "classes 'eight', 'nine' and 'zero' have no row among the 40 calibration rows" in line, line
