// CPU kernel body of softsign::soft_sign_step_, built once per CPU capability (see
// soft_sign_step_kernel.h). All tensors of a call are cut into chunks and the chunk list
// is run by one at::parallel_for, so thousands of tiny tensors cost one parallel region,
// not one each. Math per Note [soft-sign element math].
#include "cpu/soft_sign_step_kernel.h"

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/vec.h>

#include <algorithm>
#include <type_traits>
#include <vector>

#include "dtype_buckets.h"

#ifndef CPU_CAPABILITY
#error "compile with CPU_CAPABILITY defined (DEFAULT or AVX2)"
#endif

namespace softsign::ops::CPU_CAPABILITY {

// Note [fast tanh]
// tanh of float32 lanes within 2 ulp (checked in test_ops.py), for the soft phase.
// Sleef's tanhf (1 ulp) costs about 12x its expf here, and made the soft phase 5-7x the
// copy floor. Above |x| = 0.625, tanh(x) = 1 - 2 / (exp(2|x|) + 1) with the sign of x;
// tanh >= 0.55 there, so the subtraction loses nothing. Below, x + x^3 q(x^2), where q is
// a degree-4 fit of (tanh(x) - x) / x^3 that minimizes the relative error (0.85 ulp in
// float32). exp overflows to inf for large |x|, which gives exactly 1; NaN stays NaN.
// float64 keeps Sleef's (or libm's) tanh.
template <typename T>
inline at::vec::Vectorized<T> tanh_vec(at::vec::Vectorized<T> x) {
  if constexpr (!std::is_same_v<T, float>) {
    return x.tanh();
  } else {
    using Vec = at::vec::Vectorized<float>;
    const Vec a = x.abs();
    const Vec one(1.f);
    const Vec big = one - Vec(2.f) / ((a + a).exp() + one);
    const Vec x2 = x * x;
    Vec q(-0.005793759599328041f);
    q = q * x2 + Vec(0.02072027698159218f);
    q = q * x2 + Vec(-0.05376540496945381f);
    q = q * x2 + Vec(0.13331766426563263f);
    q = q * x2 + Vec(-0.33333295583724976f);
    const Vec small = (x * x2) * q + x;
    // The sign bit of x onto big (which is >= 0 or NaN).
    const Vec sign_bit(-0.f);
    const Vec signed_big = (big & ~sign_bit) | (x & sign_bit);
    return Vec::blendv(signed_big, small, a < Vec(0.625f));
  }
}

// Vectorized overload of soft_sign (the scalar template's bool arithmetic does not
// apply to lane masks): sign via masks, tanh per Note [fast tanh].
template <typename T>
inline at::vec::Vectorized<T> soft_sign(at::vec::Vectorized<T> d, bool soft,
                                        at::vec::Vectorized<T> tau) {
  using Vec = at::vec::Vectorized<T>;
  if (soft) return tanh_vec(tau * d);
  const Vec one(T(1)), zero(T(0));
  return ((d > zero) & one) - ((d < zero) & one);
}
// The scalar template of soft_sign_step.h, which the overload above would otherwise hide.
using ::softsign::ops::soft_sign;

namespace {

constexpr int64_t kChunk = 1 << 15;  // elements per parallel task
constexpr int64_t kBlock = 256;      // elements converted to opmath at a time

struct Chunk {
  int64_t tensor;
  int64_t begin;
  int64_t end;
};

template <typename opmath_t>
struct Scalars {
  StepScalars step;
  opmath_t lr;
  opmath_t grad_scale;
  bool soft;
  opmath_t tau;
};

// Every element goes through the vector code, the tail of a block too (loaded and padded
// with zeros up to a whole vector): a scalar tail would round differently (the compiler
// contracts it into FMAs, and std::tanh is not Sleef's tanh), so an element's result
// would depend on where its tensor starts and ends, and a sharded parameter (FSDP2) would
// not step exactly as the whole one.
template <typename opmath_t>
inline void step_vec(at::vec::Vectorized<opmath_t> g, at::vec::Vectorized<opmath_t>& buf,
                     at::vec::Vectorized<opmath_t>& p, const Scalars<opmath_t>& s) {
  using Vec = at::vec::Vectorized<opmath_t>;
  // Dividing by 1 is exact: skipping it changes no bit and saves a slow vector division.
  if (s.grad_scale != opmath_t(1)) g = g / Vec(s.grad_scale);
  if (s.step.maximize) g = g.neg();
  const Vec d = momentum_direction(g, buf, s.step);
  p = apply_update(p, soft_sign(d, s.soft, Vec(s.tau)), Vec(s.lr),
                   Vec(static_cast<opmath_t>(s.step.weight_decay)));
}

// float32 and float64: vectors straight from and to memory, the tail with partial loads
// and stores (zeros in the unused lanes).
template <typename scalar_t, typename opmath_t>
void step_block(scalar_t* p, const scalar_t* g, scalar_t* b, int64_t len,
                const Scalars<opmath_t>& s) {
  using Vec = at::vec::Vectorized<opmath_t>;
  const bool read_buf = b != nullptr && !s.step.first_step;
  if constexpr (std::is_same_v<scalar_t, opmath_t>) {
    for (int64_t i = 0; i < len; i += Vec::size()) {
      const int64_t n = std::min<int64_t>(Vec::size(), len - i);
      Vec pv = Vec::loadu(p + i, n);
      Vec bv = read_buf ? Vec::loadu(b + i, n) : Vec(opmath_t(0));
      step_vec(Vec::loadu(g + i, n), bv, pv, s);
      pv.store(p + i, n);
      if (b != nullptr) bv.store(b + i, n);
    }
  } else {
    // Reduced precision: convert a block to opmath arrays, step them, convert back.
    static_assert(kBlock % Vec::size() == 0, "blocks hold whole vectors");
    opmath_t pv[kBlock], gv[kBlock], bv[kBlock];
    for (int64_t i = 0; i < len; ++i) {
      pv[i] = static_cast<opmath_t>(p[i]);
      gv[i] = static_cast<opmath_t>(g[i]);
      bv[i] = read_buf ? static_cast<opmath_t>(b[i]) : opmath_t(0);
    }
    const int64_t padded = (len + Vec::size() - 1) / Vec::size() * Vec::size();
    std::fill(pv + len, pv + padded, opmath_t(0));
    std::fill(gv + len, gv + padded, opmath_t(0));
    std::fill(bv + len, bv + padded, opmath_t(0));
    for (int64_t i = 0; i < padded; i += Vec::size()) {
      Vec pi = Vec::loadu(pv + i), bi = Vec::loadu(bv + i);
      step_vec(Vec::loadu(gv + i), bi, pi, s);
      pi.store(pv + i);
      bi.store(bv + i);
    }
    for (int64_t j = 0; j < len; ++j) {
      p[j] = static_cast<scalar_t>(pv[j]);
      if (b != nullptr) b[j] = static_cast<scalar_t>(bv[j]);
    }
  }
}

template <typename scalar_t>
void step_bucket(const std::vector<size_t>& members, at::TensorList params, at::TensorList grads,
                 at::TensorList bufs, const Scalars<at::opmath_type<scalar_t>>& s) {
  std::vector<Chunk> chunks;
  for (const size_t t : members) {
    const int64_t n = params[t].numel();
    for (int64_t b = 0; b < n; b += kChunk) {
      chunks.push_back({static_cast<int64_t>(t), b, std::min(n, b + kChunk)});
    }
  }
  at::parallel_for(0, static_cast<int64_t>(chunks.size()), 1, [&](int64_t lo, int64_t hi) {
    for (int64_t c = lo; c < hi; ++c) {
      const Chunk& ch = chunks[c];
      auto* p = params[ch.tensor].data_ptr<scalar_t>();
      const auto* g = grads[ch.tensor].const_data_ptr<scalar_t>();
      auto* b = bufs.empty() ? nullptr : bufs[ch.tensor].data_ptr<scalar_t>();
      for (int64_t i = ch.begin; i < ch.end; i += kBlock) {
        step_block(p + i, g + i, b ? b + i : nullptr, std::min(kBlock, ch.end - i), s);
      }
    }
  });
}

}  // namespace

void soft_sign_step_kernel(at::TensorList params, at::TensorList grads,
                           at::TensorList momentum_buffers, const CpuStepArgs& args) {
  // Params of a group may mix float32 and bfloat16: one dispatch per dtype.
  for (const auto& [dtype, members] : group_by_dtype(params)) {
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, dtype, "soft_sign_step_cpu", [&] {
      using opmath_t = at::opmath_type<scalar_t>;
      const Scalars<opmath_t> s{args.step, static_cast<opmath_t>(args.lr),
                                static_cast<opmath_t>(args.grad_scale), args.soft,
                                static_cast<opmath_t>(args.tau)};
      step_bucket<scalar_t>(members, params, grads, momentum_buffers, s);
    });
  }
}

}  // namespace softsign::ops::CPU_CAPABILITY
