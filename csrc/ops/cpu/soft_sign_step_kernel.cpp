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
#error "compile with CPU_CAPABILITY defined (DEFAULT, AVX2 or AVX512; see CMakeLists.txt)"
#endif

namespace softsign::ops::CPU_CAPABILITY {

// Note [fast tanh]
// tanh of float32 lanes within 2 ulp (checked in test_ops.py), for the soft phase.
// Sleef's tanhf (1 ulp) costs about 12x its expf here, and made the soft phase 5-7x the
// copy floor. Above |x| = 0.625, tanh(x) = 1 - 2 / (exp(2|x|) + 1) with the sign of x;
// tanh >= 0.55 there, so the subtraction loses nothing. Below, x + x^3 q(x^2), where q is
// a degree-4 fit of (tanh(x) - x) / x^3 that minimizes the relative error (0.85 ulp in
// float32). The exp is inlined (exp_vec): a call to Sleef's would make the compiler spill
// every vector register of the step loop around it, each element. 2|x| is capped at 40,
// where tanh is 1 in float32 already (from |x| = 9.1); NaN stays NaN. 1.37 ulp at most
// over all float32 inputs (measured exhaustively, AVX2 and AVX-512 builds).
// float64 keeps Sleef's (or libm's) tanh.

// exp of float32 lanes in [0, 40] within 1 ulp: 2^k e^r with k = round(x / ln 2), r =
// x - k ln 2 (ln 2 in two parts, so r is exact to float32), e^r by its Taylor polynomial
// of degree 7 on |r| <= ln(2) / 2 (truncation error at most (ln 2 / 2)^8 / 8!, about
// 2^-27.5), 2^k built in the exponent bits. x must not be NaN (converting NaN to an
// integer is undefined): tanh_vec never passes one.
inline at::vec::Vectorized<float> exp_vec(at::vec::Vectorized<float> x) {
  using Vec = at::vec::Vectorized<float>;
  const Vec k = (x * Vec(1.44269504088896341f)).round();
  const Vec r = (x - k * Vec(0.693359375f)) - k * Vec(-2.12194440e-4f);
  // Explicit FMAs: the same rounding in every build, with contraction or without.
  using at::vec::fmadd;
  Vec q(1.f / 5040.f);
  q = fmadd(q, r, Vec(1.f / 720.f));
  q = fmadd(q, r, Vec(1.f / 120.f));
  q = fmadd(q, r, Vec(1.f / 24.f));
  q = fmadd(q, r, Vec(1.f / 6.f));
  q = fmadd(q, r, Vec(0.5f));
  q = fmadd(q, r, Vec(1.f));
  q = fmadd(q, r, Vec(1.f));
  // (k + 127) << 23 as the bits of a float: 2^k for k in [0, 58].
  const auto bits = at::vec::convert_to_int_of_same_size((k + Vec(127.f)) * Vec(8388608.f));
  return q * at::vec::cast<float>(bits);
}

template <typename T>
inline at::vec::Vectorized<T> tanh_vec(at::vec::Vectorized<T> x) {
  if constexpr (!std::is_same_v<T, float>) {
    return x.tanh();
  } else {
    using Vec = at::vec::Vectorized<float>;
    const Vec a = x.abs();
    const Vec one(1.f);
    // 2|x| capped at 40, NaN lanes too (the compare is false for them): their result comes
    // from the polynomial below, which keeps the NaN.
    const Vec two_a = a + a;
    const Vec big =
        one - Vec(2.f) / (exp_vec(Vec::blendv(Vec(40.f), two_a, two_a < Vec(40.f))) + one);
    const Vec x2 = x * x;
    using at::vec::fmadd;
    Vec q(-0.005793759599328041f);
    q = fmadd(q, x2, Vec(0.02072027698159218f));
    q = fmadd(q, x2, Vec(-0.05376540496945381f));
    q = fmadd(q, x2, Vec(0.13331766426563263f));
    q = fmadd(q, x2, Vec(-0.33333295583724976f));
    const Vec small = fmadd(x * x2, q, x);
    // The sign bit of x onto big (which is >= 0 or NaN).
    const Vec sign_bit(-0.f);
    const Vec signed_big = (big & ~sign_bit) | (x & sign_bit);
    return Vec::blendv(small, signed_big, a >= Vec(0.625f));
  }
}

namespace {

// a * b rounded on its own. The fit must select among the directions the step applies,
// and the fit's kernel and soft_sign_direction round every product of the momentum update
// alone (Note [soft-sign element math]); a compiler that contracted it into an FMA here
// would round differently. The empty asm makes the product opaque, so it cannot be
// contracted, and emits no instruction; the rest of the step may still use FMAs (the
// DEFAULT build, which may run where FMA is the native multiply-add, is compiled without
// contraction instead: see CMakeLists.txt).
template <typename T>
inline at::vec::Vectorized<T> product(const at::vec::Vectorized<T>& a,
                                      const at::vec::Vectorized<T>& b) {
  const at::vec::Vectorized<T> r = a * b;
#if defined(CPU_CAPABILITY_AVX512)
  std::conditional_t<std::is_same_v<T, double>, __m512d, __m512> raw = r;
  asm("" : "+v"(raw));
  return at::vec::Vectorized<T>(raw);
#elif defined(CPU_CAPABILITY_AVX2)
  std::conditional_t<std::is_same_v<T, double>, __m256d, __m256> raw = r;
  asm("" : "+x"(raw));
  return at::vec::Vectorized<T>(raw);
#else
  return r;
#endif
}

constexpr int64_t kChunk = 1 << 15;  // elements per parallel task
constexpr int64_t kBlock = 256;      // elements converted to opmath at a time

struct Chunk {
  int64_t tensor;
  int64_t begin;
  int64_t end;
};

// The vector arithmetic of Note [momentum rules]: every product rounded alone.
struct VecMath {
  template <typename Vec>
  static Vec mul(const Vec& a, const Vec& b) {
    return product(a, b);
  }
  template <typename Vec>
  static Vec add(const Vec& a, const Vec& b) {
    return a + b;
  }
};

// The call's scalars as vectors, made once per parallel task rather than per element.
template <typename opmath_t, typename Rule>
struct Lanes {
  using Vec = at::vec::Vectorized<opmath_t>;
  Coeffs<Vec> rule;
  Vec lr, decay, tau, scale, flip;
  bool scaled;

  explicit Lanes(const CpuStepArgs& a)
      : rule(coeffs_as<Vec>(Rule::template coeffs<opmath_t>(a.step))),
        lr(static_cast<opmath_t>(a.lr)),
        decay(Vec(1) - lr * Vec(static_cast<opmath_t>(a.step.weight_decay))),
        tau(static_cast<opmath_t>(a.tau)),
        scale(static_cast<opmath_t>(a.grad_scale)),
        flip(a.step.maximize ? opmath_t(-0.0) : opmath_t(0)),  // maximize: the sign bit
        // Dividing by 1 is exact: skipping it changes no bit and saves a slow division.
        scaled(static_cast<opmath_t>(a.grad_scale) != opmath_t(1)) {}
};

// One vector of elements, per Note [soft-sign element math]: the new parameter, and the
// new buffer in buf (which holds the old one, or zeros where the form reads none).
template <bool kSoft, typename Form, typename opmath_t>
inline at::vec::Vectorized<opmath_t> step_vec(at::vec::Vectorized<opmath_t> p,
                                              at::vec::Vectorized<opmath_t> g,
                                              at::vec::Vectorized<opmath_t>& buf,
                                              const Lanes<opmath_t, typename Form::Rule>& c) {
  using Vec = at::vec::Vectorized<opmath_t>;
  if (c.scaled) g = g / c.scale;
  g = g ^ c.flip;
  const Vec old = buf;
  const Vec d = Form::template direction<VecMath>(g, old, &buf, c.rule);
  Vec u;
  if constexpr (kSoft) {
    u = tanh_vec(c.tau * d);
  } else {
    const Vec one(opmath_t(1)), zero(opmath_t(0));
    u = ((d > zero) & one) - ((d < zero) & one);
  }
  return p * c.decay - c.lr * u;
}

// Every element goes through the vector code, the tail of a block too (loaded and padded
// with zeros up to a whole vector): a scalar tail would round differently (std::tanh is
// not the vector tanh, and libm's float64 tanh not Sleef's), so an element's result
// would depend on where its tensor starts and ends, and a sharded parameter (FSDP2) would
// not step exactly as the whole one.
template <bool kSoft, typename Form, typename scalar_t, typename opmath_t>
void step_block(scalar_t* p, const scalar_t* g, scalar_t* b, int64_t len,
                const Lanes<opmath_t, typename Form::Rule>& c) {
  using Vec = at::vec::Vectorized<opmath_t>;
  // A call passes buffers exactly when its rule keeps them (check_soft_sign_step).
  const bool read_buf = Form::kReads && b != nullptr;
  if constexpr (std::is_same_v<scalar_t, opmath_t>) {
    // float32 and float64: whole vectors with plain loads and stores, then the tail with
    // partial ones (zeros in the unused lanes).
    const int64_t whole = len - len % Vec::size();
    int64_t i = 0;
    for (; i < whole; i += Vec::size()) {
      Vec bv = read_buf ? Vec::loadu(b + i) : Vec(opmath_t(0));
      step_vec<kSoft, Form>(Vec::loadu(p + i), Vec::loadu(g + i), bv, c).store(p + i);
      if (b != nullptr) bv.store(b + i);
    }
    if (i < len) {
      const int64_t n = len - i;
      Vec bv = read_buf ? Vec::loadu(b + i, n) : Vec(opmath_t(0));
      step_vec<kSoft, Form>(Vec::loadu(p + i, n), Vec::loadu(g + i, n), bv, c).store(p + i, n);
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
      Vec bi = Vec::loadu(bv + i);
      step_vec<kSoft, Form>(Vec::loadu(pv + i), Vec::loadu(gv + i), bi, c).store(pv + i);
      bi.store(bv + i);
    }
    for (int64_t j = 0; j < len; ++j) {
      p[j] = static_cast<scalar_t>(pv[j]);
      if (b != nullptr) b[j] = static_cast<scalar_t>(bv[j]);
    }
  }
}

template <bool kSoft, typename Form, typename scalar_t>
void step_bucket(const std::vector<size_t>& members, at::TensorList params, at::TensorList grads,
                 at::TensorList bufs, const CpuStepArgs& args) {
  std::vector<Chunk> chunks;
  for (const size_t t : members) {
    const int64_t n = params[t].numel();
    for (int64_t b = 0; b < n; b += kChunk) {
      chunks.push_back({static_cast<int64_t>(t), b, std::min(n, b + kChunk)});
    }
  }
  at::parallel_for(0, static_cast<int64_t>(chunks.size()), 1, [&](int64_t lo, int64_t hi) {
    const Lanes<at::opmath_type<scalar_t>, typename Form::Rule> c(args);
    for (int64_t k = lo; k < hi; ++k) {
      const Chunk& ch = chunks[k];
      auto* p = params[ch.tensor].data_ptr<scalar_t>();
      const auto* g = grads[ch.tensor].const_data_ptr<scalar_t>();
      auto* b = bufs.empty() ? nullptr : bufs[ch.tensor].data_ptr<scalar_t>();
      for (int64_t i = ch.begin; i < ch.end; i += kBlock) {
        step_block<kSoft, Form>(p + i, g + i, b ? b + i : nullptr, std::min(kBlock, ch.end - i), c);
      }
    }
  });
}

template <bool kSoft, typename scalar_t>
void step_bucket(const std::vector<size_t>& members, at::TensorList params, at::TensorList grads,
                 at::TensorList bufs, const CpuStepArgs& args) {
  with_form(args.step, [&](auto form) {
    step_bucket<kSoft, decltype(form), scalar_t>(members, params, grads, bufs, args);
  });
}

}  // namespace

void soft_sign_step_kernel(at::TensorList params, at::TensorList grads,
                           at::TensorList momentum_buffers, const CpuStepArgs& args) {
  // Params of a group may mix float32 and bfloat16: one dispatch per dtype.
  for (const auto& [dtype, members] : group_by_dtype(params)) {
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, dtype, "soft_sign_step_cpu", [&] {
      if (args.soft) {
        step_bucket<true, scalar_t>(members, params, grads, momentum_buffers, args);
      } else {
        step_bucket<false, scalar_t>(members, params, grads, momentum_buffers, args);
      }
    });
  }
}

}  // namespace softsign::ops::CPU_CAPABILITY
