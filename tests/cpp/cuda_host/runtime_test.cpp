// The host execution layer itself (Note [host execution layer]): the semantics the kernel
// tests rely on, and the failures it must report instead of hiding.
#include "cuda_host/runtime.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <vector>

#include "device_api.cuh"

namespace ch = softsign::cuda_host;
namespace dev = softsign::ops::dev;

TEST(HostLayer, EveryThreadReachesTheBarrierBeforeAnyPasses) {
  std::vector<int> before(3 * 64, 0);
  std::vector<int> seen_after(3 * 64, -1);
  int arrived = 0;
  ch::launch(3, 64, [&] {
    const int i = dev::block_index() * 64 + dev::thread_index();
    ++arrived;
    before[i] = 1;
    dev::sync_block();
    // Every thread of this block has arrived: the count is a multiple of 64.
    seen_after[i] = arrived % 64;
  });
  for (int v : seen_after) EXPECT_EQ(v, 0);
}

TEST(HostLayer, SharedMemoryIsPerBlockAndUninitialized) {
  using Arr = int[4];
  std::vector<int> got(2 * 8);
  ch::launch(2, 8, [&] {
    SOFTSIGN_SHARED(Arr, s);
    const int t = dev::thread_index();
    if (t == 0) {
      // A kernel that forgets to initialize reads the poison, not zeros.
      EXPECT_NE(s[0], 0);
      for (int k = 0; k < 4; ++k) s[k] = dev::block_index() * 10 + k;
    }
    dev::sync_block();
    got[dev::block_index() * 8 + t] = s[t % 4];
  });
  for (int b = 0; b < 2; ++b) {
    for (int t = 0; t < 8; ++t) EXPECT_EQ(got[b * 8 + t], b * 10 + t % 4);
  }
}

TEST(HostLayer, WarpPrimitivesSeeAll32Lanes) {
  std::vector<unsigned> match(64), vote(64);
  ch::launch(1, 64, [&] {
    const int t = dev::thread_index();
    match[t] = dev::match_any(static_cast<unsigned>(t % 3));
    vote[t] = dev::ballot(t % 2 == 0);
  });
  for (int t = 0; t < 64; ++t) {
    unsigned expected = 0;
    for (int l = 0; l < 32; ++l) {
      if (((t / 32) * 32 + l) % 3 == t % 3) expected |= 1u << l;
    }
    EXPECT_EQ(match[t], expected) << t;
    EXPECT_EQ(vote[t], 0x55555555u);
  }
}

TEST(HostLayer, CollidingAtomicsAreCounted) {
  unsigned counter[2] = {0, 0};
  ch::reset_counters();
  // One step: 32 lanes on one address collide; the second warp splits over two.
  ch::launch(1, 64, [&] {
    const int t = dev::thread_index();
    dev::atomic_add(&counter[t < 32 ? 0 : t % 2], 1u);
  });
  EXPECT_EQ(counter[0] + counter[1], 64u);
  EXPECT_EQ(ch::counters().atomics, 64);
  EXPECT_EQ(ch::counters().colliding_atomics, 64);
  ch::reset_counters();
  ch::launch(1, 32, [&] { dev::atomic_add(&counter[0], 1u); });
  ch::launch(1, 32, [&] {
    if (dev::thread_index() == 0) dev::atomic_add(&counter[0], 1u);
  });
  EXPECT_EQ(ch::counters().atomics, 33);
  EXPECT_EQ(ch::counters().colliding_atomics, 32);
}

TEST(HostLayer, AThreadMissingFromABarrierIsADeadlock) {
  EXPECT_THROW(ch::launch(1, 64,
                          [&] {
                            if (dev::thread_index() == 5) return;
                            dev::sync_block();
                          }),
               std::runtime_error);
  EXPECT_THROW(ch::launch(1, 64,
                          [&] {
                            if (dev::thread_index() == 40) return;
                            dev::match_any(1u);
                          }),
               std::runtime_error);
}

TEST(HostLayer, ExceptionsReachTheLauncher) {
  EXPECT_THROW(ch::launch(2, 32,
                          [&] {
                            if (dev::block_index() == 1 && dev::thread_index() == 3) {
                              throw std::invalid_argument("from a thread");
                            }
                          }),
               std::invalid_argument);
  // The layer is usable again afterwards.
  int n = 0;
  ch::launch(1, 32, [&] { ++n; });
  EXPECT_EQ(n, 32);
}
