// The launch planner of the chunked multi-tensor kernels: which tensors and chunks go into
// which launch, and the metadata each launch carries. Plain C++ with no CUDA dependency,
// so it is unit-tested on its own (tests/cpp/launch_plan_test.cpp) and shared by the GPU
// launch and the host execution layer.
//
// One launch covers many tensors, each cut into fixed-size chunks, one chunk per block.
// Written here rather than included from ATen/native/cuda/MultiTensorApply.cuh, which is
// internal and changes between torch releases.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace softsign::ops::multi_tensor {

constexpr int kBlockSize = 512;
constexpr int kILP = 4;

// The three limits of a launch, template parameters so that the tests can make them tiny
// and reach every relaunch path with small tensors; the defaults are the GPU's. kTensors
// 0 means by depth: 64 tensors for depth <= 2, 48 beyond.
template <int64_t kChunk = 65536, int kBlocks = 320, int kTensors = 0>
struct Limits {
  static_assert(kChunk > 0 && kChunk % kILP == 0,
                "a multiple of kILP: chunks keep the base alignment");
  static_assert(kBlocks > 0 && kTensors >= 0 && kTensors <= 256,
                "block_to_tensor holds a tensor slot in one byte");
  static constexpr int64_t kChunkSize = kChunk;
  static constexpr int kMaxBlocks = kBlocks;
  static constexpr int max_tensors(int depth) {
    return kTensors > 0 ? kTensors : (depth <= 2 ? 64 : 48);
  }
};
using DefaultLimits = Limits<>;

// Passed by value as a kernel argument: launch copies it, so the host may refill it for
// the next launch right away.
template <int depth, typename L = DefaultLimits>
struct TensorListMeta {
  static constexpr int kMaxTensors = L::max_tensors(depth);
  void* addresses[depth][kMaxTensors];
  int64_t numel[kMaxTensors];
  unsigned char block_to_tensor[L::kMaxBlocks];
  int block_to_chunk[L::kMaxBlocks];
};
// Sized so the metadata plus an op's few scalars stay under the 4 KB kernel-argument
// limit that every supported CUDA version and GPU guarantees.
static_assert(sizeof(TensorListMeta<2>) <= 3200 && sizeof(TensorListMeta<3>) <= 3200,
              "metadata must leave room for the op within the 4 KB argument limit");

// Fills metadata for tensors given by their `depth` base addresses and element count
// (zero-element tensors are skipped) and calls launch(meta, blocks) whenever a launch is
// full and once at the end; no call when nothing is left. A tensor whose chunks do not fit
// in one launch continues in the next one as its slot 0.
template <int depth, typename L, typename Launch>
void plan(const std::vector<std::array<void*, depth>>& addresses,
          const std::vector<int64_t>& numels, Launch&& launch) {
  using Meta = TensorListMeta<depth, L>;
  Meta meta{};
  int tensors = 0;
  int blocks = 0;
  for (std::size_t i = 0; i < numels.size(); ++i) {
    const int64_t numel = numels[i];
    if (numel == 0) continue;
    for (int d = 0; d < depth; ++d) meta.addresses[d][tensors] = addresses[i][d];
    meta.numel[tensors] = numel;
    ++tensors;
    const int64_t chunks = (numel + L::kChunkSize - 1) / L::kChunkSize;
    for (int64_t c = 0; c < chunks; ++c) {
      meta.block_to_tensor[blocks] = static_cast<unsigned char>(tensors - 1);
      meta.block_to_chunk[blocks] = static_cast<int>(c);
      ++blocks;
      const bool last_chunk = c == chunks - 1;
      if (blocks == L::kMaxBlocks || (tensors == Meta::kMaxTensors && last_chunk)) {
        launch(static_cast<const Meta&>(meta), blocks);
        blocks = 0;
        if (last_chunk) {
          tensors = 0;
        } else {
          for (int d = 0; d < depth; ++d) meta.addresses[d][0] = meta.addresses[d][tensors - 1];
          meta.numel[0] = numel;
          tensors = 1;
        }
      }
    }
  }
  if (blocks > 0) launch(static_cast<const Meta&>(meta), blocks);
}

}  // namespace softsign::ops::multi_tensor
