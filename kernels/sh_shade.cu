// sh_shade.cu — Lambertian spherical-harmonics shading, MoFA Eq. (4), forward and backward.
//
//   c_i = r_i ⊙ Σ_{b=1..9} γ_b H_b(n_i)
//
// H_b is the irradiance basis of facelab.lighting / facelab/shading/reference.py (real SH of
// bands 0-2 times the clamped-cosine factors Â_l = π, 2π/3, π/4), order
// [1, y, z, x, xy, yz, 3z²−1, xz, x²−y²], with the exact constants of facelab.lighting
// (0.282095 = 1/(2√π), ...). Normals are used as given (assumed unit length).
//
// Buffers (row-major, contiguous, all of one scalar type T = float or double):
//   albedo:        (B, V, 3)
//   normals:       (B, V, 3)
//   gamma:         (B, 9, 3)
//   out:           (B, V, 3)
//   grad_out:      (B, V, 3)
//   grad_albedo:   (B, V, 3)   written when need_albedo != 0 (else may be a dummy)
//   grad_normals:  (B, V, 3)   written when need_normals != 0
//   gamma_partial: (B, T_img, 9, 3) with T_img = gridDim.x * blockDim.x: thread t of image b
//                  writes the partial sum Σ_{i ≡ t mod T_img} (g_i ⊙ r_i) H(n_i)ᵀ; the caller
//                  sums over axis 1 (race-free and deterministic, no atomics).
// Launch: grid (gx, B, 1), block (bx, 1, 1); each image b = blockIdx.y is processed by a
// grid-stride loop over its V vertices.
#include "facelab_cuda.h"

#define FL_C0 0.8862269254527579  /* π · 1/(2√π) */
#define FL_C1 1.0233267079464883  /* 2π/3 · √(3/(4π)) */
#define FL_C2 0.8580855308097834  /* π/4 · ½√(15/π) */
#define FL_C3 0.24770795610037571  /* π/4 · ¼√(5/π) */
#define FL_C4 0.4290427654048917  /* π/4 · ¼√(15/π) */

// H_b(n) for b = 0..8 (reference.irradiance_basis).
template <typename T>
__device__ __forceinline__ void irradiance_basis(T x, T y, T z, T h[9]) {
    h[0] = (T)FL_C0;
    h[1] = (T)FL_C1 * y;
    h[2] = (T)FL_C1 * z;
    h[3] = (T)FL_C1 * x;
    h[4] = (T)FL_C2 * x * y;
    h[5] = (T)FL_C2 * y * z;
    h[6] = (T)FL_C3 * ((T)3 * z * z - (T)1);
    h[7] = (T)FL_C2 * x * z;
    h[8] = (T)FL_C4 * (x * x - y * y);
}

template <typename T>
__device__ void sh_shade_forward_impl(const T* __restrict__ albedo, const T* __restrict__ normals,
                                      const T* __restrict__ gamma, T* __restrict__ out, int V) {
    const long long b = blockIdx.y;
    const T* g = gamma + b * 27;
    for (long long i = fl_global_index(); i < V; i += fl_grid_stride()) {
        const long long o = (b * V + i) * 3;
        T h[9];
        irradiance_basis(normals[o], normals[o + 1], normals[o + 2], h);
        for (int k = 0; k < 3; ++k) {
            T s = 0;
            for (int j = 0; j < 9; ++j) s += g[j * 3 + k] * h[j];  // Σ_b γ_bk H_b(n)
            out[o + k] = albedo[o + k] * s;
        }
    }
}

template <typename T>
__device__ void sh_shade_backward_impl(const T* __restrict__ albedo, const T* __restrict__ normals,
                                       const T* __restrict__ gamma, const T* __restrict__ grad_out,
                                       T* __restrict__ grad_albedo, T* __restrict__ grad_normals,
                                       T* __restrict__ gamma_partial, int V, int need_albedo,
                                       int need_normals, int need_gamma) {
    const long long b = blockIdx.y;
    const long long t = fl_global_index();
    const long long n_threads = fl_grid_stride();
    const T* g = gamma + b * 27;
    T acc[27];
    for (int j = 0; j < 27; ++j) acc[j] = 0;
    for (long long i = t; i < V; i += n_threads) {
        const long long o = (b * V + i) * 3;
        const T x = normals[o], y = normals[o + 1], z = normals[o + 2];
        T h[9];
        irradiance_basis(x, y, z, h);
        T dx = 0, dy = 0, dz = 0;
        for (int k = 0; k < 3; ++k) {
            const T go = grad_out[o + k];
            const T a = go * albedo[o + k];  // g ⊙ r
            if (need_albedo) {
                T s = 0;
                for (int j = 0; j < 9; ++j) s += g[j * 3 + k] * h[j];
                grad_albedo[o + k] = go * s;  // ∂L/∂r = g ⊙ s
            }
            if (need_normals) {  // Σ_b γ_bk ∇H_b(n) (reference.irradiance_basis_grad)
                dx += a * (g[9 + k] * (T)FL_C1 + g[12 + k] * (T)FL_C2 * y
                           + g[21 + k] * (T)FL_C2 * z + g[24 + k] * (T)(2 * FL_C4) * x);
                dy += a * (g[3 + k] * (T)FL_C1 + g[12 + k] * (T)FL_C2 * x
                           + g[15 + k] * (T)FL_C2 * z - g[24 + k] * (T)(2 * FL_C4) * y);
                dz += a * (g[6 + k] * (T)FL_C1 + g[15 + k] * (T)FL_C2 * y
                           + g[18 + k] * (T)(6 * FL_C3) * z + g[21 + k] * (T)FL_C2 * x);
            }
            if (need_gamma)
                for (int j = 0; j < 9; ++j) acc[j * 3 + k] += a * h[j];  // ∂L/∂γ_bk
        }
        if (need_normals) {
            grad_normals[o] = dx;
            grad_normals[o + 1] = dy;
            grad_normals[o + 2] = dz;
        }
    }
    if (need_gamma) {
        T* p = gamma_partial + (b * n_threads + t) * 27;
        for (int j = 0; j < 27; ++j) p[j] = acc[j];
    }
}

#define FL_SH_SHADE_KERNELS(SUFFIX, T)                                                           \
    extern "C" __global__ void sh_shade_forward_##SUFFIX(const T* albedo, const T* normals,      \
                                                         const T* gamma, T* out, int V) {        \
        sh_shade_forward_impl<T>(albedo, normals, gamma, out, V);                                \
    }                                                                                            \
    extern "C" __global__ void sh_shade_backward_##SUFFIX(                                       \
        const T* albedo, const T* normals, const T* gamma, const T* grad_out, T* grad_albedo,    \
        T* grad_normals, T* gamma_partial, int V, int need_albedo, int need_normals,             \
        int need_gamma) {                                                                        \
        sh_shade_backward_impl<T>(albedo, normals, gamma, grad_out, grad_albedo, grad_normals,   \
                                  gamma_partial, V, need_albedo, need_normals, need_gamma);      \
    }

FL_SH_SHADE_KERNELS(f32, float)
FL_SH_SHADE_KERNELS(f64, double)

FL_HOST_LAUNCHER(sh_shade_forward_f32)
FL_HOST_LAUNCHER(sh_shade_forward_f64)
FL_HOST_LAUNCHER(sh_shade_backward_f32)
FL_HOST_LAUNCHER(sh_shade_backward_f64)
