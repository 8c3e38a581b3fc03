// facelab_cuda.h — shared header for every kernel in kernels/*.cu.
//
// The same .cu source is compiled two ways:
//   1. by NVRTC/nvcc for the GPU (CuPy RawModule), where this header only adds small helpers;
//   2. by the system C++ compiler for the host with -DFACELAB_HOST, where this header emulates
//      the CUDA execution model so the tests can run the kernels' logic on the CPU via ctypes:
//      - __global__/__device__ become plain functions; threadIdx/blockIdx/blockDim/gridDim are
//        globals that the generated launcher sets while it runs the grid's threads one after
//        another, each to completion;
//      - atomicAdd/atomicMin/atomicMax/atomicExch are plain read-modify-writes (exact, since
//        one thread runs at a time);
//      - shared memory and __syncthreads are NOT supported (do not use them in facelab kernels).
//
// Thread order. On a GPU the order in which threads (and their atomics) run is unspecified, so
// a kernel is only correct if its result does not depend on it. The host launcher therefore
// runs threads in a shuffled order given by the caller (fl_launch.seed): blocks in a
// pseudo-random order, and inside each block the threads in a pseudo-random order (a fresh
// shuffle per block); fl_launch.reverse = 1 runs exactly the reverse of that order.
// facelab/kernel_launch.py runs every emulated grid twice, in the order and in its reverse, so
// every pair of threads runs once in each relative order, and requires the same results: a
// last-writer-wins store, or a depth test and face id written separately (the race that the
// rasterizer's packed 64-bit depth|face-id atomicMin prevents; with one thread at a time it
// goes wrong where depths tie, e.g. coplanar faces), then shows up as a mismatch.
// What this cannot show: a lost update from two threads interleaving inside one
// read-modify-write (each emulated thread runs to completion) — use atomics for those.
//
// Float atomicAdd. Summation order changes float rounding, so for buffers that the Python
// side declares as atomicAdd accumulators ("sum"), the launcher records per element the number
// of additions and the sum of |added value|, from which kernel_launch.py bounds the legitimate
// difference between two orders (recursive-summation error bound; see _sum_bound there).
//
// Each kernel file declares, after its kernels, one host launcher per kernel:
//   FL_HOST_LAUNCHER(kernel_name)
// which (host build only) defines, from the kernel's own parameter list,
//   extern "C" void host_kernel_name(const fl_launch* launch, void** args);
//   extern "C" const char* host_kernel_name_signature();   // e.g. "const f32*,i64*,i32,f32"
// args holds one pointer per kernel parameter, pointing at its value (the cuLaunchKernel
// convention); the signature lets the Python side check its declaration against the kernel.
// In the GPU build the macro expands to nothing.
#pragma once

#ifdef FACELAB_HOST
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

struct fl_dim3 { unsigned int x, y, z; };
static fl_dim3 threadIdx, blockIdx, blockDim, gridDim;

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict

// One float atomicAdd accumulator watched during a launch: per element of [base, base + n
// elements of elem_size bytes), count[i] += 1 and abs_sum[i] += |v| for every atomicAdd(v).
struct fl_sum_watch {
    void* base;
    unsigned long long n;
    unsigned long long elem_size;
    double* abs_sum;
    unsigned long long* count;
};

// Launch configuration; the layout is mirrored by FlLaunch in facelab/kernel_launch.py.
struct fl_launch {
    unsigned int grid[3];
    unsigned int block[3];
    unsigned long long seed;  // thread order: see "Thread order" above
    int reverse;              // 1: run exactly the reverse of the seed's order
    int n_watch;              // number of entries of watch in use (at most 8)
    fl_sum_watch watch[8];
};

static const fl_launch* fl_current_launch = nullptr;

template <typename T>
static inline void fl_note_add(T* addr, T v) {
    if (fl_current_launch == nullptr) return;
    for (int w = 0; w < fl_current_launch->n_watch; ++w) {
        const fl_sum_watch& sw = fl_current_launch->watch[w];
        const char* p = reinterpret_cast<const char*>(addr);
        const char* b = static_cast<const char*>(sw.base);
        if (sw.elem_size == sizeof(T) && p >= b && p < b + sw.n * sw.elem_size) {
            const unsigned long long i = (unsigned long long)(p - b) / sizeof(T);
            sw.abs_sum[i] += std::fabs((double)v);
            sw.count[i] += 1;
            return;
        }
    }
}

static inline float atomicAdd(float* addr, float v) {
    fl_note_add(addr, v); float old = *addr; *addr = old + v; return old;
}
static inline double atomicAdd(double* addr, double v) {
    fl_note_add(addr, v); double old = *addr; *addr = old + v; return old;
}
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

// ---- parameter kinds, as spelled by facelab/kernel_launch.py ("f32", "const i64*", ...)
template <typename T> struct fl_kind;  // no definition: unsupported parameter types fail to build
template <> struct fl_kind<float> { static constexpr const char* name = "f32"; };
template <> struct fl_kind<double> { static constexpr const char* name = "f64"; };
template <> struct fl_kind<int> { static constexpr const char* name = "i32"; };
template <> struct fl_kind<long long> { static constexpr const char* name = "i64"; };
template <> struct fl_kind<unsigned long long> { static constexpr const char* name = "u64"; };
template <typename T> struct fl_param { static std::string name() { return fl_kind<T>::name; } };
template <typename T> struct fl_param<T*> {
    static std::string name() { return std::string(fl_kind<T>::name) + "*"; }
};
template <typename T> struct fl_param<const T*> {
    static std::string name() { return std::string("const ") + fl_kind<T>::name + "*"; }
};

template <typename... A>
static std::string fl_signature(void (*)(A...)) {
    std::string out;
    for (const std::string& s : {std::string(), fl_param<A>::name()...}) {
        if (s.empty()) continue;
        if (!out.empty()) out += ",";
        out += s;
    }
    return out;
}

// ---- shuffled grid order
static inline unsigned long long fl_splitmix64(unsigned long long* state) {
    unsigned long long z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// A pseudo-random permutation of 0..n-1 (Fisher-Yates) from the given seed.
static inline std::vector<unsigned int> fl_permutation(unsigned int n, unsigned long long seed) {
    std::vector<unsigned int> p(n);
    for (unsigned int i = 0; i < n; ++i) p[i] = i;
    unsigned long long state = seed;
    for (unsigned int i = n; i > 1; --i) std::swap(p[i - 1], p[fl_splitmix64(&state) % i]);
    return p;
}

template <typename... A, std::size_t... I>
static void fl_run_grid(void (*kernel)(A...), const fl_launch* launch, void** args,
                        std::index_sequence<I...>) {
    const unsigned int gx = launch->grid[0], gy = launch->grid[1], gz = launch->grid[2];
    const unsigned int bx = launch->block[0], by = launch->block[1], bz = launch->block[2];
    gridDim = {gx, gy, gz};
    blockDim = {bx, by, bz};
    const unsigned int n_blocks = gx * gy * gz, n_threads = bx * by * bz;
    const std::vector<unsigned int> blocks = fl_permutation(n_blocks, launch->seed);
    fl_current_launch = launch;
    for (unsigned int q = 0; q < n_blocks; ++q) {
        const unsigned int blk = blocks[launch->reverse ? n_blocks - 1 - q : q];
        blockIdx = {blk % gx, (blk / gx) % gy, blk / (gx * gy)};
        const std::vector<unsigned int> threads =
            fl_permutation(n_threads, launch->seed ^ (0xD1B54A32D192ED03ull * (blk + 1ull)));
        for (unsigned int r = 0; r < n_threads; ++r) {
            const unsigned int thr = threads[launch->reverse ? n_threads - 1 - r : r];
            threadIdx = {thr % bx, (thr / bx) % by, thr / (bx * by)};
            kernel(*static_cast<A*>(args[I])...);
        }
    }
    fl_current_launch = nullptr;
}

template <typename... A>
static void fl_host_launch(void (*kernel)(A...), const fl_launch* launch, void** args) {
    fl_run_grid(kernel, launch, args, std::index_sequence_for<A...>{});
}

#define FL_HOST_LAUNCHER(kernel)                                                            \
    extern "C" void host_##kernel(const fl_launch* launch, void** args) {                  \
        fl_host_launch(kernel, launch, args);                                               \
    }                                                                                       \
    extern "C" const char* host_##kernel##_signature() {                                    \
        static const std::string s = fl_signature(kernel);                                  \
        return s.c_str();                                                                   \
    }
#else
#define FL_HOST_LAUNCHER(kernel)
#endif

// Index of this thread in a 1-D grid-stride loop: for (long i = fl_global_index(); i < n; i += fl_grid_stride())
__device__ __forceinline__ long long fl_global_index() {
    return (long long)blockIdx.x * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ long long fl_grid_stride() {
    return (long long)blockDim.x * gridDim.x;
}
