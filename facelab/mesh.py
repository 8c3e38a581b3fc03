"""Triangle-mesh geometry: face normals, connectivity, Laplacians, k-nearest-neighbour graphs and
closest points on a triangle surface (:func:`closest_points`, the scan-to-mesh distance).

Vertex normals are a compiled op, :func:`facelab.vertex_normals` (:mod:`facelab.normals`); its
plain-torch twin is :mod:`facelab.normals.torch_ref`.

Conventions (DESIGN.md): vertices are (B, V, 3) in model space (mm, y up, face toward +z);
faces are (F, 3) int64 and counter-clockwise seen from the front, so the right-hand normal
``(v1 - v0) x (v2 - v0)`` of a front-facing triangle points toward +z.

Connectivity is represented three ways, all derived from the same unique undirected edge list:

* :func:`mesh_edges` -- (E, 2) int64, each edge once with ``i < j``, rows sorted;
* :func:`vertex_adjacency` -- a symmetric 0/1 torch sparse COO matrix (V, V);
* :func:`vertex_neighbors` -- CSR arrays ``(offsets (V+1,), indices (nnz,))``: the one-ring of
  vertex ``i`` is ``indices[offsets[i]:offsets[i+1]]``, sorted (handy for loops and Numba).

Every function accepts torch tensors; NumPy arrays come back as NumPy except where a docstring
says a torch sparse matrix is returned.
"""

from __future__ import annotations

import numpy as np
import torch

from facelab._checks import (
    as_tensor,
    check_finite,
    check_floating,
    check_indices,
    check_int,
    check_shape,
    like_input,
)

__all__ = [
    "boundary_vertices",
    "closest_points",
    "face_normals",
    "knn_graph",
    "laplacian",
    "laplacian_smoothing_loss",
    "mesh_edges",
    "vertex_adjacency",
    "vertex_neighbors",
]

# Added to the squared length inside the square root of every normalisation, so a zero vector
# maps to zero with a finite gradient (1 / sqrt(eps) = 1e10 times the upstream gradient) instead
# of 0/0 = NaN. It is in squared-length units of the normalised vector (twice the face area,
# squared): 1e-20 is far below any real triangle in mm (or even in metres: a 1 mm triangle in
# metres gives |x|^2 ~ 1e-12), and representable in float32.
_NORMAL_EPS = 1e-20

# Cotangents are clamped to [0, _COT_MAX]: obtuse angles contribute nothing (keeps every edge
# weight >= 0) and near-zero angles cannot blow up the matrix (_COT_MAX = cot(0.057 degrees)).
_COT_MAX = 1e3


# ----------------------------------------------------------------------------- validation
def _faces_tensor(faces, num_vertices: int, name: str = "faces") -> tuple[torch.Tensor, bool]:
    """Validate (F, 3) integer faces with indices in [0, V); return (int64 tensor, was_numpy)."""
    f, was_numpy = as_tensor(faces, name=name)
    check_shape(f, "F 3", name=name)
    check_indices(f, num_vertices, name=name)
    return f.long(), was_numpy


def _verts_tensor(verts, name: str = "verts") -> tuple[torch.Tensor, bool, dict]:
    """Validate (B, V, 3) finite float vertices; return (tensor, was_numpy, bound dims)."""
    v, was_numpy = as_tensor(verts, name=name)
    dims = check_shape(v, "B V 3", name=name)
    check_floating(v, name=name)
    check_finite(v, name=name)
    return v, was_numpy, dims


def _safe_normalize(x: torch.Tensor) -> torch.Tensor:
    """x / sqrt(|x|^2 + eps) along the last axis: unit for real vectors, 0 for 0, never NaN."""
    return x * torch.rsqrt((x * x).sum(-1, keepdim=True) + _NORMAL_EPS)


def _face_cross(verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Unnormalised face normals (v1 - v0) x (v2 - v0): length = twice the area. (B, F, 3)."""
    tri = verts[:, faces]  # (B, F, 3 corners, 3 xyz)
    return torch.linalg.cross(tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0], dim=-1)


# -------------------------------------------------------------------------------- normals
def face_normals(verts, faces):
    """Unit normal of every triangle.

    verts: (B, V, 3) float32/float64, model space (mm); NumPy in, NumPy out.
    faces: (F, 3) int64, counter-clockwise seen from the front (+z).
    Returns (B, F, 3): ``n_f = e1 x e2 / |e1 x e2|`` with ``e1 = v1 - v0``, ``e2 = v2 - v0``,
    pointing toward +z for a front-facing triangle. Degenerate (zero-area) faces give the zero
    vector, never NaN; the normalisation is ``x / sqrt(|x|^2 + 1e-20)``, differentiable everywhere.
    """
    v, was_numpy, d = _verts_tensor(verts)
    f, _ = _faces_tensor(faces, d["V"])
    f = f.to(v.device)
    return like_input(_safe_normalize(_face_cross(v, f)), was_numpy)


# ---------------------------------------------------------------------------- connectivity
def _edge_keys(faces: torch.Tensor, num_vertices: int) -> torch.Tensor:
    """Undirected key i * V + j (i < j) of the three edges of every face: (3F,) int64."""
    pairs = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]], dim=0)  # (3F, 2)
    lo = pairs.min(dim=1).values
    hi = pairs.max(dim=1).values
    return lo * num_vertices + hi  # (3F,)


def _unique_edges(faces: torch.Tensor, num_vertices: int) -> torch.Tensor:
    keys = torch.unique(_edge_keys(faces, num_vertices))  # sorted
    edges = torch.stack([keys // num_vertices, keys % num_vertices], dim=1)  # (E, 2)
    return edges[edges[:, 0] != edges[:, 1]]  # drop self-loops of degenerate faces


def mesh_edges(faces, num_vertices: int | None = None):
    """Unique undirected edges of a triangle mesh.

    faces: (F, 3) int64; NumPy in, NumPy out.
    num_vertices: V, used to validate indices (default: ``faces.max() + 1``).
    Returns (E, 2) int64 with ``edges[:, 0] < edges[:, 1]``, rows sorted lexicographically;
    edges of repeated-index (degenerate) faces that join a vertex to itself are dropped.
    """
    f, was_numpy = as_tensor(faces, name="faces")
    check_shape(f, "F 3", name="faces")
    if num_vertices is None:
        num_vertices = int(f.max()) + 1 if f.numel() else 0
    n = check_int(num_vertices, name="num_vertices", minimum=0)
    f, _ = _faces_tensor(f, n)
    return like_input(_unique_edges(f, n), was_numpy)


def vertex_adjacency(faces, num_vertices: int, *, dtype: torch.dtype = torch.float32):
    """Symmetric vertex adjacency matrix A with A[i, j] = 1 for every mesh edge (i, j).

    faces: (F, 3) int64 (torch or NumPy).
    num_vertices: V.
    Returns a coalesced torch sparse COO tensor (V, V) of ``dtype`` on the faces' device
    (always torch, also for NumPy faces); the diagonal is empty.
    """
    n = check_int(num_vertices, name="num_vertices", minimum=0)
    f, _ = _faces_tensor(faces, n)
    edges = _unique_edges(f, n)  # (E, 2)
    idx = torch.cat([edges.T, edges.flip(1).T], dim=1)  # (2, 2E)
    values = torch.ones(idx.shape[1], dtype=dtype, device=f.device)
    return torch.sparse_coo_tensor(idx, values, (n, n), check_invariants=False).coalesce()


def vertex_neighbors(faces, num_vertices: int):
    """One-ring neighbours of every vertex in CSR form.

    faces: (F, 3) int64; NumPy in, NumPy out.
    num_vertices: V.
    Returns ``(offsets, indices)``: offsets (V+1,) int64 and indices (nnz,) int64 with
    nnz = 2E; the neighbours of vertex i are ``indices[offsets[i]:offsets[i+1]]`` in increasing
    order, and its valence is ``offsets[i+1] - offsets[i]`` (0 for an isolated vertex).
    """
    n = check_int(num_vertices, name="num_vertices", minimum=0)
    f, was_numpy = _faces_tensor(faces, n)
    adj = vertex_adjacency(f, n)
    rows, cols = adj.indices()  # row-major sorted after coalesce()
    counts = torch.bincount(rows, minlength=n)  # (V,)
    offsets = torch.zeros(n + 1, dtype=torch.int64, device=f.device)
    offsets[1:] = torch.cumsum(counts, 0)
    return like_input(offsets, was_numpy), like_input(cols.contiguous(), was_numpy)


def boundary_vertices(faces, num_vertices: int):
    """Vertices on the open boundary: those touching an edge used by exactly one face.

    faces: (F, 3) int64; NumPy in, NumPy out.
    num_vertices: V.
    Returns (V,) bool. Isolated vertices and closed meshes give False everywhere.
    """
    n = check_int(num_vertices, name="num_vertices", minimum=0)
    f, was_numpy = _faces_tensor(faces, n)
    keys, counts = torch.unique(_edge_keys(f, n), return_counts=True)
    once = keys[counts == 1]  # (E_boundary,)
    mask = torch.zeros(n, dtype=torch.bool, device=f.device)
    mask[once // n] = True
    mask[once % n] = True
    return like_input(mask, was_numpy)


# ------------------------------------------------------------------------------ Laplacians
def _cotangents(verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Clamped cotangent of the angle at each corner of each face: (F, 3).

    Column k is the angle at corner k, opposite the edge (k+1, k+2). cot = (a . b) / |a x b|;
    obtuse angles are clamped to 0, acute ones to at most _COT_MAX, and all three corners of a
    degenerate face (|a x b| <= 1e-12 |a| |b| at any corner) are set to 0.
    """
    tri = verts[faces]  # (F, 3 corners, 3 xyz)
    cots = []
    degenerate = torch.zeros(faces.shape[0], dtype=torch.bool, device=verts.device)
    for k in range(3):
        a = tri[:, (k + 1) % 3] - tri[:, k]  # (F, 3)
        b = tri[:, (k + 2) % 3] - tri[:, k]  # (F, 3)
        dot = (a * b).sum(-1)
        cross = torch.linalg.cross(a, b, dim=-1).norm(dim=-1)
        scale = a.norm(dim=-1) * b.norm(dim=-1)
        bad = cross <= 1e-12 * scale
        degenerate = degenerate | bad
        cots.append(dot / torch.where(bad, torch.ones_like(cross), cross))
    cot = torch.stack(cots, dim=1).clamp(0.0, _COT_MAX)  # (F, 3)
    return torch.where(degenerate[:, None], torch.zeros_like(cot), cot)


def laplacian(faces, num_vertices: int, kind: str = "uniform", verts=None, *,
              dtype: torch.dtype | None = None):
    """Graph or cotangent Laplacian L = D - W as a torch sparse matrix (V, V).

    faces: (F, 3) int64 (torch or NumPy).
    num_vertices: V.
    kind: ``"uniform"`` -- W = A, the 0/1 adjacency (:func:`vertex_adjacency`), D = diag(valence);
        ``"cotangent"`` -- W_ij = (cot alpha_ij + cot beta_ij) / 2 over the two angles opposite
        edge (i, j) (one on a boundary edge), each cotangent clamped to [0, 1e3] (obtuse angles
        give 0, so every weight is >= 0); degenerate triangles contribute nothing.
    verts: (V, 3) float, needed for ``"cotangent"`` (a (1, V, 3) batch is squeezed); the weights
        are differentiable in ``verts``.
    dtype: float dtype of the values (default: that of ``verts``, else float32).

    Sign convention: L is positive semi-definite and rows sum to 0, so
    ``(L x)_i = sum_j W_ij (x_i - x_j)`` -- the NEGATIVE of the (weighted, unnormalised)
    umbrella vector; it points from the neighbours' average toward x_i, i.e. outward on a convex
    surface. ``x - t * L x`` (small t) smooths. Returns a coalesced sparse COO tensor on the
    device of ``verts`` (or of ``faces``); always torch.
    """
    n = check_int(num_vertices, name="num_vertices", minimum=0)
    f, _ = _faces_tensor(faces, n)
    if kind not in ("uniform", "cotangent"):
        raise ValueError(f"kind: expected 'uniform' or 'cotangent', got {kind!r}")
    if verts is None:
        if kind == "cotangent":
            raise ValueError("verts: expected (V, 3) vertices for kind='cotangent', got None")
        v = torch.zeros(0, dtype=dtype or torch.float32, device=f.device)
    else:
        v, _ = as_tensor(verts, name="verts")
        if v.ndim == 3 and v.shape[0] == 1:
            v = v[0]
        check_shape(v, "V 3", name="verts", dims={"V": n})
        check_floating(v, name="verts")
        check_finite(v, name="verts")
        if dtype is not None:
            v = v.to(dtype)
    device = v.device
    f = f.to(device)
    if kind == "uniform":
        edges = _unique_edges(f, n)  # (E, 2)
        rows = torch.cat([edges[:, 0], edges[:, 1]])
        cols = torch.cat([edges[:, 1], edges[:, 0]])
        w = torch.ones(rows.shape[0], dtype=v.dtype, device=device)
    else:
        cot = _cotangents(v, f)  # (F, 3): corner k faces edge (k+1, k+2)
        i = torch.cat([f[:, 1], f[:, 2], f[:, 0]])  # edge endpoints opposite corners 0, 1, 2
        j = torch.cat([f[:, 2], f[:, 0], f[:, 1]])
        half = 0.5 * torch.cat([cot[:, 0], cot[:, 1], cot[:, 2]])  # (3F,)
        rows, cols, w = torch.cat([i, j]), torch.cat([j, i]), torch.cat([half, half])
        keep = rows != cols
        rows, cols, w = rows[keep], cols[keep], w[keep]
    deg = torch.zeros(n, dtype=w.dtype, device=device).index_add(0, rows, w)  # (V,) row sums
    diag = torch.arange(n, device=device)
    idx = torch.stack([torch.cat([rows, diag]), torch.cat([cols, diag])])  # (2, nnz + V)
    values = torch.cat([-w, deg])
    return torch.sparse_coo_tensor(idx, values, (n, n), check_invariants=False).coalesce()


def laplacian_smoothing_loss(verts, L):
    """Mean squared Laplacian of the vertices: ``loss_b = (1/V) sum_i |(L v_b)_i|^2``.

    verts: (B, V, 3) float, model space (mm).
    L: (V, V) torch sparse (or dense) Laplacian from :func:`laplacian`; cast to verts' dtype
        and device.
    Returns (B,) in mm^2 (times weight^2 for the cotangent Laplacian); invariant to translating
    the mesh (rows of L sum to 0); differentiable in verts (and in a cotangent L's vertices).
    """
    v, was_numpy, d = _verts_tensor(verts)
    if not isinstance(L, torch.Tensor):
        raise TypeError(
            f"L: expected a torch sparse or dense (V, V) tensor, got {type(L).__name__}"
        )
    check_shape(L, "V V", name="L", dims={"V": d["V"]})
    if not L.is_floating_point():
        raise TypeError(f"L: expected a floating dtype, got {L.dtype}")
    L = L.to(device=v.device, dtype=v.dtype)
    b, n = d["B"], d["V"]
    flat = v.permute(1, 0, 2).reshape(n, b * 3)  # (V, B*3)
    lap = (torch.sparse.mm(L, flat) if L.is_sparse else L @ flat).reshape(n, b, 3)  # (V, B, 3)
    return like_input((lap * lap).sum(-1).mean(0), was_numpy)


# ------------------------------------------------------------------------------------- kNN
def knn_graph(points, k: int):
    """Indices of the k nearest neighbours of every point, excluding the point itself.

    points: (V, D) or (B, V, D) float, e.g. vertices (D = 3), or Fan et al.'s concatenation
        [v, C(v)] of position and colour (D = 6) whose squared distance defines the MRF
        neighbourhood B(v) of Dual Networks Eq. (6). NumPy in, NumPy out.
    k: number of neighbours, 1 <= k <= V - 1.
    Returns (V, k) int64 (or (B, V, k) for batched points), each row sorted by increasing
    Euclidean distance. CPU uses scipy's cKDTree, other devices torch.cdist + topk. With
    duplicate points the tie order is unspecified, but the point itself is never returned.
    Not differentiable (indices).
    """
    p, was_numpy = as_tensor(points, name="points")
    if p.ndim not in (2, 3):
        raise ValueError(f"points: expected (V, D) or (B, V, D), got {tuple(p.shape)}")
    check_floating(p, name="points")
    check_finite(p, name="points")
    batched = p.ndim == 3
    pb = p if batched else p[None]  # (B, V, D)
    n = pb.shape[1]
    k = check_int(k, name="k", minimum=1)
    if k > n - 1:
        raise ValueError(f"k: expected 1 <= k <= V - 1 = {n - 1}, got {k}")
    out = []
    for x in pb:  # (V, D)
        if x.device.type == "cpu":
            out.append(_knn_kdtree(x.detach().double().numpy(), k))
        else:
            out.append(_knn_brute(x.detach(), k))
    idx = torch.stack([torch.as_tensor(o, device=p.device) for o in out]).long()  # (B, V, k)
    return like_input(idx if batched else idx[0], was_numpy)


def _knn_brute(x: torch.Tensor, k: int) -> torch.Tensor:
    """All-pairs distances on the tensor's device (V^2 memory): (V, D) -> (V, k) int64."""
    dist = torch.cdist(x, x)  # (V, V)
    dist.fill_diagonal_(float("inf"))
    return dist.topk(k, dim=1, largest=False).indices


def _knn_kdtree(x: np.ndarray, k: int) -> np.ndarray:
    """scipy cKDTree query on the CPU: (V, D) float64 -> (V, k) int64."""
    from scipy.spatial import cKDTree

    n = x.shape[0]
    _, idx = cKDTree(x).query(x, k=k + 1)  # (V, k+1), usually self first
    idx = np.asarray(idx, dtype=np.int64).reshape(n, k + 1)
    keep = idx != np.arange(n)[:, None]
    # If self was not returned (duplicate points tie with it), drop the farthest instead.
    keep[keep.all(axis=1), k] = False
    return idx[keep].reshape(n, k)


# ------------------------------------------------------------------ closest point on a surface
def _closest_on_triangles(p: np.ndarray, a: np.ndarray, b: np.ndarray,
                          c: np.ndarray) -> np.ndarray:
    """Closest point to p on triangle (a, b, c), row by row: all (M, 3) float64 -> (M, 3).

    Ericson, *Real-Time Collision Detection* (2005), Sec. 5.1.5: the Voronoi region of p
    (vertex a, b or c; edge ab, ac or bc; the interior) is found from six dot products, tested
    in that order, and p is projected onto the feature it names. Zero-area triangles fall into
    a vertex or edge region (their edges are still segments) or onto vertex a.
    """
    ab, ac, ap = b - a, c - a, p - a  # (M, 3)
    d1, d2 = (ab * ap).sum(1), (ac * ap).sum(1)  # (M,)
    bp = p - b
    d3, d4 = (ab * bp).sum(1), (ac * bp).sum(1)
    cp = p - c
    d5, d6 = (ab * cp).sum(1), (ac * cp).sum(1)
    vc = d1 * d4 - d3 * d2  # signed areas (barycentric numerators) of the projection
    vb = d5 * d2 - d1 * d6
    va = d3 * d6 - d5 * d4

    def ratio(num, den):
        return np.divide(num, den, out=np.zeros_like(num), where=den != 0)

    t_ab = ratio(d1, d1 - d3)  # (M,) along ab
    t_ac = ratio(d2, d2 - d6)  # along ac
    t_bc = ratio(d4 - d3, (d4 - d3) + (d5 - d6))  # along bc
    area = va + vb + vc
    v_in, w_in = ratio(vb, area), ratio(vc, area)  # interior barycentrics of b and c
    conditions = [
        (d1 <= 0) & (d2 <= 0),  # vertex a
        (d3 >= 0) & (d4 <= d3),  # vertex b
        (vc <= 0) & (d1 >= 0) & (d3 <= 0),  # edge ab
        (d6 >= 0) & (d5 <= d6),  # vertex c
        (vb <= 0) & (d2 >= 0) & (d6 <= 0),  # edge ac
        (va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0),  # edge bc
    ]
    choices = [a, b, a + t_ab[:, None] * ab, c, a + t_ac[:, None] * ac,
               b + t_bc[:, None] * (c - b)]
    interior = a + v_in[:, None] * ab + w_in[:, None] * ac
    return np.select([k[:, None] for k in conditions], choices, default=interior)


def _nearest_candidates(q: np.ndarray, owner: np.ndarray, cand: np.ndarray, tri: np.ndarray,
                        best: tuple) -> None:
    """Solve the (query, triangle) pairs ``(owner, cand)`` and keep, per query, the nearest in
    ``best = (d2 (N,), point (N, 3), face (N,))`` (updated in place)."""
    if len(cand) == 0:
        return
    t = tri[cand]  # (M, 3, 3)
    pts = _closest_on_triangles(q[owner], t[:, 0], t[:, 1], t[:, 2])  # (M, 3)
    d2 = ((pts - q[owner]) ** 2).sum(1)  # (M,)
    order = np.lexsort((d2, owner))  # by query, then by distance
    first = order[np.unique(owner[order], return_index=True)[1]]  # each query's nearest pair
    who = owner[first]
    better = d2[first] < best[0][who]
    who, first = who[better], first[better]
    best[0][who], best[1][who], best[2][who] = d2[first], pts[first], cand[first]


def _ball_pairs(tree, q: np.ndarray, radius: np.ndarray, chunk: int):
    """(owner, index) pairs of every tree point within ``radius`` (N,) of each query."""
    owners, cands = [], []
    for s in range(0, len(q), chunk):
        lists = tree.query_ball_point(q[s: s + chunk], radius[s: s + chunk])
        counts = np.fromiter((len(c) for c in lists), dtype=np.int64, count=len(lists))
        if counts.sum() == 0:
            continue
        cands.append(np.concatenate([np.asarray(c, dtype=np.int64) for c in lists]))
        owners.append(np.repeat(np.arange(s, s + len(lists)), counts))
    if not cands:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(owners), np.concatenate(cands)


def closest_points(points, verts, faces, *, chunk: int = 4096):
    """The closest point on a triangle mesh's surface to each query point (exact).

    points: (N, 3) float query points, e.g. a scan (mm). verts: (V, 3) float mesh vertices in
        the same frame. faces: (F, 3) int64 triangles (any subset of a model's faces).
    chunk: queries processed together (memory, not the result).
    Returns ``(closest (N, 3), distance (N,), face (N,) int64)``: the surface point (on a
    triangle's interior, edge or vertex, not just the nearest vertex), its Euclidean distance
    and the index into ``faces`` of the triangle it lies on. NumPy in, NumPy out; computed in
    float64 on the CPU, not differentiable.

    Exact search: the triangles around each query's nearest vertex (scipy cKDTree) give an
    upper bound d of the answer; every point of triangle t lies within R_t of its centroid,
    so only triangles whose centroid is within d + R_t of the query can hold a closer point.
    Triangles are grouped by R_t (powers of two, one centroid tree per group) so a few large
    triangles do not widen every query. Each candidate is solved in closed form (Ericson 2005,
    Sec. 5.1.5) and the nearest kept.
    """
    from scipy.spatial import cKDTree

    q, was_numpy = as_tensor(points, name="points")
    check_shape(q, "N 3", name="points")
    check_floating(q, name="points")
    check_finite(q, name="points")
    v, _ = as_tensor(verts, name="verts")
    check_shape(v, "V 3", name="verts")
    check_floating(v, name="verts")
    check_finite(v, name="verts")
    f, _ = as_tensor(faces, name="faces")
    check_shape(f, "F 3", name="faces")
    check_indices(f, v.shape[0], name="faces")
    chunk = check_int(chunk, name="chunk", minimum=1)
    if q.shape[0] == 0 or f.shape[0] == 0:
        raise ValueError(f"points, faces: expected at least one point and one face, got "
                         f"{tuple(q.shape)} and {tuple(f.shape)}")
    device, dtype = q.device, q.dtype
    qn = q.detach().cpu().double().numpy()  # (N, 3)
    vn = v.detach().cpu().double().numpy()  # (V, 3)
    fn = f.detach().cpu().numpy().astype(np.int64)  # (F, 3)
    n = len(qn)
    tri = vn[fn]  # (F, 3, 3)
    centroid = tri.mean(1)  # (F, 3)
    reach = np.sqrt(((tri - centroid[:, None]) ** 2).sum(-1)).max(1)  # (F,) R_t
    # 1. the triangles around the nearest used vertex: an exact upper bound
    corner = fn.ravel()  # (3F,)
    order = np.argsort(corner, kind="stable")
    starts = np.searchsorted(corner[order], np.arange(len(vn) + 1))  # CSR over vertices
    used = np.unique(corner)
    _, near = cKDTree(vn[used]).query(qn)
    near = used[np.asarray(near, dtype=np.int64)]  # (N,) vertex ids
    counts = starts[near + 1] - starts[near]  # >= 1: a used vertex has a triangle
    owner = np.repeat(np.arange(n), counts)
    offset = np.arange(len(owner)) - np.repeat(np.cumsum(counts) - counts, counts)
    cand = order[starts[near][owner] + offset] // 3
    best = (np.full(n, np.inf), np.empty_like(qn), np.zeros(n, dtype=np.int64))
    _nearest_candidates(qn, owner, cand, tri, best)
    # 2. every triangle that could be closer, by size group
    bound = np.sqrt(best[0]) * (1 + 1e-9) + 1e-9  # (N,)
    group = np.floor(np.log2(np.maximum(reach, 1e-12))).astype(np.int64)
    for gid in np.unique(group):
        members = np.flatnonzero(group == gid)
        owner, local = _ball_pairs(cKDTree(centroid[members]), qn,
                                   bound + reach[members].max(), chunk)
        cand = members[local]
        # the exact per-triangle bound prunes before solving
        keep = (((qn[owner] - centroid[cand]) ** 2).sum(1)
                <= (bound[owner] + reach[cand]) ** 2)
        _nearest_candidates(qn, owner[keep], cand[keep], tri, best)
    out = (torch.from_numpy(best[1]).to(device=device, dtype=dtype),
           torch.from_numpy(np.sqrt(best[0])).to(device=device, dtype=dtype),
           torch.from_numpy(best[2]).to(device))
    return tuple(like_input(o, was_numpy) for o in out)
