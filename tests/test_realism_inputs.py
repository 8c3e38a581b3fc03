"""facelab.realism refuses bad arguments before rendering or detecting anything."""

from __future__ import annotations

import numpy as np
import pytest

import facelab as fl
from facelab.realism import mirror_consistency, realism_study


@pytest.mark.parametrize("kwargs, error, text", [
    ({"n": 0}, ValueError, "n: expected an int >= 1"),
    ({"n": 2.0}, TypeError, "n: expected an int"),
    ({"seed": -1}, ValueError, "seed"),
    ({"size": 32}, ValueError, "size: expected an int >= 64"),
    ({"id_scale": -0.5}, ValueError, "id_scale: expected a finite number >= 0"),
    ({"id_scale": float("nan")}, ValueError, "id_scale"),
    ({"id_scale": "1"}, TypeError, "id_scale: expected a number"),
])
def test_realism_study_rejects_bad_arguments(kwargs, error, text):
    model = fl.load_model("synthetic", "teaching", version=2)
    with pytest.raises(error, match=text):
        realism_study(model, **kwargs)


def test_mirror_consistency_checks_shapes():
    def never(_):
        raise AssertionError("the detector must not run on bad input")

    with pytest.raises(ValueError, match="landmarks"):
        mirror_consistency(never, np.zeros((64, 64, 3), np.float32), np.zeros((5, 2)), 10.0)
    with pytest.raises(ValueError, match="picture"):
        mirror_consistency(never, np.zeros((64, 64)), np.zeros((68, 2)), 10.0)
