// The thin layer between the kernel bodies and the machine that runs them: CUDA under
// __CUDACC__, the host execution layer of tests/cpp/cuda_host otherwise (Note [host
// execution layer] there). The kernel bodies (*.cuh beside this file) use only what is
// declared here for thread and block indices, shared memory, barriers, atomics and warp
// primitives, so the cuda_host test suite runs the same source nvcc compiles. Under nvcc
// every function is a forced-inline wrapper of one builtin: the generated code is that
// of the builtins.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)

#include <cub/block/block_scan.cuh>

// Declares a block-shared variable of type T (an array type through an alias).
#define SOFTSIGN_SHARED(T, name) __shared__ T name

namespace softsign::ops::dev {

constexpr unsigned kFullMask = 0xffffffffu;

__device__ __forceinline__ int thread_index() { return threadIdx.x; }
__device__ __forceinline__ int block_index() { return blockIdx.x; }
__device__ __forceinline__ void sync_block() { __syncthreads(); }
// Lanes of the (fully converged) warp holding the same value as this lane.
__device__ __forceinline__ unsigned match_any(unsigned value) {
  return __match_any_sync(kFullMask, value);
}
__device__ __forceinline__ unsigned ballot(bool predicate) {
  return __ballot_sync(kFullMask, predicate);
}
__device__ __forceinline__ int popcount(unsigned mask) { return __popc(mask); }
// Index of the lowest set bit of a nonzero mask.
__device__ __forceinline__ int lowest_lane(unsigned mask) { return __ffs(mask) - 1; }
template <typename T>
__device__ __forceinline__ T atomic_add(T* address, T value) {
  return atomicAdd(address, value);
}
// Reports elements a kernel read from the model (a counter on the host, nothing here).
__device__ __forceinline__ void note_reads(int64_t) {}

// Exclusive prefix sum over the kThreads threads of a block: CUB's BlockScan on the GPU.
template <typename T, int kThreads>
struct BlockExclusiveSum {
  using Scan = cub::BlockScan<T, kThreads>;
  using TempStorage = typename Scan::TempStorage;
  __device__ __forceinline__ T operator()(TempStorage& temp, T value) const {
    T out;
    Scan(temp).ExclusiveSum(value, out);
    return out;
  }
};

}  // namespace softsign::ops::dev

#else  // the host execution layer

#include <cmath>

#include "cuda_host/runtime.h"

#define SOFTSIGN_SHARED(T, name) \
  T& name = *static_cast<T*>(::softsign::cuda_host::shared_bytes(sizeof(T), alignof(T)))

namespace softsign::ops::dev {

constexpr unsigned kFullMask = 0xffffffffu;

inline int thread_index() { return cuda_host::thread_index(); }
inline int block_index() { return cuda_host::block_index(); }
inline void sync_block() { cuda_host::sync_block(); }
inline unsigned match_any(unsigned value) { return cuda_host::match_any(value); }
inline unsigned ballot(bool predicate) { return cuda_host::ballot(predicate); }
inline int popcount(unsigned mask) { return __builtin_popcount(mask); }
inline int lowest_lane(unsigned mask) { return __builtin_ctz(mask); }
template <typename T>
T atomic_add(T* address, T value) {
  cuda_host::note_atomic(address);
  const T old = *address;
  *address = old + value;
  return old;
}
inline void note_reads(int64_t elements) { cuda_host::note_reads(elements); }

// The host layer's stand-in for CUB's BlockScan: the same contract (every thread of the
// block calls it, the storage is block-shared), written plainly.
template <typename T, int kThreads>
struct BlockExclusiveSum {
  struct TempStorage {
    T values[kThreads];
  };
  T operator()(TempStorage& temp, T value) const {
    const int t = thread_index();
    temp.values[t] = value;
    sync_block();
    T sum = T(0);
    for (int i = 0; i < t; ++i) sum += temp.values[i];
    sync_block();  // the storage may be reused right after
    return sum;
  }
};

}  // namespace softsign::ops::dev

#endif
