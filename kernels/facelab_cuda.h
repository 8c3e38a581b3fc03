// facelab_cuda.h — shared header for every kernel in kernels/*.cu.
//
// The same .cu source is compiled two ways:
//   1. by NVRTC/nvcc for the GPU (CuPy RawModule), where this header only adds small helpers;
//   2. by the system C++ compiler for the host with -DFACELAB_HOST, where this header emulates
//      the CUDA execution model so the tests can run the kernels' logic on the CPU via ctypes:
//      - __global__/__device__ become plain functions; threadIdx/blockIdx/blockDim/gridDim are
//        globals that the generated launcher sets while it loops over the grid sequentially;
//      - atomicAdd/atomicMin/atomicMax/atomicExch are plain read-modify-writes (sequential
//        execution makes them exact; races are therefore NOT detected here — kernels must be
//        race-free by construction, e.g. the rasterizer packs depth and face id into one 64-bit
//        word for atomicMin);
//      - shared memory and __syncthreads are NOT supported (do not use them in facelab kernels).
//
// Each kernel file declares, after its kernels, one host launcher per kernel:
//   FL_HOST_LAUNCHER(kernel_name, (const float* a, int n), (a, n))
// which (host build only) defines
//   extern "C" void host_kernel_name(unsigned gx, unsigned gy, unsigned gz,
//                                     unsigned bx, unsigned by, unsigned bz, const float* a, int n);
// and expands to nothing in the GPU build.
#pragma once

#ifdef FACELAB_HOST
#include <cmath>
#include <cstdint>
#include <cstring>

struct fl_dim3 { unsigned int x, y, z; };
static fl_dim3 threadIdx, blockIdx, blockDim, gridDim;

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict

static inline float atomicAdd(float* addr, float v) { float old = *addr; *addr = old + v; return old; }
static inline double atomicAdd(double* addr, double v) { double old = *addr; *addr = old + v; return old; }
static inline int atomicAdd(int* addr, int v) { int old = *addr; *addr = old + v; return old; }
static inline unsigned long long atomicMin(unsigned long long* addr, unsigned long long v) {
    unsigned long long old = *addr; if (v < old) *addr = v; return old;
}
static inline int atomicMin(int* addr, int v) { int old = *addr; if (v < old) *addr = v; return old; }
static inline int atomicMax(int* addr, int v) { int old = *addr; if (v > old) *addr = v; return old; }
static inline unsigned long long atomicExch(unsigned long long* addr, unsigned long long v) {
    unsigned long long old = *addr; *addr = v; return old;
}
static inline unsigned int __float_as_uint(float f) { unsigned int u; std::memcpy(&u, &f, 4); return u; }
static inline float __uint_as_float(unsigned int u) { float f; std::memcpy(&f, &u, 4); return f; }
static inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
static inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
using std::sqrt; using std::floor; using std::fabs; using std::fmin; using std::fmax;
using std::isfinite;
static inline float sqrtf_(float x) { return std::sqrt(x); }

#define FL_UNPAREN(...) __VA_ARGS__
#define FL_HOST_LAUNCHER(kernel, PARAMS, ARGS)                                              \
    extern "C" void host_##kernel(unsigned gx, unsigned gy, unsigned gz, unsigned bx,      \
                                  unsigned by, unsigned bz, FL_UNPAREN PARAMS) {           \
        gridDim = {gx, gy, gz};                                                             \
        blockDim = {bx, by, bz};                                                            \
        for (unsigned k = 0; k < gz; ++k)                                                   \
            for (unsigned j = 0; j < gy; ++j)                                               \
                for (unsigned i = 0; i < gx; ++i) {                                         \
                    blockIdx = {i, j, k};                                                   \
                    for (unsigned tz = 0; tz < bz; ++tz)                                    \
                        for (unsigned ty = 0; ty < by; ++ty)                                \
                            for (unsigned tx = 0; tx < bx; ++tx) {                          \
                                threadIdx = {tx, ty, tz};                                   \
                                kernel ARGS;                                                \
                            }                                                               \
                }                                                                           \
    }
#else
#define FL_HOST_LAUNCHER(kernel, PARAMS, ARGS)
#endif

// Index of this thread in a 1-D grid-stride loop: for (long i = fl_global_index(); i < n; i += fl_grid_stride())
__device__ __forceinline__ long long fl_global_index() {
    return (long long)blockIdx.x * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ long long fl_grid_stride() {
    return (long long)blockDim.x * gridDim.x;
}
