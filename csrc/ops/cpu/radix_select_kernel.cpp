// Body of the CPU radix-selection kernels (radix_select_kernel.h), built once per CPU
// capability. Each block of elements is done in two loops: the first turns grads and
// buffers into keys with no branch on the element, so the compiler vectorizes it; the
// second, scalar, drops NaN and the keys off the prefix and counts or collects the rest.
// Built with -ffp-contract=off: the directions must round as soft_sign_direction's (no
// fused multiply-add), or the selected median could differ from it by an ulp.
#include "cpu/radix_select_kernel.h"

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <utility>

#ifndef CPU_CAPABILITY
#error "compile with CPU_CAPABILITY defined (DEFAULT, AVX2 or AVX512; see CMakeLists.txt)"
#endif

namespace softsign::ops::CPU_CAPABILITY {
namespace {

constexpr int64_t kChunk = 1 << 16;  // elements per parallel task
constexpr int64_t kBlock = 512;      // elements per key block (on the stack)

struct Chunk {
  int64_t tensor;
  int64_t begin;
  int64_t end;
};

std::vector<Chunk> chunks_of(at::TensorList tensors) {
  std::vector<Chunk> chunks;
  for (size_t t = 0; t < tensors.size(); ++t) {
    const int64_t n = tensors[t].numel();
    for (int64_t b = 0; b < n; b += kChunk) {
      chunks.push_back({static_cast<int64_t>(t), b, std::min(n, b + kChunk)});
    }
  }
  return chunks;
}

// Keys of a block: stage 0 the order-preserving key of d (32 or 64 bits); stage 1 that of
// |d - mu| in float64. NaN statistics give NaN keys (is_nan_key). d is formed by the call's
// form of Note [momentum rules], from the buffer where kRead, else from a zero buffer (the
// same arithmetic, signed zeros included, as the composite soft_sign_direction).
template <typename scalar_t, typename Key, int kStage, typename Form, bool kRead>
void keys_of_block(const scalar_t* g, const scalar_t* b, int64_t len, const RadixContext& c,
                   Key* keys) {
  using opmath_t = at::opmath_type<scalar_t>;
  const opmath_t scale = static_cast<opmath_t>(c.grad_scale);
  const opmath_t sign = c.step.maximize ? opmath_t(-1) : opmath_t(1);
  const Coeffs<opmath_t> rule = Form::Rule::template coeffs<opmath_t>(c.step);
  const double mu = c.mu;
  for (int64_t i = 0; i < len; ++i) {
    // Division by 1 and multiplication by +-1 are exact: no branch needed for either.
    const opmath_t gi = static_cast<opmath_t>(g[i]) / scale * sign;
    const opmath_t old = kRead ? static_cast<opmath_t>(b[i]) : opmath_t(0);
    const opmath_t d =
        Form::template direction<RoundedMath>(gi, old, static_cast<opmath_t*>(nullptr), rule);
    if constexpr (kStage == 1) {
      keys[i] = radix::key_of(std::fabs(static_cast<double>(d) - mu));
    } else if constexpr (std::is_same_v<Key, uint64_t>) {
      keys[i] = radix::key_of(static_cast<double>(d));
    } else {
      keys[i] = radix::key_of(static_cast<float>(d));
    }
  }
}

// NaN keys lie above the key of +inf or below that of -inf.
template <typename Key>
inline bool is_nan_key(Key key) {
  if constexpr (std::is_same_v<Key, uint64_t>) {
    return key > 0xfff0000000000000ull || key < 0x000fffffffffffffull;
  } else {
    return key > 0xff800000u || key < 0x007fffffu;
  }
}

// Calls visit(element, key) for every element of the chunk whose key's digits above
// this pass's equal the prefix (every element on pass 0), nan() per NaN on pass 0.
template <typename scalar_t, typename Key, int kStage, typename Form, bool kRead, typename Visit,
          typename Nan>
void visit_typed(const scalar_t* g, const scalar_t* b, int64_t n, const RadixContext& c,
                 Visit& visit, Nan& nan) {
  const bool check = c.spec.pass > 0;
  const int high = radix::digit_shift(c.spec) + c.spec.digit_bits;  // < key bits when check
  const Key prefix_high = check ? static_cast<Key>(c.prefix >> high) : Key(0);
  Key keys[kBlock];
  for (int64_t base = 0; base < n; base += kBlock) {
    const int64_t len = std::min(kBlock, n - base);
    keys_of_block<scalar_t, Key, kStage, Form, kRead>(g + base, b == nullptr ? nullptr : b + base,
                                                      len, c, keys);
    for (int64_t i = 0; i < len; ++i) {
      const Key key = keys[i];
      if (is_nan_key(key)) {
        if (!check) nan();
        continue;
      }
      if (check && static_cast<Key>(key >> high) != prefix_high) continue;
      visit(base + i, static_cast<uint64_t>(key));
    }
  }
}

template <typename Visit, typename Nan>
void visit_chunk(const at::Tensor& g, const at::Tensor* b, int64_t begin, int64_t len,
                 const RadixContext& c, Visit& visit, Nan& nan) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, g.scalar_type(), "radix_cpu", [&] {
    const scalar_t* gp = g.const_data_ptr<scalar_t>() + begin;
    const scalar_t* bp = b != nullptr ? b->const_data_ptr<scalar_t>() + begin : nullptr;
    auto run = [&](auto key_tag, auto stage_tag) {
      using Key = decltype(key_tag);
      constexpr int kStage = decltype(stage_tag)::value;
      with_form(c.step, [&](auto form) {
        using Form = decltype(form);
        if (bp != nullptr) {  // a call's buffers are read where its form reads any
          visit_typed<scalar_t, Key, kStage, Form, Form::kReads>(gp, bp, len, c, visit, nan);
        } else {
          visit_typed<scalar_t, Key, kStage, Form, false>(gp, bp, len, c, visit, nan);
        }
      });
    };
    if (c.spec.stage == 1) {
      run(uint64_t{}, std::integral_constant<int, 1>{});
    } else if (c.spec.key_bits == 64) {
      run(uint64_t{}, std::integral_constant<int, 0>{});
    } else {
      run(uint32_t{}, std::integral_constant<int, 0>{});
    }
  });
}

// Two interleaved histograms per thread: equal keys in a row (common: many directions
// share their top digits) would otherwise wait on each other's increment of one counter.
constexpr int kCopies = 2;

}  // namespace

void radix_histogram_kernel(at::TensorList grads, at::TensorList bufs, const RadixContext& c,
                            int64_t* hist) {
  const int64_t bins = int64_t{1} << c.spec.digit_bits;
  const std::vector<Chunk> chunks = chunks_of(grads);
  // 32-bit counts per thread and copy (half the cache of int64): a thread flushes them
  // into its int64 totals before 2^31 elements could have reached one counter.
  const int threads = at::get_num_threads();
  const size_t width = static_cast<size_t>(bins + 1);
  const size_t per_thread = kCopies * width;
  std::vector<uint32_t> local(threads * per_thread, 0);
  std::vector<int64_t> totals(threads * width, 0);
  std::vector<int64_t> pending(threads, 0);
  auto flush = [&](int t) {
    uint32_t* h = local.data() + t * per_thread;
    int64_t* tot = totals.data() + t * width;
    for (size_t k = 0; k < kCopies; ++k) {
      for (size_t i = 0; i < width; ++i) tot[i] += std::exchange(h[k * width + i], 0u);
    }
    pending[t] = 0;
  };
  const int shift = radix::digit_shift(c.spec);
  const uint64_t mask = (uint64_t{1} << c.spec.digit_bits) - 1;
  const int64_t stride = bins + 1;
  at::parallel_for(0, static_cast<int64_t>(chunks.size()), 1, [&](int64_t lo, int64_t hi) {
    const int t = at::get_thread_num();
    uint32_t* h = local.data() + t * per_thread;
    auto count = [&](int64_t e, uint64_t key) {
      ++h[(e & (kCopies - 1)) * stride + ((key >> shift) & mask)];
    };
    auto nan = [&] { ++h[bins]; };
    for (int64_t i = lo; i < hi; ++i) {
      const Chunk& ch = chunks[i];
      const int64_t len = ch.end - ch.begin;
      if (pending[t] + len >= (int64_t{1} << 31)) flush(t);
      pending[t] += len;
      visit_chunk(grads[ch.tensor], bufs.empty() ? nullptr : &bufs[ch.tensor], ch.begin, len, c,
                  count, nan);
    }
  });
  for (int t = 0; t < threads; ++t) flush(t);
  for (int t = 0; t < threads; ++t) {
    for (size_t i = 0; i < width; ++i) hist[i] += totals[t * width + i];
  }
}

void radix_collect_kernel(at::TensorList grads, at::TensorList bufs, const RadixContext& c,
                          const KeySink& sink) {
  constexpr int64_t kBuffer = 1024;
  auto claim = [&](const uint64_t* buf, int64_t len) {
    const int64_t at = sink.cursor->fetch_add(len);
    TORCH_CHECK(at + len <= sink.capacity,
                "softsign: internal error in the radix selection (more candidates than counted)");
    std::copy(buf, buf + len, sink.keys + at);
  };
  const std::vector<Chunk> chunks = chunks_of(grads);
  at::parallel_for(0, static_cast<int64_t>(chunks.size()), 1, [&](int64_t lo, int64_t hi) {
    uint64_t buf[kBuffer];
    int64_t held = 0;
    auto keep = [&](int64_t, uint64_t key) {
      buf[held++] = key;
      if (held == kBuffer) {
        claim(buf, held);
        held = 0;
      }
    };
    auto nan = [] {};
    for (int64_t i = lo; i < hi; ++i) {
      const Chunk& ch = chunks[i];
      visit_chunk(grads[ch.tensor], bufs.empty() ? nullptr : &bufs[ch.tensor], ch.begin,
                  ch.end - ch.begin, c, keep, nan);
    }
    if (held > 0) claim(buf, held);
  });
}

}  // namespace softsign::ops::CPU_CAPABILITY
