// A small chunked multi-tensor launcher: one kernel launch covers many tensors, each cut
// into fixed-size chunks, one chunk per block. Written here rather than included from
// ATen/native/cuda/MultiTensorApply.cuh, which is internal and changes between torch
// releases.
#pragma once

#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>

#include <array>
#include <cstdint>
#include <vector>

namespace softsign::ops::multi_tensor {

constexpr int kBlockSize = 512;
constexpr int kILP = 4;
constexpr int64_t kChunkSize = 65536;  // a multiple of kILP: chunks keep the base alignment
constexpr int kMaxBlocks = 320;

// Sized so the metadata plus an op's few scalars stay under the 4 KB kernel-argument
// limit that every supported CUDA version and GPU guarantees.
constexpr int max_tensors(int depth) { return depth <= 2 ? 64 : 48; }

// Passed by value as a kernel argument: launch copies it, so the host may refill it
// for the next launch right away.
template <int depth>
struct TensorListMeta {
  static constexpr int kMaxTensors = max_tensors(depth);
  void* addresses[depth][kMaxTensors];
  int64_t numel[kMaxTensors];
  unsigned char block_to_tensor[kMaxBlocks];
  int block_to_chunk[kMaxBlocks];
};
static_assert(sizeof(TensorListMeta<2>) <= 3200 && sizeof(TensorListMeta<3>) <= 3200,
              "metadata must leave room for the op within the 4 KB argument limit");

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
template <int depth, typename Op>
__global__ void __launch_bounds__(kBlockSize)
    multi_tensor_kernel(const TensorListMeta<depth> meta, const Op op) {
  const int t = meta.block_to_tensor[blockIdx.x];
  const int64_t start = static_cast<int64_t>(meta.block_to_chunk[blockIdx.x]) * kChunkSize;
  const int64_t left = meta.numel[t] - start;
  void* ptrs[depth];
#pragma unroll
  for (int d = 0; d < depth; ++d) ptrs[d] = meta.addresses[d][t];
  op(ptrs, start, left < kChunkSize ? left : kChunkSize);
}

// Applies op over lists[0..depth) (equal length, lists[d][i] dense and shaped like
// lists[0][i]) on the current stream. Zero-element tensors are skipped; no launch
// happens when nothing is left.
template <int depth, typename Op>
void apply(const std::array<std::vector<at::Tensor>, depth>& lists, const Op& op) {
  constexpr int kMaxTensors = TensorListMeta<depth>::kMaxTensors;
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  TensorListMeta<depth> meta{};
  int tensors = 0;
  int blocks = 0;
  auto launch = [&] {
    multi_tensor_kernel<depth, Op><<<blocks, kBlockSize, 0, stream>>>(meta, op);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    blocks = 0;
  };
  for (size_t i = 0; i < lists[0].size(); ++i) {
    const int64_t numel = lists[0][i].numel();
    if (numel == 0) continue;
    for (int d = 0; d < depth; ++d) meta.addresses[d][tensors] = lists[d][i].data_ptr();
    meta.numel[tensors] = numel;
    ++tensors;
    const int64_t chunks = (numel + kChunkSize - 1) / kChunkSize;
    for (int64_t c = 0; c < chunks; ++c) {
      meta.block_to_tensor[blocks] = static_cast<unsigned char>(tensors - 1);
      meta.block_to_chunk[blocks] = static_cast<int>(c);
      ++blocks;
      const bool last_chunk = c == chunks - 1;
      if (blocks == kMaxBlocks || (tensors == kMaxTensors && last_chunk)) {
        launch();
        if (last_chunk) {
          tensors = 0;
        } else {
          // The tensor continues in the next launch: it becomes slot 0 there.
          for (int d = 0; d < depth; ++d) meta.addresses[d][0] = meta.addresses[d][tensors - 1];
          meta.numel[0] = numel;
          tensors = 1;
        }
      }
    }
  }
  if (blocks > 0) launch();
}

}  // namespace softsign::ops::multi_tensor
