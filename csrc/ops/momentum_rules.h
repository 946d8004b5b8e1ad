// Note [momentum rules]
// How an element-wise optimizer forms its direction d from the gradient g (already
// unscaled, and negated for maximize) and the old value of its buffer, and the buffer's new
// value. Each rule is written once, here, over any lane type, and every kernel calls it:
//   - the CPU selection kernel on float / double;
//   - the CPU step kernel on at::vec::Vectorized;
//   - the composite soft_sign_direction on whole tensors (coefficients as doubles).
// Arithmetic goes through the caller's Math (Math::mul, Math::add), so each caller keeps its
// own way of rounding every product alone (Note [soft-sign element math]): the fit must
// select among exactly the directions the step applies.
//
// The CUDA kernels fold the rules into one formula instead (momentum_direction, at the end:
// the reason is there), which the cuda_host suite holds to the CPU op.
//
// with_form() picks a call's rule and its compile-time variant once per call, so that the
// kernels loop over straight-line code (one loop that branched on the options per vector
// ran at half speed on data in cache).
//
// The ops name a rule by a string (`momentum_rule`) and pass its own coefficients as a list
// (`rule_coeffs`), beside the buffer's momentum and dampening that every rule shares: the
// schemas, the op API, the drivers and the Python layer carry them through without knowing
// any rule. Adding a rule touches this file alone among the kernels' sources: its entry in
// kRuleSpecs (name, coefficient count, Nesterov), its struct, its branch in with_form and
// its case in momentum_direction. The cuda_host suite runs every entry of kRuleSpecs
// (tests/cpp/cuda_host/rule_cases.h), so a new rule is tested on both devices unasked.
#pragma once

#include <c10/macros/Macros.h>

#include <cmath>
#include <cstdint>
#include <type_traits>

namespace softsign::ops {

// The rules the ops know (kRuleSpecs names them).
enum class Rule : int8_t { kHeavyBall, kLion };

// What the op layer checks of a rule: its name in the ops' `momentum_rule`, how many
// `rule_coeffs` it takes, and whether it has a Nesterov form. Every rule but the heavy ball
// keeps a buffer whatever the momentum (StepScalars::buffered); the heavy ball with
// momentum 0 is the plain rule, d = g, with none.
struct RuleSpec {
  const char* name;
  Rule id;
  int coeffs;
  bool nesterov;
};
inline constexpr RuleSpec kRuleSpecs[] = {
    {"heavy_ball", Rule::kHeavyBall, 0, true},
    {"lion", Rule::kLion, 1, false},
};
// The most coefficients a rule takes; raising it grows every kernel's arguments (check
// cuda_kernel_budget).
inline constexpr int kMaxRuleCoeffs = 1;
constexpr bool rule_coeffs_fit() {
  for (const RuleSpec& r : kRuleSpecs) {
    if (r.coeffs > kMaxRuleCoeffs) return false;
  }
  return true;
}
static_assert(rule_coeffs_fit(), "a rule takes more coefficients than kMaxRuleCoeffs");

// Plain-number options of one fused call, as the kernels see them.
// Kept in double so float64 params get the exact options; float32 math rounds them once.
struct StepScalars {
  double momentum;
  double dampening;
  double weight_decay;
  bool nesterov;
  bool maximize;
  bool first_step;
  Rule rule = Rule::kHeavyBall;
  double coeffs[kMaxRuleCoeffs] = {};  // the rule's own (rule_coeffs)

  // Whether the rule keeps a buffer per param (and the call passes one).
  C10_HOST_DEVICE bool buffered() const { return rule != Rule::kHeavyBall || momentum != 0.0; }
};

// Products and sums rounded one at a time, as the ATen ops of soft_sign_direction and the
// CPU kernels round them (the selection kernel is built without contraction, the step
// kernel keeps its products opaque: product() there): nvcc would otherwise contract
// a * b + c into one FMA, and the fit would not select among the directions the step
// applies. The _rn intrinsics are never contracted.
template <bool kMul, typename T>
C10_HOST_DEVICE inline T rounded(T a, T b) {
#if defined(__CUDA_ARCH__)
  if constexpr (std::is_same_v<T, double>) {
    return kMul ? __dmul_rn(a, b) : __dadd_rn(a, b);
  } else {
    return kMul ? __fmul_rn(a, b) : __fadd_rn(a, b);
  }
#else
  return kMul ? a * b : a + b;
#endif
}
template <typename T>
C10_HOST_DEVICE inline T mul_rn(T a, T b) {
  return rounded<true>(a, b);
}
template <typename T>
C10_HOST_DEVICE inline T add_rn(T a, T b) {
  return rounded<false>(a, b);
}

// mul_rn / add_rn as a Math of Note [momentum rules] (the CPU selection kernel's).
struct RoundedMath {
  template <typename T>
  C10_HOST_DEVICE static T mul(T a, T b) {
    return mul_rn(a, b);
  }
  template <typename T>
  C10_HOST_DEVICE static T add(T a, T b) {
    return add_rn(a, b);
  }
};

// A rule's coefficients in the caller's lane type, formed once per call (coeffs<T>) in the
// opmath type T, as the math rounds them (float32: 1 - float(x), not float(1 - x)).
template <typename T>
struct Coeffs {
  T v[4];
  const T& operator[](int i) const { return v[i]; }
};

// Each coefficient converted to another lane type (a vector of it, or a double).
template <typename To, typename From>
Coeffs<To> coeffs_as(const Coeffs<From>& c) {
  return {{To(c[0]), To(c[1]), To(c[2]), To(c[3])}};
}

// A rule's direction: d from g and old (zero where the rule reads no buffer, the kernel's
// job), and, when buf is not null, the buffer's new value in *buf. `first` (the buffers'
// first step) and `nesterov` are std::bool_constant (with_form), so each form compiles to
// its own straight-line code.

// No momentum: d = g, and no buffer.
struct PlainRule {
  static constexpr bool kBuffered = false;
  template <typename T>
  static Coeffs<T> coeffs(const StepScalars&) {
    return {{T(0), T(0), T(0), T(0)}};
  }
  template <typename Math, typename V, typename C, typename B1, typename B2>
  static V direction(const V& g, const V&, V*, const Coeffs<C>&, B1, B2) {
    return g;
  }
};

// torch.optim.SGD's heavy ball (Signum, SoftSignum): buf = m buf + (1 - dampening) g, and
// d = buf, or g + m buf with Nesterov. A buffer's first step sets buf = g.
struct HeavyBallRule {
  static constexpr bool kBuffered = true;
  enum { kMomentum, kUndamped };
  template <typename T>
  static Coeffs<T> coeffs(const StepScalars& s) {
    return {{static_cast<T>(s.momentum), T(1) - static_cast<T>(s.dampening), T(0), T(0)}};
  }
  template <typename Math, typename V, typename C, typename B1, typename B2>
  static V direction(const V& g, const V& old, V* buf, const Coeffs<C>& c, B1 first, B2 nesterov) {
    const V moved = first ? g : Math::add(Math::mul(c[kMomentum], old), Math::mul(c[kUndamped], g));
    if (buf != nullptr) *buf = moved;
    return nesterov ? Math::add(g, Math::mul(c[kMomentum], moved)) : moved;
  }
};

// Note [lion rule]: Lion (Lion, SoftLion) interpolates its direction from the buffer
// *before* the buffer's update, d = b1 buf + (1 - b1) g, and the buffer then moves as an
// average with b2 (the call's momentum; its dampening is b2 too): buf = b2 buf + (1 - b2) g.
// The buffer starts at zero, so on its first step it is not read (taken as 0) rather than
// set to g. Lion always keeps a buffer, even when b2 = 0. Its one rule coefficient is b1.
struct LionRule {
  static constexpr bool kBuffered = true;
  enum { kBeta1, kKeep1, kBeta2, kKeep2 };
  template <typename T>
  static Coeffs<T> coeffs(const StepScalars& s) {
    return {{static_cast<T>(s.coeffs[0]), T(1) - static_cast<T>(s.coeffs[0]),
             static_cast<T>(s.momentum), T(1) - static_cast<T>(s.dampening)}};
  }
  template <typename Math, typename V, typename C, typename B1, typename B2>
  static V direction(const V& g, const V& old, V* buf, const Coeffs<C>& c, B1, B2) {
    V d = Math::add(Math::mul(c[kBeta1], old), Math::mul(c[kKeep1], g));
    if (buf != nullptr) *buf = Math::add(Math::mul(c[kBeta2], old), Math::mul(c[kKeep2], g));
    return d;
  }
};

// A call's rule with its variant: whether this is the buffers' first step, and Nesterov.
template <typename R, bool kFirstStep, bool kNesterovStep>
struct Form {
  using Rule = R;
  static constexpr bool kFirst = kFirstStep;
  static constexpr bool kNesterov = kNesterovStep;
  // Whether the old buffer value is read: never on a first step, when the buffer may be
  // uninitialized memory.
  static constexpr bool kReads = R::kBuffered && !kFirstStep;

  template <typename Math, typename V, typename C>
  static V direction(const V& g, const V& old, V* buf, const Coeffs<C>& c) {
    return R::template direction<Math>(g, old, buf, c, std::bool_constant<kFirst>{},
                                       std::bool_constant<kNesterov>{});
  }
};

// Calls f(Form<...>{}) for the call's form, and returns what f returns.
template <typename F>
decltype(auto) with_form(const StepScalars& s, F&& f) {
  if (s.rule == Rule::kLion) {
    return s.first_step ? f(Form<LionRule, true, false>{}) : f(Form<LionRule, false, false>{});
  }
  if (s.momentum == 0.0) return f(Form<PlainRule, false, false>{});
  if (s.first_step) {
    return s.nesterov ? f(Form<HeavyBallRule, true, true>{})
                      : f(Form<HeavyBallRule, true, false>{});
  }
  return s.nesterov ? f(Form<HeavyBallRule, false, true>{})
                    : f(Form<HeavyBallRule, false, false>{});
}

// Momentum update of one element in opmath type T (float32, float64 for double params), as
// the CUDA kernels form it: returns the direction d and writes the new buffer. g is already
// unscaled and sign-flipped for maximize. The same math as the rules of Note [momentum
// rules], folded into one formula: the kernels decide the rule per element, and each rule
// as its own code path made the histogram kernels spill at ptxas's register
// target (tests/cpp/kernel_budget.py). The cuda_host suite holds it to the CPU op bit for
// bit, rule by rule.
template <typename T>
C10_HOST_DEVICE inline T momentum_direction(T g, T& buf, const StepScalars& s) {
  if (!s.buffered()) return g;
  const T m = static_cast<T>(s.momentum);
  const T undamped = T(1) - static_cast<T>(s.dampening);
  // One buffer formula for both rules keeps the kernels' registers few: the heavy ball's
  // first step then discards it (its buffer starts at g), Lion's starts from a zero buffer.
  const T old = s.first_step ? T(0) : buf;
  const T moved = add_rn(mul_rn(m, old), mul_rn(undamped, g));
  // Two rules: "not the heavy ball" is Lion. Testing it as buffered() does (rule != 0),
  // rather than rule == kLion, keeps one predicate live: the other spilled at 40 registers.
  static_assert(sizeof(kRuleSpecs) / sizeof(kRuleSpecs[0]) == 2,
                "momentum_direction: fold the new rule into this formula");
  if (s.rule != Rule::kHeavyBall) {
    const T b1 = static_cast<T>(s.coeffs[0]);
    buf = moved;
    return add_rn(mul_rn(b1, old), mul_rn(T(1) - b1, g));
  }
  buf = s.first_step ? g : moved;
  return s.nesterov ? add_rn(g, mul_rn(m, buf)) : buf;
}

}  // namespace softsign::ops
