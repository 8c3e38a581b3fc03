// shaded_photometric.cu — SH shading fused with the dense photometric loss, MoFA Eqs. (4) + (8).
//
// Per vertex i of image b (facelab/shaded_photometric/reference.py is the definition: the
// chain of sh_shade.cu's and photometric.cu's formulas):
//   s_ik = Σ_j γc_jk H_j(n_i), H = [1, y, z, x, xy, yz, 3z²−1, xz, x²−y²] (constant-free: the
//          irradiance constants are folded into gamma_c = γ ⊙ C by the caller);
//   c_ik = r_ik s_ik                                                         (Eq. 4)
//   e_i  = sqrt(|I(u_i) − c_i|² + eps²) − eps, I(u) bilinear as in photometric.cu;
//   w_i  = weights[b, i] if u_i is inside [0, W) × [0, H), else 0.
// Forward writes err = w_i e_i and w_eff = w_i per vertex; the caller reduces
//   loss_b = Σ_i err / Σ_i w_eff (0 when the sum is 0).
// Backward, with scale_b = ∂L/∂loss_b / Σ_i w_eff (0 when the sum is 0),
//   q_ik = scale_b w_i (I(u_i) − c_i)_k / sqrt(|I(u_i) − c_i|² + eps²) (∂L/∂c = −q) and
//   a_ik = −q_ik r_ik:
//   grad_positions = q_i · ∂I/∂u; grad_albedo = −q ⊙ s; grad_normals = Σ_k a_ik ∇s_ik;
//   gamma_partial[b, t] = Σ_{i ≡ t mod T_img} a_i H(n_i)ᵀ (constant-free; the caller sums over
//   t and multiplies by the constants: race-free and deterministic, no atomics).
//
// Buffers (row-major, contiguous, scalar type T = float or double):
//   image:          (B, H, W, 3)
//   positions:      (B, V, 2)    screen x, y in pixels
//   albedo:         (B, V, 3)    reflectance r_i
//   normals:        (B, V, 3)    unit normals in gamma's frame
//   gamma_c:        (B, 9, 3)    γ premultiplied by the irradiance basis constants
//   weights:        (B, V)       visibility (0/1) or non-negative weights
//   err, w_eff:     (B, V)       forward outputs
//   scale:          (B,)
//   grad_positions: (B, V, 2)    if need_positions
//   grad_albedo:    (B, V, 3)    if need_albedo
//   grad_normals:   (B, V, 3)    if need_normals
//   gamma_partial:  (B, T_img, 9, 3), T_img = gridDim.x * blockDim.x, if need_gamma
// Launch: grid (gx, B, 1), block (bx, 1, 1); grid-stride loop over the V vertices of image
// b = blockIdx.y.
#include "photometric_common.cuh"

// Constant-free irradiance monomials H_j(n) (shading reference.irradiance_basis / C_j).
template <typename T>
__device__ __forceinline__ void basis_monomials(T x, T y, T z, T h[9]) {
    h[0] = (T)1;
    h[1] = y;
    h[2] = z;
    h[3] = x;
    h[4] = x * y;
    h[5] = y * z;
    h[6] = (T)3 * z * z - (T)1;
    h[7] = x * z;
    h[8] = x * x - y * y;
}

// Residuals I(u_i) − c_i (r[3]) and irradiances s_i (s[3]) of one in-image vertex.
template <typename T>
__device__ __forceinline__ void residual(const T* img, const T* g, const T* alb, const T h[9],
                                         int p00, int p01, int p10, int p11, T fx, T fy, T r[3],
                                         T s[3]) {
    for (int k = 0; k < 3; ++k) {
        T sk = 0;
        for (int j = 0; j < 9; ++j) sk += g[j * 3 + k] * h[j];  // Σ_j γc_jk H_j(n)
        const T sample = ((T)1 - fy) * (((T)1 - fx) * img[p00 + k] + fx * img[p01 + k]) +
                         fy * (((T)1 - fx) * img[p10 + k] + fx * img[p11 + k]);
        s[k] = sk;
        r[k] = sample - alb[k] * sk;  // I(u_i) − r_i s_i
    }
}

template <typename T>
__device__ void shaded_photometric_forward_impl(
    const T* __restrict__ image, const T* __restrict__ positions, const T* __restrict__ albedo,
    const T* __restrict__ normals, const T* __restrict__ gamma_c, const T* __restrict__ weights,
    T* __restrict__ err, T* __restrict__ w_eff, int V, int H, int W, T eps) {
    const long long b = blockIdx.y;
    const T* img = image + b * (long long)H * W * 3;
    const T* g = gamma_c + b * 27;
    for (long long i = fl_global_index(); i < V; i += fl_grid_stride()) {
        const long long v = b * V + i;
        int x0, x1, y0, y1;
        T fx, fy;
        const T w = weights[v];
        if (!bilinear_cell(positions[2 * v], positions[2 * v + 1], H, W, x0, x1, y0, y1, fx,
                           fy) || w == (T)0) {
            err[v] = 0;
            w_eff[v] = 0;
            continue;
        }
        T h[9], r[3], s[3];
        basis_monomials(normals[3 * v], normals[3 * v + 1], normals[3 * v + 2], h);
        residual(img, g, albedo + 3 * v, h, (y0 * W + x0) * 3, (y0 * W + x1) * 3,
                 (y1 * W + x0) * 3, (y1 * W + x1) * 3, fx, fy, r, s);
        err[v] = w * (sqrt(r[0] * r[0] + r[1] * r[1] + r[2] * r[2] + eps * eps) - eps);
        w_eff[v] = w;
    }
}

template <typename T>
__device__ void shaded_photometric_backward_impl(
    const T* __restrict__ image, const T* __restrict__ positions, const T* __restrict__ albedo,
    const T* __restrict__ normals, const T* __restrict__ gamma_c, const T* __restrict__ weights,
    const T* __restrict__ scale, T* __restrict__ grad_positions, T* __restrict__ grad_albedo,
    T* __restrict__ grad_normals, T* __restrict__ gamma_partial, int V, int H, int W, T eps,
    int need_positions, int need_albedo, int need_normals, int need_gamma) {
    const long long b = blockIdx.y;
    const long long t = fl_global_index();
    const long long n_threads = fl_grid_stride();
    const T* img = image + b * (long long)H * W * 3;
    const T* g = gamma_c + b * 27;
    T acc[27];
    for (int j = 0; j < 27; ++j) acc[j] = 0;
    for (long long i = t; i < V; i += n_threads) {
        const long long v = b * V + i;
        int x0, x1, y0, y1;
        T fx, fy;
        const T w = weights[v];
        if (!bilinear_cell(positions[2 * v], positions[2 * v + 1], H, W, x0, x1, y0, y1, fx,
                           fy) || w == (T)0 || scale[b] == (T)0) {
            if (need_positions) grad_positions[2 * v] = grad_positions[2 * v + 1] = 0;
            for (int k = 0; k < 3; ++k) {
                if (need_albedo) grad_albedo[3 * v + k] = 0;
                if (need_normals) grad_normals[3 * v + k] = 0;
            }
            continue;
        }
        const T x = normals[3 * v], y = normals[3 * v + 1], z = normals[3 * v + 2];
        const int p00 = (y0 * W + x0) * 3, p01 = (y0 * W + x1) * 3;
        const int p10 = (y1 * W + x0) * 3, p11 = (y1 * W + x1) * 3;
        T h[9], r[3], s[3];
        basis_monomials(x, y, z, h);
        residual(img, g, albedo + 3 * v, h, p00, p01, p10, p11, fx, fy, r, s);
        const T c = scale[b] * w / sqrt(r[0] * r[0] + r[1] * r[1] + r[2] * r[2] + eps * eps);
        T gx = 0, gy = 0, dx = 0, dy = 0, dz = 0;
        for (int k = 0; k < 3; ++k) {
            const T q = c * r[k];  // ∂L/∂I(u_i), channel k; ∂L/∂c_ik = −q
            if (need_positions) {
                gx += q * (((T)1 - fy) * (img[p01 + k] - img[p00 + k]) + fy * (img[p11 + k] - img[p10 + k]));
                gy += q * (((T)1 - fx) * (img[p10 + k] - img[p00 + k]) + fx * (img[p11 + k] - img[p01 + k]));
            }
            if (need_albedo) grad_albedo[3 * v + k] = -q * s[k];
            const T a = -q * albedo[3 * v + k];
            if (need_normals) {  // Σ_j γc_jk ∇H_j(n)
                dx += a * (g[9 + k] + g[12 + k] * y + g[21 + k] * z + (T)2 * g[24 + k] * x);
                dy += a * (g[3 + k] + g[12 + k] * x + g[15 + k] * z - (T)2 * g[24 + k] * y);
                dz += a * (g[6 + k] + g[15 + k] * y + (T)6 * g[18 + k] * z + g[21 + k] * x);
            }
            if (need_gamma)
                for (int j = 0; j < 9; ++j) acc[j * 3 + k] += a * h[j];
        }
        if (need_positions) {
            grad_positions[2 * v] = gx;
            grad_positions[2 * v + 1] = gy;
        }
        if (need_normals) {
            grad_normals[3 * v] = dx;
            grad_normals[3 * v + 1] = dy;
            grad_normals[3 * v + 2] = dz;
        }
    }
    if (need_gamma) {
        T* p = gamma_partial + (b * n_threads + t) * 27;
        for (int j = 0; j < 27; ++j) p[j] = acc[j];
    }
}

#define FL_SHADED_PHOTOMETRIC_KERNELS(SUFFIX, T)                                                 \
    extern "C" __global__ void shaded_photometric_forward_##SUFFIX(                              \
        const T* image, const T* positions, const T* albedo, const T* normals,                   \
        const T* gamma_c, const T* weights, T* err, T* w_eff, int V, int H, int W, T eps) {      \
        shaded_photometric_forward_impl<T>(image, positions, albedo, normals, gamma_c, weights,  \
                                           err, w_eff, V, H, W, eps);                            \
    }                                                                                            \
    extern "C" __global__ void shaded_photometric_backward_##SUFFIX(                             \
        const T* image, const T* positions, const T* albedo, const T* normals,                   \
        const T* gamma_c, const T* weights, const T* scale, T* grad_positions, T* grad_albedo,   \
        T* grad_normals, T* gamma_partial, int V, int H, int W, T eps, int need_positions,       \
        int need_albedo, int need_normals, int need_gamma) {                                     \
        shaded_photometric_backward_impl<T>(image, positions, albedo, normals, gamma_c,          \
                                            weights, scale, grad_positions, grad_albedo,         \
                                            grad_normals, gamma_partial, V, H, W, eps,           \
                                            need_positions, need_albedo, need_normals,           \
                                            need_gamma);                                         \
    }

FL_SHADED_PHOTOMETRIC_KERNELS(f32, float)
FL_SHADED_PHOTOMETRIC_KERNELS(f64, double)

FL_HOST_LAUNCHER(shaded_photometric_forward_f32)
FL_HOST_LAUNCHER(shaded_photometric_forward_f64)
FL_HOST_LAUNCHER(shaded_photometric_backward_f32)
FL_HOST_LAUNCHER(shaded_photometric_backward_f64)
