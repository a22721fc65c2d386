"""Files saved by earlier softmaxkit versions, and by later ones (audit AX).

A file written with an earlier row-uniform scheme (before the conformal predictor recorded it) gave
other randomised APS sets for the same seed after an upgrade (26 of 103 rows at 90%), exit 0, no word;
a file from a newer softmaxkit with a parameter this one does not know was called "corrupted".
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import softmaxkit as sk
from softmaxkit.calibration import TemperatureScaling
from softmaxkit.conformal import ConformalClassifier, ConformalWarning
from softmaxkit.io import ModelFileError, save_state


def _fitted(score: str) -> ConformalClassifier:
    rng = np.random.default_rng(0)
    z, y = rng.normal(size=(200, 4)), rng.integers(0, 4, 200)
    return ConformalClassifier(score=score, random_state=0).fit(z, y)


def _saved_without_scheme(cp: ConformalClassifier, path) -> None:
    """``cp`` saved as the versions before the ``uniforms`` record wrote it."""
    meta, arrays = cp._get_state()
    meta.pop("uniforms", None)
    save_state(path, kind="ConformalClassifier", meta=meta, arrays=arrays)


def test_a_seeded_randomised_predictor_without_the_uniforms_record_warns(tmp_path):
    _saved_without_scheme(_fitted("aps"), tmp_path / "old.npz")
    with pytest.warns(ConformalWarning, match=r"random_state=0 draws the randomised scores.*differ.*coverage "
                                              r"guarantee still holds.*Save it again"):
        sk.load(tmp_path / "old.npz")


@pytest.mark.parametrize("score", ["aps", "lac"])
def test_files_that_record_the_scheme_or_draw_nothing_load_quietly(tmp_path, score):
    """Guard: today's files, and LAC files of any age (LAC draws no uniforms), load without a warning."""
    cp = _fitted(score)
    cp.save(tmp_path / "new.npz")
    _saved_without_scheme(cp, tmp_path / "old.npz")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConformalWarning)
        sk.load(tmp_path / "new.npz")
        if score == "lac":
            sk.load(tmp_path / "old.npz")


def test_a_parameter_from_a_newer_version_says_upgrade(tmp_path):
    cal = TemperatureScaling().fit(np.random.default_rng(0).normal(size=(50, 3)), np.arange(50) % 3)
    meta, arrays = cal._get_state()
    meta["params"]["option_of_a_later_version"] = 1
    save_state(tmp_path / "t.npz", kind="TemperatureScaling", meta=meta, arrays=arrays)
    with pytest.raises(ModelFileError, match=r"parameter 'option_of_a_later_version' is unknown to this "
                                             r"softmaxkit: the file is probably from a newer version; upgrade"):
        sk.load(tmp_path / "t.npz")
