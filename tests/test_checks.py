import numpy as np
import pytest
import torch

from facelab._checks import (
    as_tensor,
    check_finite,
    check_floating,
    check_indices,
    check_int,
    check_positive,
    check_shape,
    like_input,
)


def test_check_shape_binds_and_returns_dims():
    dims = check_shape(torch.zeros(4, 100, 3), "B V 3", name="verts")
    assert dims == {"B": 4, "V": 100}
    check_shape(torch.zeros(100, 3), "V 3", name="colors", dims=dims)


def test_check_shape_message_names_argument_and_shapes():
    with pytest.raises(ValueError, match=r"verts: expected \(B, V, 3\), got \(4, 100\)"):
        check_shape(torch.zeros(4, 100), "B V 3", name="verts")


def test_check_shape_ties_sizes_across_calls():
    dims = check_shape(torch.zeros(2, 10, 3), "B V 3", name="verts")
    with pytest.raises(ValueError, match="colors: expected .* with V=10"):
        check_shape(torch.zeros(2, 11, 3), "B V 3", name="colors", dims=dims)


def test_check_shape_repeated_name_within_spec():
    check_shape(np.zeros((3, 3)), "N N", name="m")
    with pytest.raises(ValueError):
        check_shape(np.zeros((3, 4)), "N N", name="m")


def test_check_shape_ellipsis_and_wildcard():
    check_shape(torch.zeros(2, 5, 7, 3, 3), "... 3 3", name="R")
    check_shape(torch.zeros(3, 3), "... 3 3", name="R")
    check_shape(torch.zeros(5, 9), "* 9", name="x")
    with pytest.raises(ValueError, match=r"R: expected \(\.\.\., 3, 3\), got \(3,\)"):
        check_shape(torch.zeros(3), "... 3 3", name="R")


def test_check_shape_rejects_non_arrays():
    with pytest.raises(TypeError, match="verts: expected a torch.Tensor or numpy.ndarray, got list"):
        check_shape([[0.0, 0.0, 0.0]], "V 3", name="verts")


def test_check_floating():
    check_floating(torch.zeros(2), name="x")
    check_floating(np.zeros(2, np.float32), name="x")
    with pytest.raises(TypeError, match="x: expected float32 or float64, got torch.int64"):
        check_floating(torch.zeros(2, dtype=torch.long), name="x")
    with pytest.raises(TypeError, match="float16"):
        check_floating(torch.zeros(2, dtype=torch.float16), name="x")


def test_check_finite_counts_bad_entries():
    x = torch.tensor([0.0, float("nan"), float("inf")])
    with pytest.raises(ValueError, match="x: expected finite values, got 2 NaN/Inf entries"):
        check_finite(x, name="x")
    check_finite(torch.arange(3), name="idx")  # integers are always finite


def test_check_indices():
    check_indices(torch.tensor([[0, 1, 2]]), 3, name="faces")
    check_indices(np.zeros((0, 3), np.int64), 0, name="faces")
    with pytest.raises(ValueError, match=r"faces: expected indices in \[0, 3\), got values in \[0, 3\]"):
        check_indices(torch.tensor([[0, 1, 3]]), 3, name="faces")
    with pytest.raises(ValueError, match="got values in"):
        check_indices(np.array([[-1, 0, 1]]), 3, name="faces")
    with pytest.raises(TypeError, match="faces: expected an integer dtype"):
        check_indices(torch.tensor([[0.0, 1.0, 2.0]]), 3, name="faces")


def test_scalar_checks():
    assert check_int(np.int64(3), name="k") == 3
    with pytest.raises(TypeError):
        check_int(True, name="k")
    with pytest.raises(ValueError, match="k: expected an int >= 1, got 0"):
        check_int(0, name="k", minimum=1)
    assert check_positive(2, name="f") == 2.0
    for bad in (0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="f: expected a finite positive number"):
            check_positive(bad, name="f")


def test_as_tensor_round_trip():
    a = np.arange(6, dtype=np.float64).reshape(2, 3)
    t, was_numpy = as_tensor(a, name="a")
    assert was_numpy and t.dtype == torch.float64
    back = like_input(t * 2, was_numpy)
    assert isinstance(back, np.ndarray) and np.allclose(back, a * 2)
    t2, was_numpy2 = as_tensor(torch.ones(2), name="b", dtype=torch.float64)
    assert not was_numpy2 and t2.dtype == torch.float64
    with pytest.raises(TypeError, match="c: expected a torch.Tensor or numpy.ndarray, got float"):
        as_tensor(1.0, name="c")
