// rasterize.cu — triangle rasterization, two race-free passes (facelab/raster/reference.py
// is the definition; the helpers below carry the same names and formulas).
//
// Buffers (row-major, T = float for *_f32 kernels, double for *_f64):
//   verts:      (B, V, 3) T        screen space (x right, y down, pixels; depth)
//   faces:      (F, 3) int64        vertex indices
//   zbuffer:    (B, H, W) uint64    packed key, init 0xFFFFFFFFFFFFFFFF (empty):
//                                   ordered_bits(float32(depth)) << 32 | face id
//   face_index: (B, H, W) int64     -1 where empty
//   bary:       (B, H, W, 3) T      0 where empty
//   depth:      (B, H, W) T         0 where empty
//
// Pass 1 (rasterize_zbuffer_*): one thread per (batch item, face) walks the face's clamped
// bounding box and atomicMin's the packed key: depth test and face id in ONE 64-bit word, so
// there is no race between them; the smallest key is the nearest float32 depth, ties to the
// smaller face id — the reference's order. Pass 2 (rasterize_resolve_*): one thread per pixel
// unpacks the winner and recomputes barycentrics and depth exactly as pass 1 did.
//
// edge_function / barycentrics_and_depth / fl_mul live in raster_common.cuh (shared with
// interpolate.cu).
#include "raster_common.cuh"

// Indices k with centre k + 0.5 in [lo, hi], clamped to [0, size - 1]; computed in double.
__device__ __forceinline__ void pixel_range(double lo, double hi, int size, int* first, int* last) {
    double f = fmin(fmax(ceil(lo - 0.5), 0.0), (double)size);
    double l = fmax(fmin(floor(hi - 0.5), size - 1.0), -1.0);
    *first = (int)f;
    *last = (int)l;
}

// Order-preserving map float -> uint32 (negative depths allowed; -0 == +0).
__device__ __forceinline__ unsigned int ordered_bits(float d) {
    unsigned int u = __float_as_uint(d + 0.0f);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

template <typename T>
__device__ __forceinline__ bool covers(T r, T m, bool top_left) {
    return fl_mul(m, r) > T(0) || (r == T(0) && top_left);
}

template <typename T>
__device__ void rasterize_zbuffer_impl(const T* verts, const long long* faces, int B, int V,
                                       long long F, int H, int W, T near_z, int cull_backfaces,
                                       int perspective_correct, unsigned long long* zbuffer) {
    const long long n = (long long)B * F;
    for (long long t = fl_global_index(); t < n; t += fl_grid_stride()) {
        const long long b = t / F, f = t - b * F;
        const T* vb = verts + b * (long long)V * 3;
        const long long i0v = faces[3 * f], i1v = faces[3 * f + 1], i2v = faces[3 * f + 2];
        const T x0 = vb[3 * i0v], y0 = vb[3 * i0v + 1], z0 = vb[3 * i0v + 2];
        const T x1 = vb[3 * i1v], y1 = vb[3 * i1v + 1], z1 = vb[3 * i1v + 2];
        const T x2 = vb[3 * i2v], y2 = vb[3 * i2v + 1], z2 = vb[3 * i2v + 2];
        int j0, j1, r0, r1;
        pixel_range((double)fmin(x0, fmin(x1, x2)), (double)fmax(x0, fmax(x1, x2)), W, &j0, &j1);
        pixel_range((double)fmin(y0, fmin(y1, y2)), (double)fmax(y0, fmax(y1, y2)), H, &r0, &r1);
        if (j0 > j1 || r0 > r1) continue;
        if (fmin(z0, fmin(z1, z2)) <= near_z) continue;  // at or behind the near plane
        const T area = edge_function(x1, y1, x2, y2, x0, y0);
        if (area == T(0) || (cull_backfaces && area < T(0))) continue;
        const T s = area > T(0) ? T(1) : T(-1);
        // top-left flags of the edges opposite v0, v1, v2 (direction made counter-clockwise)
        const T d0x = s * (x2 - x1), d0y = s * (y2 - y1);
        const T d1x = s * (x0 - x2), d1y = s * (y0 - y2);
        const T d2x = s * (x1 - x0), d2y = s * (y1 - y0);
        const bool t0 = d0y > T(0) || (d0y == T(0) && d0x < T(0));
        const bool t1 = d1y > T(0) || (d1y == T(0) && d1x < T(0));
        const bool t2 = d2y > T(0) || (d2y == T(0) && d2x < T(0));
        unsigned long long* zb = zbuffer + b * (long long)H * W;
        for (int i = r0; i <= r1; ++i) {
            const T py = T(i) + T(0.5);
            for (int j = j0; j <= j1; ++j) {
                const T px = T(j) + T(0.5);
                const T w0 = edge_function(x1, y1, x2, y2, px, py);
                if (!covers(w0, s, t0)) continue;
                const T w1 = edge_function(x2, y2, x0, y0, px, py);
                if (!covers(w1, s, t1)) continue;
                const T w2 = edge_function(x0, y0, x1, y1, px, py);
                if (!covers(w2, s, t2)) continue;
                T bc[3], d;
                barycentrics_and_depth(w0, w1, w2, z0, z1, z2, perspective_correct, bc, &d);
                const unsigned long long key =
                    ((unsigned long long)ordered_bits((float)d) << 32) | (unsigned long long)f;
                atomicMin(zb + (long long)i * W + j, key);
            }
        }
    }
}

template <typename T>
__device__ void rasterize_resolve_impl(const T* verts, const long long* faces, int B, int V,
                                       int H, int W, int perspective_correct,
                                       const unsigned long long* zbuffer, long long* face_index,
                                       T* bary, T* depth) {
    const long long n = (long long)B * H * W;
    for (long long t = fl_global_index(); t < n; t += fl_grid_stride()) {
        const unsigned long long key = zbuffer[t];
        if (key == 0xFFFFFFFFFFFFFFFFull) {
            face_index[t] = -1;
            bary[3 * t] = T(0); bary[3 * t + 1] = T(0); bary[3 * t + 2] = T(0);
            depth[t] = T(0);
            continue;
        }
        const long long f = (long long)(key & 0xFFFFFFFFull);
        const long long b = t / ((long long)H * W);
        const int i = (int)((t / W) % H), j = (int)(t % W);
        const T* vb = verts + b * (long long)V * 3;
        const long long i0v = faces[3 * f], i1v = faces[3 * f + 1], i2v = faces[3 * f + 2];
        const T x0 = vb[3 * i0v], y0 = vb[3 * i0v + 1], z0 = vb[3 * i0v + 2];
        const T x1 = vb[3 * i1v], y1 = vb[3 * i1v + 1], z1 = vb[3 * i1v + 2];
        const T x2 = vb[3 * i2v], y2 = vb[3 * i2v + 1], z2 = vb[3 * i2v + 2];
        const T px = T(j) + T(0.5), py = T(i) + T(0.5);
        const T w0 = edge_function(x1, y1, x2, y2, px, py);
        const T w1 = edge_function(x2, y2, x0, y0, px, py);
        const T w2 = edge_function(x0, y0, x1, y1, px, py);
        barycentrics_and_depth(w0, w1, w2, z0, z1, z2, perspective_correct, bary + 3 * t,
                               depth + t);
        face_index[t] = f;
    }
}

extern "C" __global__ void rasterize_zbuffer_f32(const float* verts, const long long* faces,
                                                 int B, int V, long long F, int H, int W,
                                                 float near_z, int cull_backfaces,
                                                 int perspective_correct,
                                                 unsigned long long* zbuffer) {
    rasterize_zbuffer_impl<float>(verts, faces, B, V, F, H, W, near_z, cull_backfaces,
                                  perspective_correct, zbuffer);
}
extern "C" __global__ void rasterize_zbuffer_f64(const double* verts, const long long* faces,
                                                 int B, int V, long long F, int H, int W,
                                                 double near_z, int cull_backfaces,
                                                 int perspective_correct,
                                                 unsigned long long* zbuffer) {
    rasterize_zbuffer_impl<double>(verts, faces, B, V, F, H, W, near_z, cull_backfaces,
                                   perspective_correct, zbuffer);
}
extern "C" __global__ void rasterize_resolve_f32(const float* verts, const long long* faces,
                                                 int B, int V, int H, int W,
                                                 int perspective_correct,
                                                 const unsigned long long* zbuffer,
                                                 long long* face_index, float* bary,
                                                 float* depth) {
    rasterize_resolve_impl<float>(verts, faces, B, V, H, W, perspective_correct, zbuffer,
                                  face_index, bary, depth);
}
extern "C" __global__ void rasterize_resolve_f64(const double* verts, const long long* faces,
                                                 int B, int V, int H, int W,
                                                 int perspective_correct,
                                                 const unsigned long long* zbuffer,
                                                 long long* face_index, double* bary,
                                                 double* depth) {
    rasterize_resolve_impl<double>(verts, faces, B, V, H, W, perspective_correct, zbuffer,
                                   face_index, bary, depth);
}

FL_HOST_LAUNCHER(rasterize_zbuffer_f32)
FL_HOST_LAUNCHER(rasterize_zbuffer_f64)
FL_HOST_LAUNCHER(rasterize_resolve_f32)
FL_HOST_LAUNCHER(rasterize_resolve_f64)
