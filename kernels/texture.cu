// texture.cu — bilinear texture lookup (nvdiffrast's texture stage), forward and backward.
//
// Per pixel p = (b, i, j) with texture coordinates (u, v) = uv[p] (OBJ convention: u right,
// v up; facelab/texture/reference.py is the definition):
//   x = u Wt − ½,  y = (1 − v) Ht − ½                     (array-index sample point, Eq. 1)
//   x, y clamped to [−1, Wt] / [−1, Ht] (same texels and weights; keeps the int conversion
//   in range); x0 = ⌊x⌋, fx = x − x0; neighbours x0, x0 + 1 clamped to [0, Wt − 1] (and y):
//   clamp-to-edge addressing;
//   out[p] = (1−fy)[(1−fx) T00 + fx T01] + fy[(1−fx) T10 + fx T11]        (Eq. 2)
//   and 0 where has_mask and mask[p] == 0.
// Backward, g = grad_out[p] (0 where masked):
//   grad_texture[b, y_k, x_l] += w_kl g (atomicAdd: neighbouring pixels share texels);
//   grad_uv[p] = (Wt Σ_c g_c ∂T/∂x, −Ht Σ_c g_c ∂T/∂y).
//
// Buffers (row-major, contiguous; T = float or double):
//   texture:      (B, Ht, Wt, C)
//   uv:           (B, H, W, 2)
//   mask:         (B, H, W) int32 0/1, read only when has_mask != 0 (else may be a dummy)
//   out:          (B, H, W, C)
//   grad_out:     (B, H, W, C)
//   grad_texture: (B, Ht, Wt, C) accumulated (zero-initialised by the caller), if need_texture
//   grad_uv:      (B, H, W, 2)   written, if need_uv
// Launch: grid (gx, 1, 1), block (bx, 1, 1); a grid-stride loop over the B·H·W pixels.
#include "facelab_cuda.h"

// Bilinear footprint of (u, v) in a Ht x Wt texture (reference.texel_cell).
template <typename T>
__device__ __forceinline__ void texel_cell(T u, T v, int Ht, int Wt, int& x0, int& x1, int& y0,
                                           int& y1, T& fx, T& fy) {
    T x = u * (T)Wt - (T)0.5;
    T y = ((T)1 - v) * (T)Ht - (T)0.5;
    x = x < (T)-1 ? (T)-1 : (x > (T)Wt ? (T)Wt : x);
    y = y < (T)-1 ? (T)-1 : (y > (T)Ht ? (T)Ht : y);
    const T xf = floor(x), yf = floor(y);
    fx = x - xf;
    fy = y - yf;
    const int xi = (int)xf, yi = (int)yf;  // in [-1, Wt] / [-1, Ht]
    x0 = xi < 0 ? 0 : (xi > Wt - 1 ? Wt - 1 : xi);
    x1 = xi + 1 < 0 ? 0 : (xi + 1 > Wt - 1 ? Wt - 1 : xi + 1);
    y0 = yi < 0 ? 0 : (yi > Ht - 1 ? Ht - 1 : yi);
    y1 = yi + 1 < 0 ? 0 : (yi + 1 > Ht - 1 ? Ht - 1 : yi + 1);
}

template <typename T>
__device__ void texture_forward_impl(const T* __restrict__ texture, const T* __restrict__ uv,
                                     const int* __restrict__ mask, int has_mask, int B, int H,
                                     int W, int Ht, int Wt, int C, T* __restrict__ out) {
    const long long n = (long long)B * H * W;
    for (long long p = fl_global_index(); p < n; p += fl_grid_stride()) {
        T* o = out + p * C;
        if (has_mask && !mask[p]) {
            for (int c = 0; c < C; ++c) o[c] = (T)0;
            continue;
        }
        const long long b = p / ((long long)H * W);
        int x0, x1, y0, y1;
        T fx, fy;
        texel_cell(uv[2 * p], uv[2 * p + 1], Ht, Wt, x0, x1, y0, y1, fx, fy);
        const T* tex = texture + b * (long long)Ht * Wt * C;
        const T* t00 = tex + ((long long)y0 * Wt + x0) * C;
        const T* t01 = tex + ((long long)y0 * Wt + x1) * C;
        const T* t10 = tex + ((long long)y1 * Wt + x0) * C;
        const T* t11 = tex + ((long long)y1 * Wt + x1) * C;
        for (int c = 0; c < C; ++c) {
            const T top = ((T)1 - fx) * t00[c] + fx * t01[c];
            const T bottom = ((T)1 - fx) * t10[c] + fx * t11[c];
            o[c] = ((T)1 - fy) * top + fy * bottom;
        }
    }
}

template <typename T>
__device__ void texture_backward_impl(const T* __restrict__ texture, const T* __restrict__ uv,
                                      const int* __restrict__ mask, int has_mask,
                                      const T* __restrict__ grad_out, int B, int H, int W,
                                      int Ht, int Wt, int C, T* __restrict__ grad_texture,
                                      T* __restrict__ grad_uv, int need_texture, int need_uv) {
    const long long n = (long long)B * H * W;
    for (long long p = fl_global_index(); p < n; p += fl_grid_stride()) {
        if (has_mask && !mask[p]) {
            if (need_uv) grad_uv[2 * p] = grad_uv[2 * p + 1] = (T)0;
            continue;
        }
        const long long b = p / ((long long)H * W);
        int x0, x1, y0, y1;
        T fx, fy;
        texel_cell(uv[2 * p], uv[2 * p + 1], Ht, Wt, x0, x1, y0, y1, fx, fy);
        const long long base = b * (long long)Ht * Wt * C;
        const long long i00 = base + ((long long)y0 * Wt + x0) * C;
        const long long i01 = base + ((long long)y0 * Wt + x1) * C;
        const long long i10 = base + ((long long)y1 * Wt + x0) * C;
        const long long i11 = base + ((long long)y1 * Wt + x1) * C;
        const T w00 = ((T)1 - fy) * ((T)1 - fx), w01 = ((T)1 - fy) * fx;
        const T w10 = fy * ((T)1 - fx), w11 = fy * fx;
        const T* g = grad_out + p * C;
        T gx = 0, gy = 0;
        for (int c = 0; c < C; ++c) {
            if (need_texture) {
                atomicAdd(grad_texture + i00 + c, w00 * g[c]);
                atomicAdd(grad_texture + i01 + c, w01 * g[c]);
                atomicAdd(grad_texture + i10 + c, w10 * g[c]);
                atomicAdd(grad_texture + i11 + c, w11 * g[c]);
            }
            if (need_uv) {
                const T t00 = texture[i00 + c], t01 = texture[i01 + c];
                const T t10 = texture[i10 + c], t11 = texture[i11 + c];
                gx += g[c] * (((T)1 - fy) * (t01 - t00) + fy * (t11 - t10));  // g · ∂T/∂x
                gy += g[c] * (((T)1 - fx) * (t10 - t00) + fx * (t11 - t01));  // g · ∂T/∂y
            }
        }
        if (need_uv) {
            grad_uv[2 * p] = (T)Wt * gx;        // ∂x/∂u = Wt
            grad_uv[2 * p + 1] = -(T)Ht * gy;   // ∂y/∂v = −Ht
        }
    }
}

#define FL_TEXTURE_KERNELS(SUFFIX, T)                                                           \
    extern "C" __global__ void texture_forward_##SUFFIX(                                        \
        const T* texture, const T* uv, const int* mask, int has_mask, int B, int H, int W,      \
        int Ht, int Wt, int C, T* out) {                                                        \
        texture_forward_impl<T>(texture, uv, mask, has_mask, B, H, W, Ht, Wt, C, out);          \
    }                                                                                           \
    extern "C" __global__ void texture_backward_##SUFFIX(                                       \
        const T* texture, const T* uv, const int* mask, int has_mask, const T* grad_out,        \
        int B, int H, int W, int Ht, int Wt, int C, T* grad_texture, T* grad_uv,                \
        int need_texture, int need_uv) {                                                        \
        texture_backward_impl<T>(texture, uv, mask, has_mask, grad_out, B, H, W, Ht, Wt, C,     \
                                 grad_texture, grad_uv, need_texture, need_uv);                 \
    }

FL_TEXTURE_KERNELS(f32, float)
FL_TEXTURE_KERNELS(f64, double)

FL_HOST_LAUNCHER(texture_forward_f32)
FL_HOST_LAUNCHER(texture_forward_f64)
FL_HOST_LAUNCHER(texture_backward_f32)
FL_HOST_LAUNCHER(texture_backward_f64)
