// photometric.cu — dense photometric alignment, MoFA Eq. (8), forward and backward.
//
// Per vertex i of image b (facelab/vertex_losses/reference.py is the definition):
//   I(u_i)  bilinear sample of the image at the screen position u_i (pixels; pixel (i, j) has
//           its centre at (j + 0.5, i + 0.5), so the array-space sample point is u − 0.5; the
//           four neighbours are clamped to the image);
//   w_i     = weights[b, i] if 0 <= x < W and 0 <= y < H, else 0 (outside = invisible);
//   e_i     = sqrt(|I(u_i) − c_i|² + eps²) − eps.
// Forward writes err = w_i e_i and w_eff = w_i per vertex; the caller reduces
//   loss_b = Σ_i err / Σ_i w_eff (0 when Σ w_eff = 0).
// Backward, with scale_b = ∂L/∂loss_b / Σ_i w_eff (0 when the sum is 0) and
//   q_i = scale_b w_i (I(u_i) − c_i) / sqrt(|I(u_i) − c_i|² + eps²):
//   grad_colors = −q_i; grad_positions = q_i · ∂I/∂u; grad_image += bilinear weights × q_i
//   (atomicAdd: several vertices share pixels).
//
// Buffers (row-major, contiguous, scalar type T = float or double):
//   image:          (B, H, W, 3)
//   positions:      (B, V, 2)    screen x, y in pixels
//   colors:         (B, V, 3)    predicted colours c_i
//   weights:        (B, V)       visibility (0/1) or non-negative weights
//   err, w_eff:     (B, V)       forward outputs
//   scale:          (B,)
//   grad_image:     (B, H, W, 3) accumulated (zero-initialised by the caller), if need_image
//   grad_positions: (B, V, 2)    if need_positions
//   grad_colors:    (B, V, 3)    if need_colors
// Launch: grid (gx, B, 1), block (bx, 1, 1); grid-stride loop over the V vertices of image
// b = blockIdx.y.
#include "photometric_common.cuh"

template <typename T>
__device__ void photometric_forward_impl(const T* __restrict__ image,
                                         const T* __restrict__ positions,
                                         const T* __restrict__ colors,
                                         const T* __restrict__ weights, T* __restrict__ err,
                                         T* __restrict__ w_eff, int V, int H, int W, T eps) {
    const long long b = blockIdx.y;
    const T* img = image + b * (long long)H * W * 3;
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
        T sq = 0;
        for (int k = 0; k < 3; ++k) {
            const T sample =
                ((T)1 - fy) * (((T)1 - fx) * img[(y0 * W + x0) * 3 + k] + fx * img[(y0 * W + x1) * 3 + k]) +
                fy * (((T)1 - fx) * img[(y1 * W + x0) * 3 + k] + fx * img[(y1 * W + x1) * 3 + k]);
            const T r = sample - colors[3 * v + k];  // I(u_i) − c_i
            sq += r * r;
        }
        err[v] = w * (sqrt(sq + eps * eps) - eps);
        w_eff[v] = w;
    }
}

template <typename T>
__device__ void photometric_backward_impl(
    const T* __restrict__ image, const T* __restrict__ positions, const T* __restrict__ colors,
    const T* __restrict__ weights, const T* __restrict__ scale, T* __restrict__ grad_image,
    T* __restrict__ grad_positions, T* __restrict__ grad_colors, int V, int H, int W, T eps,
    int need_image, int need_positions, int need_colors) {
    const long long b = blockIdx.y;
    const long long img_off = b * (long long)H * W * 3;
    const T* img = image + img_off;
    for (long long i = fl_global_index(); i < V; i += fl_grid_stride()) {
        const long long v = b * V + i;
        int x0, x1, y0, y1;
        T fx, fy;
        const T w = weights[v];
        if (!bilinear_cell(positions[2 * v], positions[2 * v + 1], H, W, x0, x1, y0, y1, fx,
                           fy) || w == (T)0 || scale[b] == (T)0) {
            if (need_positions) grad_positions[2 * v] = grad_positions[2 * v + 1] = 0;
            if (need_colors)
                for (int k = 0; k < 3; ++k) grad_colors[3 * v + k] = 0;
            continue;
        }
        const int p00 = (y0 * W + x0) * 3, p01 = (y0 * W + x1) * 3;
        const int p10 = (y1 * W + x0) * 3, p11 = (y1 * W + x1) * 3;
        T r[3];
        T sq = 0;
        for (int k = 0; k < 3; ++k) {
            const T sample = ((T)1 - fy) * (((T)1 - fx) * img[p00 + k] + fx * img[p01 + k]) +
                             fy * (((T)1 - fx) * img[p10 + k] + fx * img[p11 + k]);
            r[k] = sample - colors[3 * v + k];
            sq += r[k] * r[k];
        }
        const T c = scale[b] * w / sqrt(sq + eps * eps);
        T gx = 0, gy = 0;
        for (int k = 0; k < 3; ++k) {
            const T q = c * r[k];  // ∂L/∂I(u_i), channel k
            if (need_colors) grad_colors[3 * v + k] = -q;
            if (need_positions) {
                gx += q * (((T)1 - fy) * (img[p01 + k] - img[p00 + k]) + fy * (img[p11 + k] - img[p10 + k]));
                gy += q * (((T)1 - fx) * (img[p10 + k] - img[p00 + k]) + fx * (img[p11 + k] - img[p01 + k]));
            }
            if (need_image) {
                T* gimg = grad_image + img_off;
                atomicAdd(gimg + p00 + k, ((T)1 - fy) * ((T)1 - fx) * q);
                atomicAdd(gimg + p01 + k, ((T)1 - fy) * fx * q);
                atomicAdd(gimg + p10 + k, fy * ((T)1 - fx) * q);
                atomicAdd(gimg + p11 + k, fy * fx * q);
            }
        }
        if (need_positions) {
            grad_positions[2 * v] = gx;
            grad_positions[2 * v + 1] = gy;
        }
    }
}

#define FL_PHOTOMETRIC_KERNELS(SUFFIX, T)                                                        \
    extern "C" __global__ void photometric_forward_##SUFFIX(                                     \
        const T* image, const T* positions, const T* colors, const T* weights, T* err,           \
        T* w_eff, int V, int H, int W, T eps) {                                                  \
        photometric_forward_impl<T>(image, positions, colors, weights, err, w_eff, V, H, W,     \
                                    eps);                                                        \
    }                                                                                            \
    extern "C" __global__ void photometric_backward_##SUFFIX(                                    \
        const T* image, const T* positions, const T* colors, const T* weights, const T* scale,   \
        T* grad_image, T* grad_positions, T* grad_colors, int V, int H, int W, T eps,            \
        int need_image, int need_positions, int need_colors) {                                   \
        photometric_backward_impl<T>(image, positions, colors, weights, scale, grad_image,       \
                                     grad_positions, grad_colors, V, H, W, eps, need_image,      \
                                     need_positions, need_colors);                               \
    }

FL_PHOTOMETRIC_KERNELS(f32, float)
FL_PHOTOMETRIC_KERNELS(f64, double)

FL_HOST_LAUNCHER(photometric_forward_f32)
FL_HOST_LAUNCHER(photometric_forward_f64)
FL_HOST_LAUNCHER(photometric_backward_f32)
FL_HOST_LAUNCHER(photometric_backward_f64)
