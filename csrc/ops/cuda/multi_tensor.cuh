// The chunked multi-tensor kernels: the per-block body (device code, and host code for the
// cuda_host tests through device_api.cuh) and the launch of the planner's launches
// (launch_plan.h), a CUDA launch under __CUDACC__ and the host execution layer otherwise.
#pragma once

#include <ATen/ATen.h>

#include <array>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "device_api.cuh"
#include "launch_plan.h"

#if defined(__CUDACC__)
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#endif

namespace softsign::ops::multi_tensor {

// A vector of N elements loaded or stored with one instruction (or two for float64).
template <typename T, int N>
struct alignas(sizeof(T) * N) Vec {
  T val[N];
};

template <int N, typename T>
__device__ __forceinline__ bool is_aligned(const T* p) {
  return reinterpret_cast<uintptr_t>(p) % (sizeof(T) * N) == 0;
}

// op(ptrs, start, n): ptrs are the depth tensors' base pointers, [start, start + n) the
// chunk of this block (n >= 1).
template <int depth, typename L, typename Op>
__device__ __forceinline__ void multi_tensor_block(const TensorListMeta<depth, L>& meta,
                                                   const Op& op) {
  const int b = dev::block_index();
  const int t = meta.block_to_tensor[b];
  const int64_t start = static_cast<int64_t>(meta.block_to_chunk[b]) * L::kChunkSize;
  const int64_t left = meta.numel[t] - start;
  void* ptrs[depth];
#pragma unroll
  for (int d = 0; d < depth; ++d) ptrs[d] = meta.addresses[d][t];
  op(ptrs, start, left < L::kChunkSize ? left : L::kChunkSize);
}

// Ops computing in float64 may use every register a 512-thread block can have (one block
// per SM): under ptxas's default target for 512 threads they spill to local memory
// (tests/cpp/kernel_budget.py fails on any spill). The others keep the default target.
template <typename Op, typename = void>
struct WideMath : std::false_type {};
template <typename Op>
struct WideMath<Op, std::void_t<typename Op::opmath_t>>
    : std::bool_constant<std::is_same_v<typename Op::opmath_t, double>> {};

#if defined(__CUDACC__)
template <int depth, typename L, typename Op>
__global__ void __launch_bounds__(kBlockSize)
    multi_tensor_kernel(const TensorListMeta<depth, L> meta, const Op op) {
  multi_tensor_block<depth, L>(meta, op);
}
template <int depth, typename L, typename Op>
__global__ void __launch_bounds__(kBlockSize, 1)
    multi_tensor_kernel_wide(const TensorListMeta<depth, L> meta, const Op op) {
  multi_tensor_block<depth, L>(meta, op);
}
#endif

// Applies op over lists[0..depth) (equal length, lists[d][i] dense and shaped like
// lists[0][i]) on the current stream (CUDA) or the host execution layer.
template <int depth, typename L = DefaultLimits, typename Op>
void apply(const std::array<std::vector<at::Tensor>, depth>& lists, const Op& op) {
  std::vector<std::array<void*, depth>> addresses(lists[0].size());
  std::vector<int64_t> numels(lists[0].size());
  for (std::size_t i = 0; i < lists[0].size(); ++i) {
    numels[i] = lists[0][i].numel();
    for (int d = 0; d < depth; ++d) addresses[i][d] = numels[i] ? lists[d][i].data_ptr() : nullptr;
  }
#if defined(__CUDACC__)
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  plan<depth, L>(addresses, numels, [&](const TensorListMeta<depth, L>& meta, int blocks) {
    if constexpr (WideMath<Op>::value) {
      multi_tensor_kernel_wide<depth, L, Op><<<blocks, kBlockSize, 0, stream>>>(meta, op);
    } else {
      multi_tensor_kernel<depth, L, Op><<<blocks, kBlockSize, 0, stream>>>(meta, op);
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
#else
  plan<depth, L>(addresses, numels, [&](const TensorListMeta<depth, L>& meta, int blocks) {
    cuda_host::launch(blocks, kBlockSize, [&] { multi_tensor_block<depth, L>(meta, op); });
  });
#endif
}

#if defined(__CUDACC__)
template <int kThreads, typename Op>
__global__ void __launch_bounds__(kThreads) grid_kernel(const Op op) {
  op();
}
#endif

// Runs op() on every thread of `grid` blocks of kThreads threads (a kernel that is not
// per-chunk: a small driver step, or a pass over a buffer sized on the device).
template <int kThreads, typename Op>
void launch_grid(int grid, const Op& op) {
#if defined(__CUDACC__)
  grid_kernel<kThreads, Op><<<grid, kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(op);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
#else
  cuda_host::launch(grid, kThreads, [&] { op(); });
#endif
}

}  // namespace softsign::ops::multi_tensor
