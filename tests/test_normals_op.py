"""Compiled vertex normals: reference vs facelab.mesh, Numba and emulated CUDA vs the reference
(forward and backward, float32/float64, random meshes and the built-in face), the cached
vertex → face table, gradcheck, bad input, nvcc, bounds checking."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import facelab
from facelab import kernel_sources
from facelab.normals import (
    VertexNormals,
    cpu,
    cuda,
    reference,
    vertex_face_table,
    vertex_normals,
)
from facelab.normals.torch_ref import vertex_normals_torch as torch_vertex_normals

DTYPES = [torch.float32, torch.float64]
TOL = {torch.float32: dict(rtol=1e-5, atol=1e-5), torch.float64: dict(rtol=1e-6, atol=1e-6)}
# compiled twins vs the reference: same arithmetic, only the summation order differs
TWIN_TOL = {torch.float32: dict(rtol=1e-4, atol=1e-5),
            torch.float64: dict(rtol=1e-10, atol=1e-10)}


def grid_mesh(n: int, batch: int, dtype, seed: int = 0, extra_isolated: int = 0):
    """An n x n vertex height field (2 (n-1)² CCW triangles) with random jitter, plus
    ``extra_isolated`` vertices no face uses: verts (B, V, 3), faces (F, 3) int64."""
    g = torch.Generator().manual_seed(seed)
    ij = torch.stack(torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij"), -1)
    base = torch.cat([ij.reshape(-1, 2).double() * 3.0, torch.zeros(n * n, 1, dtype=torch.float64)],
                     dim=1)  # (n², 3) mm
    base = torch.cat([base, torch.zeros(extra_isolated, 3, dtype=torch.float64)])
    verts = base + torch.randn(batch, base.shape[0], 3, generator=g, dtype=torch.float64)
    idx = torch.arange(n * n).reshape(n, n)
    a, b, c, d = idx[:-1, :-1], idx[1:, :-1], idx[1:, 1:], idx[:-1, 1:]
    faces = torch.cat([torch.stack([a, b, c], -1).reshape(-1, 3),
                       torch.stack([a, c, d], -1).reshape(-1, 3)])
    return verts.to(dtype), faces


def awkward_mesh(dtype):
    """Degenerate faces (repeated index, collinear), an exactly cancelling pair, isolated
    vertices: verts (2, 12, 3), faces (F, 3)."""
    verts, faces = grid_mesh(3, 2, dtype, seed=3, extra_isolated=3)  # vertices 9, 10, 11 free
    extra = torch.tensor([[0, 0, 4],  # repeated index: zero area, counted twice for vertex 0
                          [9, 10, 9],  # degenerate face on otherwise isolated vertices
                          [1, 5, 7], [1, 7, 5]])  # a face and its mirror: they cancel exactly
    return verts, torch.cat([faces, extra])


def rand_like(x, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(x.shape, generator=g, dtype=torch.float64).to(x.dtype)


def table_of(faces, n_vert):
    return vertex_face_table(faces, n_vert)


def numba_forward(variant):
    def forward(verts, faces):
        t = table_of(faces, verts.shape[1])
        return cpu.vertex_normals_forward(verts, t.faces, t.offsets, t.face_ids, variant=variant)
    return forward


def numba_backward(variant):
    def backward(verts, faces, normals, inv_norm, grad_out):
        t = table_of(faces, verts.shape[1])
        return cpu.vertex_normals_backward(verts, t.faces, t.offsets, t.face_ids, t.corners,
                                           normals, inv_norm, grad_out, variant=variant)
    return backward


def emulated_forward(verts, faces):
    t = table_of(faces, verts.shape[1])
    return cuda.vertex_normals_forward(verts, t.faces, t.offsets, t.face_ids, emulate=True)


def emulated_backward(verts, faces, normals, inv_norm, grad_out):
    t = table_of(faces, verts.shape[1])
    return cuda.vertex_normals_backward(verts, t.faces, t.offsets, t.face_ids, t.corners,
                                        normals, inv_norm, grad_out, emulate=True)


IMPLS = {
    "numba-gather": (numba_forward("gather"), numba_backward("gather")),
    "numba-two-pass": (numba_forward("two_pass"), numba_backward("two_pass")),
    "cuda-host": (emulated_forward, emulated_backward),
}


def golden_mesh(dtype):
    """Two triangles sharing the edge 0-1 at a right angle, plus an isolated vertex 4.
    c_A = (2,0,0) × (0,2,0) = (0,0,4) (area 2); c_B = (0,0,1) × (2,0,0) = (0,2,0) (area 1)."""
    verts = torch.tensor([[[0, 0, 0], [2, 0, 0], [0, 2, 0], [0, 0, 1], [5, 5, 5]]], dtype=dtype)
    faces = torch.tensor([[0, 1, 2], [0, 3, 1]])
    s5 = math.sqrt(5.0)
    expected = torch.tensor([[[0, 1 / s5, 2 / s5], [0, 1 / s5, 2 / s5], [0, 0, 1], [0, 1, 0],
                              [0, 0, 0]]], dtype=dtype)
    return verts, faces, expected


# ------------------------------------------------------------------------ the reference
def test_vertex_face_csr_golden():
    faces = np.array([[0, 1, 2], [0, 3, 1], [2, 2, 1]])
    offsets, face_ids, corners = reference.vertex_face_csr(faces, 5)
    assert offsets.dtype == face_ids.dtype == corners.dtype == np.int32
    np.testing.assert_array_equal(offsets, [0, 2, 5, 8, 9, 9])  # vertex 4 isolated
    np.testing.assert_array_equal(face_ids, [0, 1, 0, 1, 2, 0, 2, 2, 1])
    np.testing.assert_array_equal(corners, [0, 0, 1, 2, 2, 2, 0, 1, 1])
    for i in range(5):  # every entry points back at its vertex
        js = range(offsets[i], offsets[i + 1])
        assert all(faces[face_ids[j], corners[j]] == i for j in js)


@pytest.mark.parametrize("dtype", DTYPES)
def test_reference_golden_values(dtype):
    verts, faces, expected = golden_mesh(dtype)
    normals, inv_norm = reference.vertex_normals_forward(verts.numpy(), faces.numpy())
    assert normals.dtype == inv_norm.dtype == verts.numpy().dtype
    np.testing.assert_allclose(normals, expected.numpy(), rtol=0, atol=1e-7)
    np.testing.assert_allclose(inv_norm[0, :4], [1 / math.sqrt(20)] * 2 + [0.25, 0.5], rtol=1e-6)
    assert inv_norm[0, 4] == pytest.approx(1e10, rel=1e-6)  # 1 / sqrt(ε) at an isolated vertex


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mesh", ["grid", "awkward"])
def test_reference_matches_mesh_vertex_normals(dtype, mesh):
    verts, faces = grid_mesh(6, 2, dtype) if mesh == "grid" else awkward_mesh(dtype)
    ours, _ = reference.vertex_normals_forward(verts.numpy(), faces.numpy())
    np.testing.assert_allclose(ours, torch_vertex_normals(verts, faces).numpy(), **TOL[dtype])
    v = verts.clone().requires_grad_()
    grad_out = rand_like(verts, 1)
    (torch_vertex_normals(v, faces) * grad_out).sum().backward()
    n, r = reference.vertex_normals_forward(verts.numpy(), faces.numpy())
    grad = reference.vertex_normals_backward(verts.numpy(), faces.numpy(), n, r, grad_out.numpy())
    assert grad.dtype == n.dtype
    scale = float(v.grad.abs().max())  # the ε gradient of isolated vertices is 1e10 g
    np.testing.assert_allclose(grad / scale, v.grad.numpy() / scale, rtol=0,
                               atol=TOL[dtype]["atol"])


def test_reference_backward_matches_finite_differences():
    verts, faces = grid_mesh(3, 2, torch.float64, seed=2)
    v, f = verts.numpy().copy(), faces.numpy()
    grad_out = rand_like(verts, 4).numpy()
    n, r = reference.vertex_normals_forward(v, f)
    analytic = reference.vertex_normals_backward(v, f, n, r, grad_out)
    numeric = np.zeros_like(v)
    flat, num = v.reshape(-1), numeric.reshape(-1)
    for j in range(flat.size):
        keep = flat[j]
        flat[j] = keep + 1e-6
        plus = (reference.vertex_normals_forward(v, f)[0] * grad_out).sum()
        flat[j] = keep - 1e-6
        minus = (reference.vertex_normals_forward(v, f)[0] * grad_out).sum()
        flat[j] = keep
        num[j] = (plus - minus) / 2e-6
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


# -------------------------------------------------------- compiled twins vs the reference
def _check_twin(impl, verts, faces, dtype):
    forward, backward = IMPLS[impl]
    v, f = verts.numpy(), faces.numpy()
    normals, inv_norm = forward(verts, faces)
    assert normals.shape == verts.shape and normals.dtype == dtype
    assert inv_norm.shape == verts.shape[:2] and inv_norm.dtype == dtype
    ref_n, ref_r = reference.vertex_normals_forward(v, f)
    np.testing.assert_allclose(normals.numpy(), ref_n, **TWIN_TOL[dtype])
    np.testing.assert_allclose(inv_norm.numpy(), ref_r, rtol=TWIN_TOL[dtype]["rtol"])
    grad_out = rand_like(verts, 7)
    grad = backward(verts, faces, normals, inv_norm, grad_out)
    assert grad.shape == verts.shape and grad.dtype == dtype
    want = reference.vertex_normals_backward(v, f, ref_n, ref_r, grad_out.numpy())
    scale = float(np.abs(want).max())
    np.testing.assert_allclose(grad.numpy() / scale, want / scale, rtol=0,
                               atol=TWIN_TOL[dtype]["atol"])


@pytest.mark.parametrize("impl", sorted(IMPLS))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ["tiny", "grid-3x1600", "awkward"])  # 1600 > CHUNK
def test_compiled_matches_reference(impl, dtype, case):
    if case == "tiny":
        verts, faces, _ = golden_mesh(dtype)
    elif case == "awkward":
        verts, faces = awkward_mesh(dtype)
    else:
        verts, faces = grid_mesh(40, 3, dtype, seed=5)
    _check_twin(impl, verts, faces, dtype)


@pytest.fixture(scope="module")
def teaching_face():
    m = facelab.load_model("synthetic", "teaching", version=1)
    g = torch.Generator().manual_seed(0)
    verts = m.shape(torch.randn(2, m.n_id, generator=g), torch.randn(2, m.n_exp, generator=g))
    return verts.detach().double(), m.faces


@pytest.mark.parametrize("impl", sorted(IMPLS))
@pytest.mark.parametrize("dtype", DTYPES)
def test_compiled_matches_reference_on_built_in_face(impl, dtype, teaching_face):
    verts, faces = teaching_face
    _check_twin(impl, verts.to(dtype), faces, dtype)


def test_plain_python_kernels_run_and_match_compiled():
    """umap-style: the undecorated kernels run as plain Python (debuggable)."""
    verts, faces = awkward_mesh(torch.float64)
    v, f = verts.numpy(), faces.numpy()
    t = table_of(faces, v.shape[1])
    f32, off, fid, cor = (x.numpy() for x in (t.faces, t.offsets, t.face_ids, t.corners))
    ref_n, ref_r = reference.vertex_normals_forward(v, f)
    n, r = np.empty_like(v), np.empty(v.shape[:2])
    cpu._forward_gather(v, f32, off, fid, n, r)
    np.testing.assert_allclose(n, ref_n, rtol=1e-12, atol=1e-12)
    cross, n2, r2 = np.empty((2, f.shape[0], 3)), np.empty_like(v), np.empty(v.shape[:2])
    cpu._face_cross_pass(v, f32, cross)
    cpu._gather_normalize(cross, off, fid, n2, r2)
    np.testing.assert_allclose(n2, ref_n, rtol=1e-12, atol=1e-12)
    grad_out = rand_like(verts, 2).numpy()
    gv, gv2, grad_sum = np.empty_like(v), np.empty_like(v), np.empty_like(v)
    cpu._grad_sum_pass(n, r, grad_out, grad_sum)
    cpu._gather_grad(v, f32, off, fid, cor, grad_sum, gv)
    grad_cross = np.empty((2, f.shape[0], 3))
    cpu._face_grad_pass(f32, grad_sum, grad_cross)
    cpu._gather_grad_buffered(v, f32, off, fid, cor, grad_cross, gv2)
    want = reference.vertex_normals_backward(v, f, ref_n, ref_r, grad_out)
    for got in (gv, gv2):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9 * np.abs(want).max())


def test_numba_unknown_variant():
    verts, faces, _ = golden_mesh(torch.float64)
    t = table_of(faces, 5)
    with pytest.raises(ValueError, match="variant: expected 'gather' or 'two_pass'"):
        cpu.vertex_normals_forward(verts, t.faces, t.offsets, t.face_ids, variant="scatter")
    n, r = cpu.vertex_normals_forward(verts, t.faces, t.offsets, t.face_ids)
    with pytest.raises(ValueError, match="variant: expected 'gather' or 'two_pass'"):
        cpu.vertex_normals_backward(verts, t.faces, t.offsets, t.face_ids, t.corners, n, r, n,
                                    variant="atomic")


# ------------------------------------------------------------- the vertex → face table
def test_table_is_cached_by_identity_and_by_content():
    _, faces = grid_mesh(5, 1, torch.float64)
    t1 = vertex_face_table(faces, 25)
    assert vertex_face_table(faces, 25) is t1  # same object
    assert vertex_face_table(faces.clone(), 25) is t1  # same content
    assert vertex_face_table(faces.numpy().copy(), 25) is t1  # NumPy, same content and dtype
    assert vertex_face_table(faces, 26) is not t1  # different V
    assert t1.num_vertices == 25 and t1.faces.dtype == torch.int32
    faces_t = faces.clone()
    t2 = vertex_face_table(faces_t, 25)
    faces_t[0] = faces_t[0].flip(0)  # in-place edit: the version counter changes
    t3 = vertex_face_table(faces_t, 25)
    assert t3 is not t2
    np.testing.assert_array_equal(t3.faces[0].numpy(), faces_t[0].numpy())
    other = faces.clone()
    other[1] = other[1].flip(0)  # row 1 is not among the sampled key rows: same cheap key
    t4 = vertex_face_table(other, 25)
    assert t4 is not t1
    np.testing.assert_array_equal(t4.faces.numpy(), other.numpy())
    assert vertex_face_table(faces.clone(), 25) is not t4  # and back: compared in full


def test_table_validates_indices_when_built():
    faces = torch.tensor([[0, 1, 7]])
    with pytest.raises(ValueError, match=r"faces: expected indices in \[0, 3\), got values in"):
        vertex_face_table(faces, 3)


# ------------------------------------------------------------------- the public function
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mesh", ["golden", "grid", "awkward", "no-faces"])
def test_vertex_normals_matches_mesh_vertex_normals(dtype, mesh):
    if mesh == "golden":
        verts, faces, expected = golden_mesh(dtype)
        torch.testing.assert_close(vertex_normals(verts, faces), expected, rtol=0, atol=1e-7)
    elif mesh == "grid":
        verts, faces = grid_mesh(30, 4, dtype, seed=9)
    elif mesh == "awkward":
        verts, faces = awkward_mesh(dtype)
    else:
        verts, faces = grid_mesh(3, 2, dtype)[0], torch.zeros(0, 3, dtype=torch.int64)
    out = vertex_normals(verts, faces)
    assert out.shape == verts.shape and out.dtype == dtype and out.device == verts.device
    torch.testing.assert_close(out, torch_vertex_normals(verts, faces), **TOL[dtype])
    if mesh == "no-faces":
        assert not out.any()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mesh", ["grid", "awkward", "face"])
def test_vertex_normals_gradient_matches_mesh_vertex_normals(dtype, mesh, teaching_face):
    if mesh == "face":
        verts, faces = teaching_face[0][:1].to(dtype), teaching_face[1]
    else:
        verts, faces = grid_mesh(12, 2, dtype) if mesh == "grid" else awkward_mesh(dtype)
    grad_out = rand_like(verts, 11)
    v1, v2 = verts.clone().requires_grad_(), verts.clone().requires_grad_()
    (vertex_normals(v1, faces) * grad_out).sum().backward()
    (torch_vertex_normals(v2, faces) * grad_out).sum().backward()
    assert torch.isfinite(v1.grad).all()
    scale = float(v2.grad.abs().max())  # isolated vertices: 1e10 g (the ε gradient)
    torch.testing.assert_close(v1.grad / scale, v2.grad / scale, rtol=0, atol=TOL[dtype]["atol"])


def test_vertex_normals_non_contiguous_and_int32_faces():
    verts, faces = grid_mesh(5, 1, torch.float64)
    expanded = verts.expand(3, -1, -1)  # stride 0 over the batch
    out = vertex_normals(expanded, faces.to(torch.int32))
    torch.testing.assert_close(out, torch_vertex_normals(verts, faces).expand(3, -1, -1))
    v = verts.clone().requires_grad_()
    vertex_normals(v.expand(3, -1, -1), faces).sum().backward()
    assert v.grad.shape == verts.shape and torch.isfinite(v.grad).all()


def test_vertex_normals_numpy_in_numpy_out():
    verts, faces = grid_mesh(4, 2, torch.float32)
    out = vertex_normals(verts.numpy(), faces.numpy())
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    np.testing.assert_allclose(out, vertex_normals(verts, faces).numpy())


def test_vertex_normals_gradcheck_two_triangles():
    verts = torch.tensor([[[0.0, 0.0, 0.1], [1.0, 0.0, 0.0], [1.0, 1.0, 0.3], [0.0, 1.0, 0.0]],
                          [[0.0, 0.0, 0.0], [1.2, 0.1, 0.0], [1.0, 1.0, -0.4], [0.0, 0.9, 0.2]]],
                         dtype=torch.float64, requires_grad=True)
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    assert torch.autograd.gradcheck(lambda v: vertex_normals(v, faces), (verts,))


def test_vertex_normals_gradcheck_grid():
    verts, faces = grid_mesh(3, 1, torch.float64, seed=1)
    assert torch.autograd.gradcheck(lambda v: vertex_normals(v, faces),
                                    (verts.requires_grad_(),))


def test_vertex_normals_no_gradient_without_requires_grad():
    verts, faces = grid_mesh(3, 1, torch.float64)
    out = vertex_normals(verts, faces)
    assert out.grad_fn is None and not out.requires_grad


def test_vertex_normals_empty_shapes():
    verts = torch.zeros(0, 4, 3, requires_grad=True)
    out = VertexNormals.apply(verts, vertex_face_table(torch.tensor([[0, 1, 2]]), 4))
    assert out.shape == (0, 4, 3)
    out.sum().backward()
    assert verts.grad.shape == (0, 4, 3)
    no_verts = vertex_normals(torch.zeros(2, 0, 3), torch.zeros(0, 3, dtype=torch.int64))
    assert no_verts.shape == (2, 0, 3)
    verts, _ = grid_mesh(3, 2, torch.float32)
    verts.requires_grad_()
    vertex_normals(verts, torch.zeros(0, 3, dtype=torch.int64)).sum().backward()
    assert not verts.grad.any()  # no faces: the normals do not depend on the vertices


def test_vertex_normals_bad_input():
    verts, faces = grid_mesh(3, 2, torch.float32)
    with pytest.raises(ValueError, match=r"verts: expected \(B, V, 3\), got \(9, 3\)"):
        vertex_normals(verts[0], faces)
    with pytest.raises(ValueError, match=r"faces: expected \(F, 3\), got \(8, 2\)"):
        vertex_normals(verts, faces[:, :2])
    with pytest.raises(TypeError, match="verts: expected float32 or float64"):
        vertex_normals(verts.to(torch.int32), faces)
    with pytest.raises(TypeError, match="faces: expected an integer dtype"):
        vertex_normals(verts, faces.double())
    bad = verts.clone()
    bad[1, 4, 2] = float("nan")
    with pytest.raises(ValueError, match="verts: expected finite values, got 1 NaN/Inf"):
        vertex_normals(bad, faces)
    with pytest.raises(ValueError, match=r"faces: expected indices in \[0, 9\)"):
        vertex_normals(verts, faces + 1)
    with pytest.raises(ValueError, match=r"faces: expected indices in \[0, 9\)"):
        vertex_normals(verts, faces - 1)
    with pytest.raises(TypeError, match=r"faces: expected a torch\.Tensor"):
        vertex_normals(verts, faces.tolist())
    with pytest.raises(TypeError, match=r"verts: expected a torch\.Tensor"):
        vertex_normals(verts.tolist(), faces)


# ------------------------------------------------------------------------- CUDA sources
@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not on PATH")
def test_vertex_normals_cu_compiles_with_nvcc():
    text = kernel_sources.nvcc_compile("vertex_normals", arch="sm_90").read_text()
    for stage in ("forward", "grad_sum", "backward"):
        for suffix in ("f32", "f64"):
            assert f".entry vertex_normals_{stage}_{suffix}" in text


@pytest.mark.cuda
@pytest.mark.skipif(not kernel_sources.cuda_available(), reason="needs a CUDA GPU and CuPy")
@pytest.mark.parametrize("dtype", DTYPES)
def test_vertex_normals_on_gpu_matches_cpu(dtype, teaching_face):
    verts, faces = teaching_face[0].to(dtype), teaching_face[1]
    grad_out = rand_like(verts, 3)
    v_cpu, v_gpu = verts.clone().requires_grad_(), verts.cuda().requires_grad_()
    out_cpu, out_gpu = vertex_normals(v_cpu, faces), vertex_normals(v_gpu, faces)
    assert out_gpu.device == v_gpu.device
    torch.testing.assert_close(out_gpu.cpu(), out_cpu, **TWIN_TOL[dtype])
    (out_cpu * grad_out).sum().backward()
    (out_gpu * grad_out.cuda()).sum().backward()
    torch.testing.assert_close(v_gpu.grad.cpu(), v_cpu.grad, rtol=1e-4, atol=1e-5)


# -------------------------------------------------------------------- bounds checking
@pytest.mark.slow
def test_numba_kernels_in_bounds(tmp_path):
    """Run the Numba kernels once with NUMBA_BOUNDSCHECK=1 (fresh cache dir), recompiled
    without ``parallel=True`` from the same plain-Python source (identical indexing)."""
    script = textwrap.dedent("""
        import numba
        import torch
        from facelab.normals import cpu, vertex_face_table
        for name in ("_forward_gather", "_face_cross_pass", "_gather_normalize",
                     "_grad_sum_pass", "_gather_grad", "_face_grad_pass",
                     "_gather_grad_buffered"):
            checked = numba.njit(getattr(cpu, name))
            setattr(cpu, name + "_par", checked)
            setattr(cpu, name + "_ser", checked)
        g = torch.Generator().manual_seed(0)
        for n_img, n_vert, n_face in ((2, 5, 3), (1, cpu.CHUNK + 3, 2 * cpu.CHUNK + 7),
                                      (2, 4, 0)):
            verts = torch.rand(n_img, n_vert, 3, generator=g, dtype=torch.float64)
            faces = torch.randint(0, n_vert, (n_face, 3), generator=g)
            t = vertex_face_table(faces, n_vert)
            for variant in ("gather", "two_pass"):
                n, r = cpu.vertex_normals_forward(verts, t.faces, t.offsets, t.face_ids,
                                                  variant=variant)
                cpu.vertex_normals_backward(verts, t.faces, t.offsets, t.face_ids, t.corners,
                                            n, r, torch.rand_like(verts), variant=variant)
        print("ok")
    """)
    env = dict(os.environ, NUMBA_BOUNDSCHECK="1", NUMBA_CACHE_DIR=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
