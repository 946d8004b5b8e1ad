// The launch planner on its own (launch_plan.h): every chunk of every nonempty tensor is
// covered exactly once, no launch exceeds its limits, and a tensor continued in the next
// launch keeps its address and size.
#include "launch_plan.h"

#include <gtest/gtest.h>

#include <map>
#include <utility>
#include <vector>

namespace mt = softsign::ops::multi_tensor;

namespace {

using Tiny = mt::Limits<8, 5, 3>;

struct Launch {
  int blocks;
  std::vector<std::pair<int, int>> chunks;  // (tensor index, chunk) per block
};

// Plans tensors of the given sizes (tensor i lives at address 0x1000 * (i + 1)) and
// returns the launches, decoded back to tensor indices.
template <int depth, typename L>
std::vector<Launch> plan_sizes(const std::vector<int64_t>& sizes) {
  std::vector<std::array<void*, depth>> addresses(sizes.size());
  for (size_t i = 0; i < sizes.size(); ++i) {
    for (int d = 0; d < depth; ++d) {
      addresses[i][d] = reinterpret_cast<void*>(0x1000 * (i + 1) + 0x100 * d);
    }
  }
  std::vector<Launch> launches;
  mt::plan<depth, L>(addresses, sizes, [&](const mt::TensorListMeta<depth, L>& meta, int blocks) {
    EXPECT_GT(blocks, 0);
    EXPECT_LE(blocks, L::kMaxBlocks);
    Launch l{blocks, {}};
    for (int b = 0; b < blocks; ++b) {
      const int slot = meta.block_to_tensor[b];
      EXPECT_LT(slot, L::max_tensors(depth));
      const auto tensor = (reinterpret_cast<uintptr_t>(meta.addresses[0][slot]) / 0x1000) - 1;
      for (int d = 0; d < depth; ++d) {
        EXPECT_EQ(reinterpret_cast<uintptr_t>(meta.addresses[d][slot]),
                  0x1000 * (tensor + 1) + 0x100 * d);
      }
      EXPECT_EQ(meta.numel[slot], sizes[tensor]);
      l.chunks.emplace_back(static_cast<int>(tensor), meta.block_to_chunk[b]);
    }
    launches.push_back(std::move(l));
  });
  return launches;
}

template <int depth, typename L>
void expect_exact_cover(const std::vector<int64_t>& sizes) {
  std::map<std::pair<int, int>, int> seen;
  for (const Launch& l : plan_sizes<depth, L>(sizes)) {
    for (const auto& c : l.chunks) ++seen[c];
  }
  size_t expected = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    const int64_t chunks = (sizes[i] + L::kChunkSize - 1) / L::kChunkSize;
    for (int64_t c = 0; c < chunks; ++c) {
      EXPECT_EQ((seen[{static_cast<int>(i), static_cast<int>(c)}]), 1)
          << "tensor " << i << " chunk " << c;
      ++expected;
    }
  }
  EXPECT_EQ(seen.size(), expected);
}

}  // namespace

TEST(LaunchPlan, NothingToLaunch) {
  EXPECT_TRUE((plan_sizes<2, Tiny>({})).empty());
  EXPECT_TRUE((plan_sizes<2, Tiny>({0, 0, 0})).empty());
}

TEST(LaunchPlan, DefaultsAreTheGpuLimits) {
  EXPECT_EQ(mt::DefaultLimits::kChunkSize, 65536);
  EXPECT_EQ(mt::DefaultLimits::kMaxBlocks, 320);
  EXPECT_EQ(mt::DefaultLimits::max_tensors(1), 64);
  EXPECT_EQ(mt::DefaultLimits::max_tensors(2), 64);
  EXPECT_EQ(mt::DefaultLimits::max_tensors(3), 48);
}

TEST(LaunchPlan, TensorLimitStartsANewLaunch) {
  // Three tensors of one chunk fill the tensor slots: the fourth goes to a second launch.
  const auto launches = plan_sizes<2, Tiny>({8, 1, 0, 7, 2});
  ASSERT_EQ(launches.size(), 2u);
  EXPECT_EQ(launches[0].blocks, 3);
  EXPECT_EQ(launches[1].blocks, 1);
  EXPECT_EQ(launches[1].chunks[0], std::make_pair(4, 0));
}

TEST(LaunchPlan, BlockLimitContinuesATensor) {
  // 12 chunks of one tensor: 5 + 5 + 2 blocks, the tensor carried over as slot 0.
  const auto launches = plan_sizes<3, Tiny>({12 * 8 - 3});
  ASSERT_EQ(launches.size(), 3u);
  EXPECT_EQ(launches[0].blocks, 5);
  EXPECT_EQ(launches[1].blocks, 5);
  EXPECT_EQ(launches[2].blocks, 2);
  EXPECT_EQ(launches[1].chunks[0], std::make_pair(0, 5));
  EXPECT_EQ(launches[2].chunks[1], std::make_pair(0, 11));
}

TEST(LaunchPlan, EveryChunkExactlyOnce) {
  expect_exact_cover<1, Tiny>({1, 8, 9, 0, 40, 3, 17, 1, 1, 1, 64});
  expect_exact_cover<2, Tiny>({5, 41, 0, 0, 2, 8, 8, 8, 8, 100});
  expect_exact_cover<3, mt::Limits<4, 2, 1>>({1, 2, 3, 4, 5, 9, 13});
  expect_exact_cover<3, mt::DefaultLimits>(std::vector<int64_t>(100, 70000));
}
