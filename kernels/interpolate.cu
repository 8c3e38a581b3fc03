// interpolate.cu — attribute interpolation over rasterized fragments, forward and backward
// (facelab/raster/reference.py: pixel_barycentrics_reference, interpolate_reference,
// interpolate_backward_reference are the definitions).
//
// Buffers (row-major, T = float for *_f32 kernels, double for *_f64):
//   attrs:       (B, V, C) T       per-vertex attributes
//   verts:       (B, V, 3) T       screen-space vertices (x, y pixels, depth)
//   faces:       (F, 3) int64      vertex indices
//   face_index:  (B, H, W) int64   -1 where empty
//   bary:        (B, H, W, 3) T    barycentrics used by the forward pass
//   out / grad_out: (B, H, W, C) T
//   grad_attrs:  (B, V, C) T       zero-initialised, accumulated with atomicAdd
//   grad_verts:  (B, V, 3) T       zero-initialised, accumulated with atomicAdd
//
// One thread per pixel in every kernel. The backward scatters into shared vertices with
// atomicAdd (float64 atomicAdd needs sm_60+), so sums are exact up to summation order.
// edge_function / barycentrics_and_depth / fl_mul come from raster_common.cuh (shared with
// rasterize.cu; the tests compare both files' host builds with the NumPy reference).
#include "raster_common.cuh"

// dL/da, dL/db (x, y) from dL/dE for E(a, b, p).
template <typename T>
__device__ __forceinline__ void edge_backward(T gw, T ax, T ay, T bx, T by, T px, T py, T* ga,
                                              T* gb) {
    atomicAdd(ga, gw * (py - by));
    atomicAdd(ga + 1, gw * (bx - px));
    atomicAdd(gb, gw * (ay - py));
    atomicAdd(gb + 1, gw * (px - ax));
}

template <typename T>
__device__ void pixel_barycentrics_impl(const T* verts, const long long* faces,
                                        const long long* face_index, int B, int V, int H, int W,
                                        int perspective_correct, T* bary) {
    const long long n = (long long)B * H * W;
    for (long long t = fl_global_index(); t < n; t += fl_grid_stride()) {
        const long long f = face_index[t];
        if (f < 0) {
            bary[3 * t] = T(0); bary[3 * t + 1] = T(0); bary[3 * t + 2] = T(0);
            continue;
        }
        const long long b = t / ((long long)H * W);
        const int i = (int)((t / W) % H), j = (int)(t % W);
        const T* vb = verts + b * (long long)V * 3;
        const long long a0 = faces[3 * f], a1 = faces[3 * f + 1], a2 = faces[3 * f + 2];
        const T px = T(j) + T(0.5), py = T(i) + T(0.5);
        const T w0 = edge_function(vb[3 * a1], vb[3 * a1 + 1], vb[3 * a2], vb[3 * a2 + 1], px, py);
        const T w1 = edge_function(vb[3 * a2], vb[3 * a2 + 1], vb[3 * a0], vb[3 * a0 + 1], px, py);
        const T w2 = edge_function(vb[3 * a0], vb[3 * a0 + 1], vb[3 * a1], vb[3 * a1 + 1], px, py);
        T d;
        barycentrics_and_depth(w0, w1, w2, vb[3 * a0 + 2], vb[3 * a1 + 2], vb[3 * a2 + 2],
                               perspective_correct, bary + 3 * t, &d);
    }
}

template <typename T>
__device__ void interpolate_forward_impl(const T* attrs, const long long* face_index,
                                         const T* bary, const long long* faces, int B, int V,
                                         int H, int W, int C, T* out) {
    const long long n = (long long)B * H * W;
    for (long long t = fl_global_index(); t < n; t += fl_grid_stride()) {
        const long long f = face_index[t];
        if (f < 0) {
            for (int c = 0; c < C; ++c) out[t * C + c] = T(0);
            continue;
        }
        const long long b = t / ((long long)H * W);
        const T* ab = attrs + b * (long long)V * C;
        const T* r0 = ab + faces[3 * f] * C;
        const T* r1 = ab + faces[3 * f + 1] * C;
        const T* r2 = ab + faces[3 * f + 2] * C;
        const T b0 = bary[3 * t], b1 = bary[3 * t + 1], b2 = bary[3 * t + 2];
        for (int c = 0; c < C; ++c)
            out[t * C + c] = (fl_mul(b0, r0[c]) + fl_mul(b1, r1[c])) + fl_mul(b2, r2[c]);
    }
}

template <typename T>
__device__ void interpolate_backward_impl(const T* grad_out, const T* attrs,
                                          const long long* face_index, const T* bary,
                                          const long long* faces, const T* verts, int B, int V,
                                          int H, int W, int C, int perspective_correct,
                                          int need_attrs, int need_verts, T* grad_attrs,
                                          T* grad_verts) {
    const long long n = (long long)B * H * W;
    for (long long t = fl_global_index(); t < n; t += fl_grid_stride()) {
        const long long f = face_index[t];
        if (f < 0) continue;
        const long long b = t / ((long long)H * W);
        const long long a[3] = {faces[3 * f], faces[3 * f + 1], faces[3 * f + 2]};
        const T* g = grad_out + t * C;
        if (need_attrs) {
            T* ga = grad_attrs + b * (long long)V * C;
            for (int k = 0; k < 3; ++k)
                for (int c = 0; c < C; ++c) atomicAdd(ga + a[k] * C + c, bary[3 * t + k] * g[c]);
        }
        if (!need_verts) continue;
        const T* ab = attrs + b * (long long)V * C;
        T gb[3] = {T(0), T(0), T(0)};  // dL/dbary_k = <attrs_k, g>
        for (int k = 0; k < 3; ++k)
            for (int c = 0; c < C; ++c) gb[k] += ab[a[k] * C + c] * g[c];
        const int i = (int)((t / W) % H), j = (int)(t % W);
        const T px = T(j) + T(0.5), py = T(i) + T(0.5);
        const T* vb = verts + b * (long long)V * 3;
        T* gv = grad_verts + b * (long long)V * 3;
        const T x0 = vb[3 * a[0]], y0 = vb[3 * a[0] + 1], z0 = vb[3 * a[0] + 2];
        const T x1 = vb[3 * a[1]], y1 = vb[3 * a[1] + 1], z1 = vb[3 * a[1] + 2];
        const T x2 = vb[3 * a[2]], y2 = vb[3 * a[2] + 1], z2 = vb[3 * a[2] + 2];
        const T w0 = edge_function(x1, y1, x2, y2, px, py);
        const T w1 = edge_function(x2, y2, x0, y0, px, py);
        const T w2 = edge_function(x0, y0, x1, y1, px, py);
        const T total = w0 + w1 + w2;
        const T s0 = w0 / total, s1 = w1 / total, s2 = w2 / total;
        if (perspective_correct) {
            const T q0 = s0 / z0, q1 = s1 / z1, q2 = s2 / z2;
            const T q = q0 + q1 + q2;
            const T dot = (gb[0] * q0 + gb[1] * q1 + gb[2] * q2) / q;
            const T gq0 = (gb[0] - dot) / q, gq1 = (gb[1] - dot) / q, gq2 = (gb[2] - dot) / q;
            atomicAdd(gv + 3 * a[0] + 2, -gq0 * q0 / z0);
            atomicAdd(gv + 3 * a[1] + 2, -gq1 * q1 / z1);
            atomicAdd(gv + 3 * a[2] + 2, -gq2 * q2 / z2);
            gb[0] = gq0 / z0; gb[1] = gq1 / z1; gb[2] = gq2 / z2;
        }
        const T dot = gb[0] * s0 + gb[1] * s1 + gb[2] * s2;
        edge_backward((gb[0] - dot) / total, x1, y1, x2, y2, px, py, gv + 3 * a[1], gv + 3 * a[2]);
        edge_backward((gb[1] - dot) / total, x2, y2, x0, y0, px, py, gv + 3 * a[2], gv + 3 * a[0]);
        edge_backward((gb[2] - dot) / total, x0, y0, x1, y1, px, py, gv + 3 * a[0], gv + 3 * a[1]);
    }
}

#define FL_INTERP_KERNELS(SUFFIX, T)                                                          \
    extern "C" __global__ void pixel_barycentrics_##SUFFIX(                                   \
        const T* verts, const long long* faces, const long long* face_index, int B, int V,    \
        int H, int W, int perspective_correct, T* bary) {                                     \
        pixel_barycentrics_impl<T>(verts, faces, face_index, B, V, H, W, perspective_correct, \
                                   bary);                                                     \
    }                                                                                         \
    extern "C" __global__ void interpolate_forward_##SUFFIX(                                  \
        const T* attrs, const long long* face_index, const T* bary, const long long* faces,   \
        int B, int V, int H, int W, int C, T* out) {                                          \
        interpolate_forward_impl<T>(attrs, face_index, bary, faces, B, V, H, W, C, out);      \
    }                                                                                         \
    extern "C" __global__ void interpolate_backward_##SUFFIX(                                 \
        const T* grad_out, const T* attrs, const long long* face_index, const T* bary,        \
        const long long* faces, const T* verts, int B, int V, int H, int W, int C,            \
        int perspective_correct, int need_attrs, int need_verts, T* grad_attrs,               \
        T* grad_verts) {                                                                      \
        interpolate_backward_impl<T>(grad_out, attrs, face_index, bary, faces, verts, B, V,   \
                                     H, W, C, perspective_correct, need_attrs, need_verts,    \
                                     grad_attrs, grad_verts);                                 \
    }                                                                                         \
    FL_HOST_LAUNCHER(pixel_barycentrics_##SUFFIX)                                             \
    FL_HOST_LAUNCHER(interpolate_forward_##SUFFIX)                                            \
    FL_HOST_LAUNCHER(interpolate_backward_##SUFFIX)

FL_INTERP_KERNELS(f32, float)
FL_INTERP_KERNELS(f64, double)
