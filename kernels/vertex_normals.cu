// vertex_normals.cu — area-weighted vertex normals (MoFA Sec. 4, "one-ring"), forward/backward.
//
//   c_f = (v1 − v0) × (v2 − v0)        s_i = Σ_{f ∋ i} c_f        n_i = s_i r_i,
//   r_i = 1 / sqrt(|s_i|² + 1e-20)
//   ∂L/∂s_i = r_i (g_i − (n_i · g_i) n_i);   G_f = Σ_k ∂L/∂s_{f_k};
//   ∂L/∂v_i = Σ_{(f, k) ∋ i} (v_{f,k+1} − v_{f,k+2}) × G_f
//
// (facelab/normals/reference.py). Gather formulation, one thread per (image, vertex) in a
// grid-stride loop: each thread writes only its own vertex — no atomics, deterministic.
//
// Buffers (row-major, contiguous; T = float or double, indices int32):
//   verts:      (B, V, 3) T
//   faces:      (F, 3) int32, counter-clockwise seen from the front
//   offsets:    (V+1,) int32   vertex → incident-face CSR (reference.vertex_face_csr):
//   face_ids:   (3F,) int32    vertex i is corner corners[j] of face face_ids[j],
//   corners:    (3F,) int32    j in [offsets[i], offsets[i+1])
//   normals:    (B, V, 3) T    n
//   inv_norm:   (B, V) T       r
//   grad_out:   (B, V, 3) T    g = ∂L/∂n
//   grad_sum:   (B, V, 3) T    ∂L/∂s (written by vertex_normals_grad_sum, read by _backward)
//   grad_verts: (B, V, 3) T    ∂L/∂v
// Launch: grid (gx, B, 1), block (bx, 1, 1); image b = blockIdx.y.
#include "facelab_cuda.h"

#define FL_NORMAL_EPS 1e-20

// c_f = (v1 − v0) × (v2 − v0) of face f of image b, added to s (reference.face_cross).
template <typename T>
__device__ __forceinline__ void face_cross(const T* __restrict__ v, const int* __restrict__ faces,
                                           int f, T s[3]) {
    const T* p0 = v + 3LL * faces[3LL * f];
    const T* p1 = v + 3LL * faces[3LL * f + 1];
    const T* p2 = v + 3LL * faces[3LL * f + 2];
    const T ax = p1[0] - p0[0], ay = p1[1] - p0[1], az = p1[2] - p0[2];
    const T bx = p2[0] - p0[0], by = p2[1] - p0[1], bz = p2[2] - p0[2];
    s[0] += ay * bz - az * by;
    s[1] += az * bx - ax * bz;
    s[2] += ax * by - ay * bx;
}

template <typename T>
__device__ void vertex_normals_forward_impl(const T* __restrict__ verts,
                                            const int* __restrict__ faces,
                                            const int* __restrict__ offsets,
                                            const int* __restrict__ face_ids,
                                            T* __restrict__ normals, T* __restrict__ inv_norm,
                                            int V) {
    const long long b = blockIdx.y;
    const T* v = verts + b * V * 3;
    for (long long i = fl_global_index(); i < V; i += fl_grid_stride()) {
        T s[3] = {0, 0, 0};
        for (int j = offsets[i]; j < offsets[i + 1]; ++j) face_cross(v, faces, face_ids[j], s);
        const T r = (T)1 / sqrt(s[0] * s[0] + s[1] * s[1] + s[2] * s[2] + (T)FL_NORMAL_EPS);
        const long long o = (b * V + i) * 3;
        normals[o] = s[0] * r;
        normals[o + 1] = s[1] * r;
        normals[o + 2] = s[2] * r;
        inv_norm[b * V + i] = r;
    }
}

template <typename T>
__device__ void vertex_normals_grad_sum_impl(const T* __restrict__ normals,
                                             const T* __restrict__ inv_norm,
                                             const T* __restrict__ grad_out,
                                             T* __restrict__ grad_sum, int V) {
    const long long b = blockIdx.y;
    for (long long i = fl_global_index(); i < V; i += fl_grid_stride()) {
        const long long o = (b * V + i) * 3;
        const T nx = normals[o], ny = normals[o + 1], nz = normals[o + 2];
        const T gx = grad_out[o], gy = grad_out[o + 1], gz = grad_out[o + 2];
        const T d = nx * gx + ny * gy + nz * gz;  // n · g
        const T r = inv_norm[b * V + i];
        grad_sum[o] = r * (gx - d * nx);  // ∂L/∂s = r (g − (n·g) n)
        grad_sum[o + 1] = r * (gy - d * ny);
        grad_sum[o + 2] = r * (gz - d * nz);
    }
}

template <typename T>
__device__ void vertex_normals_backward_impl(const T* __restrict__ verts,
                                             const int* __restrict__ faces,
                                             const int* __restrict__ offsets,
                                             const int* __restrict__ face_ids,
                                             const int* __restrict__ corners,
                                             const T* __restrict__ grad_sum,
                                             T* __restrict__ grad_verts, int V) {
    const long long b = blockIdx.y;
    const T* v = verts + b * V * 3;
    const T* gs = grad_sum + b * V * 3;
    for (long long i = fl_global_index(); i < V; i += fl_grid_stride()) {
        T a[3] = {0, 0, 0};
        for (int j = offsets[i]; j < offsets[i + 1]; ++j) {
            const long long f = face_ids[j];
            const int k = corners[j];
            const T* g0 = gs + 3LL * faces[3 * f];
            const T* g1 = gs + 3LL * faces[3 * f + 1];
            const T* g2 = gs + 3LL * faces[3 * f + 2];
            const T gx = g0[0] + g1[0] + g2[0], gy = g0[1] + g1[1] + g2[1],
                    gz = g0[2] + g1[2] + g2[2];  // G_f
            const T* pn = v + 3LL * faces[3 * f + (k + 1) % 3];
            const T* pp = v + 3LL * faces[3 * f + (k + 2) % 3];
            const T ex = pn[0] - pp[0], ey = pn[1] - pp[1], ez = pn[2] - pp[2];
            a[0] += ey * gz - ez * gy;  // (v_{k+1} − v_{k+2}) × G_f
            a[1] += ez * gx - ex * gz;
            a[2] += ex * gy - ey * gx;
        }
        const long long o = (b * V + i) * 3;
        grad_verts[o] = a[0];
        grad_verts[o + 1] = a[1];
        grad_verts[o + 2] = a[2];
    }
}

#define FL_VERTEX_NORMALS_KERNELS(SUFFIX, T)                                                     \
    extern "C" __global__ void vertex_normals_forward_##SUFFIX(                                  \
        const T* verts, const int* faces, const int* offsets, const int* face_ids, T* normals,   \
        T* inv_norm, int V) {                                                                    \
        vertex_normals_forward_impl<T>(verts, faces, offsets, face_ids, normals, inv_norm, V);   \
    }                                                                                            \
    extern "C" __global__ void vertex_normals_grad_sum_##SUFFIX(                                 \
        const T* normals, const T* inv_norm, const T* grad_out, T* grad_sum, int V) {            \
        vertex_normals_grad_sum_impl<T>(normals, inv_norm, grad_out, grad_sum, V);               \
    }                                                                                            \
    extern "C" __global__ void vertex_normals_backward_##SUFFIX(                                 \
        const T* verts, const int* faces, const int* offsets, const int* face_ids,               \
        const int* corners, const T* grad_sum, T* grad_verts, int V) {                           \
        vertex_normals_backward_impl<T>(verts, faces, offsets, face_ids, corners, grad_sum,      \
                                        grad_verts, V);                                          \
    }

FL_VERTEX_NORMALS_KERNELS(f32, float)
FL_VERTEX_NORMALS_KERNELS(f64, double)

#define FL_VERTEX_NORMALS_LAUNCHERS(SUFFIX)                                                      \
    FL_HOST_LAUNCHER(vertex_normals_forward_##SUFFIX)                                            \
    FL_HOST_LAUNCHER(vertex_normals_grad_sum_##SUFFIX)                                           \
    FL_HOST_LAUNCHER(vertex_normals_backward_##SUFFIX)

FL_VERTEX_NORMALS_LAUNCHERS(f32)
FL_VERTEX_NORMALS_LAUNCHERS(f64)
