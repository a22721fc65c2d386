"""Audit CI: a library call that needs an optional package names the extra that installs it.

``ReliabilityDiagram(...).plot()`` without matplotlib and ``save("m.safetensors")`` without safetensors
raised a bare ``ModuleNotFoundError: No module named 'X'``; ``load`` of a ``.safetensors`` file without
safetensors said the file was "corrupted or not a softmaxkit model". The packages are hidden here by a
``sys.modules`` entry of None, which makes their import fail as if they were not installed.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

import softmaxkit as sk
from softmaxkit.calibration import TemperatureScaling
from softmaxkit.plot import ReliabilityDiagram


@pytest.fixture
def without(monkeypatch):
    def hide(*names):
        for name in names:
            monkeypatch.setitem(sys.modules, name, None)

    return hide


def _fitted():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(60, 3))
    return TemperatureScaling().fit(logits, rng.integers(0, 3, 60))


def test_plot_without_matplotlib_names_the_plot_extra(without):
    without("matplotlib", "matplotlib.pyplot", "matplotlib.colors")
    with pytest.raises(ModuleNotFoundError, match=r"needs matplotlib, which is not installed: pip install 'softmaxkit\[plot\]'"):
        ReliabilityDiagram.from_predictions(np.r_[0, 1, 1, 0], np.r_[0.2, 0.7, 0.9, 0.4])


def test_safetensors_save_and_load_without_it_name_the_io_extra(tmp_path, without):
    calibrator = _fitted()
    saved = sk.load(calibrator.save(tmp_path / "t.safetensors"))  # with safetensors: the round trip works
    assert saved.temperature_ == calibrator.temperature_
    without("safetensors", "safetensors.numpy")
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'softmaxkit\[io\]'") as raised:
        calibrator.save(tmp_path / "u.safetensors")
    assert raised.value.name == "safetensors.numpy"  # as Python's own: the CLI's handler keys on it
    assert not (tmp_path / "u.safetensors").exists()
    # not "corrupted or not a softmaxkit model": the file is fine, the reader is missing
    with pytest.raises(ModuleNotFoundError, match=r"loading a \.safetensors file needs safetensors"):
        sk.load(tmp_path / "t.safetensors")


def test_a_module_missing_inside_an_installed_package_is_pythons_error():
    """Guard: only the optional package itself missing is rewritten."""
    from softmaxkit._extras import import_optional

    with pytest.raises(ModuleNotFoundError, match="No module named 'matplotlib.not_a_module'"):
        import_optional("matplotlib.not_a_module", needed_for="x")
