// raster_common.cuh — the rasterizer's shared device helpers, included by rasterize.cu and
// interpolate.cu (one definition, so both files round exactly like facelab/raster/reference.py).
//
// Products go through fl_mul (__fmul_rn/__dmul_rn on the GPU) so the compiler cannot fuse
// them into FMAs: edge functions then round exactly like the NumPy and Numba versions.
#pragma once
#include "facelab_cuda.h"

#ifdef FACELAB_HOST
template <typename T> static inline T fl_mul(T a, T b) { return a * b; }
#else
__device__ __forceinline__ float fl_mul(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double fl_mul(double a, double b) { return __dmul_rn(a, b); }
#endif

// E(a, b, p) = (p.x - a.x)(b.y - a.y) - (p.y - a.y)(b.x - a.x), evaluated from the (y, x)-
// smaller endpoint so that E(b, a, p) == -E(a, b, p) bit for bit (watertight shared edges).
template <typename T>
__device__ __forceinline__ T edge_function(T ax, T ay, T bx, T by, T px, T py) {
    if (ay > by || (ay == by && ax > bx))
        return -(fl_mul(px - bx, ay - by) - fl_mul(py - by, ax - bx));
    return fl_mul(px - ax, by - ay) - fl_mul(py - ay, bx - ax);
}

// Reference definition 4: screen-space weights w_k / sum(w); perspective-correct via 1/z.
template <typename T>
__device__ __forceinline__ void barycentrics_and_depth(T w0, T w1, T w2, T z0, T z1, T z2,
                                                       int perspective_correct, T* b, T* depth) {
    T total = w0 + w1 + w2;
    T b0 = w0 / total, b1 = w1 / total, b2 = w2 / total;
    if (!perspective_correct) {
        b[0] = b0; b[1] = b1; b[2] = b2;
        *depth = (fl_mul(b0, z0) + fl_mul(b1, z1)) + fl_mul(b2, z2);
        return;
    }
    T q0 = b0 / z0, q1 = b1 / z1, q2 = b2 / z2;
    T q = (q0 + q1) + q2;
    b[0] = q0 / q; b[1] = q1 / q; b[2] = q2 / q;
    *depth = T(1) / q;
}
