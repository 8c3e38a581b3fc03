// Device helpers shared by photometric.cu and shaded_photometric.cu (the per-vertex
// photometric loss, MoFA Eq. 8, and its fused form with SH shading, MoFA Eqs. 4 + 8): the
// bilinear footprint of a projected vertex, the same helper name as the NumPy reference
// (facelab/vertex_losses/reference.py: bilinear_cell).
#pragma once
#include "facelab_cuda.h"

// Bilinear footprint of (ux, uy): returns whether the point is inside the image, and the
// clamped neighbour indices and fractional weights (reference.bilinear_cell).
template <typename T>
__device__ __forceinline__ bool bilinear_cell(T ux, T uy, int H, int W, int& x0, int& x1,
                                              int& y0, int& y1, T& fx, T& fy) {
    const bool inside = ux >= (T)0 && ux < (T)W && uy >= (T)0 && uy < (T)H;
    if (!inside) return false;
    const T x = ux - (T)0.5, y = uy - (T)0.5;
    const T xf = floor(x), yf = floor(y);
    fx = x - xf;
    fy = y - yf;
    const int xi = (int)xf, yi = (int)yf;  // in [-1, W-1] / [-1, H-1] because inside
    x0 = xi < 0 ? 0 : xi;
    x1 = xi + 1 > W - 1 ? W - 1 : xi + 1;
    y0 = yi < 0 ? 0 : yi;
    y1 = yi + 1 > H - 1 ? H - 1 : yi + 1;
    return true;
}
