// The host execution layer (Note [host execution layer] in runtime.h): fibers, barriers,
// warp collectives, shared memory and counted atomics.
#include "cuda_host/runtime.h"

#include <sys/mman.h>
#include <ucontext.h>

#include <algorithm>
#include <array>
#include <exception>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define SOFTSIGN_HOST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SOFTSIGN_HOST_ASAN 1
#endif
#endif
#if defined(SOFTSIGN_HOST_ASAN)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

namespace softsign::cuda_host {
namespace {

constexpr int kWarp = 32;
// ASan and UBSan frames are several times larger than plain ones; the kernel bodies
// themselves need a few KB.
constexpr std::size_t kStackSize = 256 * 1024;
constexpr std::size_t kSharedArena = 64 * 1024;  // above CUDA's 48 KB of static shared memory
constexpr unsigned char kSharedPoison = 0xA5;

enum class State { kReady, kBlockWait, kWarpWait, kDone };

// One mmap'ed stack per thread slot, reused by every launch.
struct Stack {
  void* base = nullptr;
  Stack() {
    base = mmap(nullptr, kStackSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) throw std::runtime_error("cuda_host: cannot map a fiber stack");
  }
  ~Stack() { munmap(base, kStackSize); }
  Stack(const Stack&) = delete;
  Stack& operator=(const Stack&) = delete;
};

struct Fiber {
  ucontext_t context;
  State state = State::kReady;
  int tid = 0;
  std::size_t shared_next = 0;  // index into the block's declaration list
  int64_t epoch = 0;            // warp collectives this lane has completed
  int64_t step = 0;             // atomics since then
  void* fake_stack = nullptr;   // ASan's bookkeeping of this fiber's stack
};

struct Block {
  int dim = 0;
  int index = 0;
  std::vector<Fiber> fibers;
  int current = -1;
  ucontext_t scheduler;
  const void* scheduler_bottom = nullptr;
  std::size_t scheduler_size = 0;
  int block_arrived = 0;
  std::vector<int> warp_arrived;
  std::vector<std::array<uint64_t, kWarp>> warp_slots;
  std::vector<unsigned char> shared;
  std::vector<std::pair<std::size_t, std::size_t>> declarations;  // offset, size
  std::size_t shared_used = 0;
  // (warp, epoch, step) -> addresses hit by the lanes at that step
  std::map<std::tuple<int, int64_t, int64_t>, std::vector<const void*>> atomics;
  const std::function<void()>* body = nullptr;
  std::exception_ptr error;
};

Counters g_counters;
std::vector<std::unique_ptr<Stack>> g_stacks;
Block* g_block = nullptr;

Block& block() {
  if (g_block == nullptr || g_block->current < 0) {
    throw std::logic_error("cuda_host: a device primitive was called outside launch()");
  }
  return *g_block;
}
Fiber& self() { return block().fibers[static_cast<std::size_t>(block().current)]; }

// Switches from the running fiber back to the scheduler; returns when resumed.
void yield() {
  Block& b = block();
  Fiber& f = self();
#if defined(SOFTSIGN_HOST_ASAN)
  __sanitizer_start_switch_fiber(&f.fake_stack, b.scheduler_bottom, b.scheduler_size);
#endif
  swapcontext(&f.context, &b.scheduler);
#if defined(SOFTSIGN_HOST_ASAN)
  __sanitizer_finish_switch_fiber(f.fake_stack, &b.scheduler_bottom, &b.scheduler_size);
#endif
}

void fiber_main() {
  Block& b = *g_block;
  Fiber& f = b.fibers[static_cast<std::size_t>(b.current)];
#if defined(SOFTSIGN_HOST_ASAN)
  __sanitizer_finish_switch_fiber(nullptr, &b.scheduler_bottom, &b.scheduler_size);
#endif
  try {
    (*b.body)();
  } catch (...) {
    if (!b.error) b.error = std::current_exception();
  }
  f.state = State::kDone;
#if defined(SOFTSIGN_HOST_ASAN)
  __sanitizer_start_switch_fiber(nullptr, b.scheduler_bottom, b.scheduler_size);
#endif
  swapcontext(&f.context, &b.scheduler);
}

void resume(Block& b, int i) {
  Fiber& f = b.fibers[static_cast<std::size_t>(i)];
  b.current = i;
  void* fake = nullptr;
#if defined(SOFTSIGN_HOST_ASAN)
  __sanitizer_start_switch_fiber(&fake, g_stacks[static_cast<std::size_t>(i)]->base, kStackSize);
#endif
  swapcontext(&b.scheduler, &f.context);
#if defined(SOFTSIGN_HOST_ASAN)
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
  b.current = -1;
}

std::string describe_deadlock(const Block& b) {
  int done = 0, at_block = 0, at_warp = 0;
  for (const Fiber& f : b.fibers) {
    done += f.state == State::kDone;
    at_block += f.state == State::kBlockWait;
    at_warp += f.state == State::kWarpWait;
  }
  return "cuda_host: deadlock in block " + std::to_string(b.index) + ": " +
         std::to_string(at_block) + " threads wait at sync_block, " + std::to_string(at_warp) +
         " at a warp collective, " + std::to_string(done) + " have returned (of " +
         std::to_string(b.dim) + ")";
}

void count_atomics(const Block& b) {
  for (const auto& [key, addresses] : b.atomics) {
    std::vector<const void*> sorted = addresses;
    std::sort(sorted.begin(), sorted.end());
    for (std::size_t i = 0; i < sorted.size();) {
      std::size_t j = i;
      while (j < sorted.size() && sorted[j] == sorted[i]) ++j;
      if (j - i > 1) g_counters.colliding_atomics += static_cast<int64_t>(j - i);
      i = j;
    }
  }
}

void run_block(Block& b) {
  b.fibers.assign(static_cast<std::size_t>(b.dim), Fiber{});
  b.block_arrived = 0;
  const int warps = (b.dim + kWarp - 1) / kWarp;
  b.warp_arrived.assign(static_cast<std::size_t>(warps), 0);
  b.warp_slots.assign(static_cast<std::size_t>(warps), {});
  b.declarations.clear();
  b.shared_used = 0;
#if defined(SOFTSIGN_HOST_ASAN)
  ASAN_UNPOISON_MEMORY_REGION(b.shared.data(), b.shared.size());
#endif
  std::fill(b.shared.begin(), b.shared.end(), kSharedPoison);
#if defined(SOFTSIGN_HOST_ASAN)
  ASAN_POISON_MEMORY_REGION(b.shared.data(), b.shared.size());
#endif
  b.atomics.clear();
  for (int i = 0; i < b.dim; ++i) {
    Fiber& f = b.fibers[static_cast<std::size_t>(i)];
    f.tid = i;
    getcontext(&f.context);
    f.context.uc_stack.ss_sp = g_stacks[static_cast<std::size_t>(i)]->base;
    f.context.uc_stack.ss_size = kStackSize;
    f.context.uc_link = nullptr;
    makecontext(&f.context, fiber_main, 0);
  }
  int done = 0;
  while (done < b.dim) {
    bool ran = false;
    done = 0;
    for (int i = 0; i < b.dim; ++i) {
      if (b.fibers[static_cast<std::size_t>(i)].state == State::kReady) {
        resume(b, i);
        ran = true;
      }
      done += b.fibers[static_cast<std::size_t>(i)].state == State::kDone;
    }
    if (!ran && done < b.dim) {
      if (b.error) std::rethrow_exception(b.error);
      throw std::runtime_error(describe_deadlock(b));
    }
  }
  if (b.error) std::rethrow_exception(b.error);
  count_atomics(b);
}

// Blocks until the `expected` threads selected by `member` have arrived at `arrived`.
template <typename Member>
void barrier(int& arrived, int expected, State wait_state, Member member) {
  Block& b = block();
  if (++arrived == expected) {
    arrived = 0;
    for (Fiber& f : b.fibers) {
      if (f.state == wait_state && member(f)) f.state = State::kReady;
    }
    return;
  }
  self().state = wait_state;
  yield();
}

// Every lane of the caller's warp deposits `value`; returns all of them.
std::array<uint64_t, kWarp> warp_exchange(uint64_t value) {
  Block& b = block();
  Fiber& f = self();
  const int warp = f.tid / kWarp;
  const int lanes = std::min(kWarp, b.dim - warp * kWarp);
  auto in_warp = [warp](const Fiber& other) { return other.tid / kWarp == warp; };
  int& arrived = b.warp_arrived[static_cast<std::size_t>(warp)];
  b.warp_slots[static_cast<std::size_t>(warp)][static_cast<std::size_t>(f.tid % kWarp)] = value;
  barrier(arrived, lanes, State::kWarpWait, in_warp);
  const std::array<uint64_t, kWarp> all = b.warp_slots[static_cast<std::size_t>(warp)];
  // A second barrier before anyone may deposit the next value.
  barrier(arrived, lanes, State::kWarpWait, in_warp);
  if (f.tid % kWarp == 0) ++g_counters.warp_collectives;
  ++f.epoch;
  f.step = 0;
  return all;
}

}  // namespace

Counters& counters() { return g_counters; }
void reset_counters() { g_counters = Counters{}; }

void launch(int grid, int block_dim, const std::function<void()>& body) {
  if (grid <= 0 || block_dim <= 0 || block_dim > 1024) {
    throw std::invalid_argument("cuda_host: invalid launch configuration");
  }
  if (g_block != nullptr) throw std::logic_error("cuda_host: launches do not nest");
  while (g_stacks.size() < static_cast<std::size_t>(block_dim)) {
    g_stacks.push_back(std::make_unique<Stack>());
  }
  Block b;
  b.dim = block_dim;
  b.body = &body;
  b.shared.assign(kSharedArena, kSharedPoison);
  g_block = &b;
  ++g_counters.launches;
  try {
    for (int i = 0; i < grid; ++i) {
      b.index = i;
      ++g_counters.blocks;
      run_block(b);
    }
  } catch (...) {
    g_block = nullptr;
#if defined(SOFTSIGN_HOST_ASAN)
    ASAN_UNPOISON_MEMORY_REGION(b.shared.data(), b.shared.size());
#endif
    throw;
  }
  g_block = nullptr;
#if defined(SOFTSIGN_HOST_ASAN)
  ASAN_UNPOISON_MEMORY_REGION(b.shared.data(), b.shared.size());
#endif
}

int thread_index() { return self().tid; }
int block_index() { return block().index; }
int block_dim() { return block().dim; }

void sync_block() {
  Block& b = block();
  const bool last = b.block_arrived + 1 == b.dim;
  barrier(b.block_arrived, b.dim, State::kBlockWait, [](const Fiber&) { return true; });
  if (last) ++g_counters.block_barriers;
}

unsigned match_any(uint64_t value) {
  const std::array<uint64_t, kWarp> all = warp_exchange(value);
  const int lanes = std::min(kWarp, block_dim() - (thread_index() / kWarp) * kWarp);
  unsigned mask = 0;
  for (int l = 0; l < lanes; ++l) {
    if (all[static_cast<std::size_t>(l)] == value) mask |= 1u << l;
  }
  return mask;
}

unsigned ballot(bool predicate) {
  const std::array<uint64_t, kWarp> all = warp_exchange(predicate ? 1 : 0);
  const int lanes = std::min(kWarp, block_dim() - (thread_index() / kWarp) * kWarp);
  unsigned mask = 0;
  for (int l = 0; l < lanes; ++l) {
    if (all[static_cast<std::size_t>(l)] != 0) mask |= 1u << l;
  }
  return mask;
}

void* shared_bytes(std::size_t size, std::size_t align) {
  Block& b = block();
  Fiber& f = self();
  if (f.shared_next == b.declarations.size()) {
    // The first thread to reach this declaration places it.
    const std::size_t offset = (b.shared_used + align - 1) / align * align;
    if (offset + size > b.shared.size()) {
      throw std::runtime_error("cuda_host: the block declares more shared memory than exists");
    }
    b.declarations.emplace_back(offset, size);
    b.shared_used = offset + size;
#if defined(SOFTSIGN_HOST_ASAN)
    ASAN_UNPOISON_MEMORY_REGION(b.shared.data() + offset, size);
#endif
  } else if (b.declarations[f.shared_next].second != size) {
    throw std::runtime_error("cuda_host: threads of a block declared different shared memory");
  }
  return b.shared.data() + b.declarations[f.shared_next++].first;
}

void note_atomic(const void* address) {
  Block& b = block();
  Fiber& f = self();
  ++g_counters.atomics;
  b.atomics[{f.tid / kWarp, f.epoch, f.step++}].push_back(address);
}

void note_reads(int64_t elements) { g_counters.elements_read += elements; }

}  // namespace softsign::cuda_host
