// Exact selection of the lower median and the MAD by radix passes over order-preserving
// integer keys (Note [radix selection]): shared by the CPU and CUDA histogram kernels of
// softsign::radix_select_histogram and the device-side driver in radix_select.cpp.
//
// Note [radix selection]
// The statistic is x = d, the post-momentum direction of every element (computed on the
// fly from grad and buffer by momentum_direction, exactly as the step kernels do, so no
// copy of d is ever made). Stage 0 selects the element of rank floor((n - 1) / 2) of x
// (the lower median mu); stage 1 the same rank of |x - mu| computed in float64 (the MAD).
// Each stage walks the key from its top digit down: pass p histograms digit p of the keys
// whose higher digits equal the prefix chosen so far; the driver then picks the bin that
// holds the wanted rank and extends the prefix (state on the device, no host read).
// A pass's histogram is a plain count per bin, so counts from several ranks can be summed
// (all-reduced) before the bin is picked: the hook for a sharded model.
// Histogram layout: (1 << digit_bits) counts, then the count of NaN values (pass 0 only;
// NaN values take no part in the selection and make the result NaN, as torch.median).
// State (int64 [6]): prefix and remaining rank of stage 0, the same of stage 1, and a NaN
// flag per stage: a NaN value makes both results NaN (as torch.median); an infinite median
// makes only the MAD NaN (|x - mu| is inf - inf for x = mu), not the median.
#pragma once

#include <c10/macros/Macros.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace softsign::ops::radix {

constexpr int kStateSize = 6;

// Digit width of the histograms: 16 bits on the CPU (few passes, per-thread histograms
// stay in L2), 8 on accelerators (the histogram fits in shared memory).
constexpr int kCpuDigitBits = 16;
constexpr int kDeviceDigitBits = 8;

// Passes of a stage: its keys (32 or 64 bits wide for stage 0, 64 for stage 1) a digit at
// a time.
C10_HOST_DEVICE constexpr int stage_passes(int stage, int key_bits, int digit_bits) {
  return (stage == 0 ? key_bits : 64) / digit_bits;
}

// Counts of one histogram: a bin per digit value, then the NaN count.
C10_HOST_DEVICE constexpr int histogram_size(int digit_bits) { return (1 << digit_bits) + 1; }

// The unsigned key type of a float type (float or double), and back.
template <typename F>
using key_type = std::conditional_t<sizeof(F) == 4, uint32_t, uint64_t>;
template <typename U>
using value_type = std::conditional_t<sizeof(U) == 4, float, double>;

// Bit reinterpretation between float and double and their keys, usable in host and device
// code (std::bit_cast is not, with nvcc; the device uses the reinterpreting intrinsics).
template <typename To, typename From>
C10_HOST_DEVICE inline To bit_cast(From v) {
  static_assert(sizeof(To) == sizeof(From), "bit_cast between types of one width");
#if defined(__CUDA_ARCH__)
  if constexpr (std::is_same_v<From, float>) {
    return __float_as_uint(v);
  } else if constexpr (std::is_same_v<From, double>) {
    return static_cast<uint64_t>(__double_as_longlong(v));
  } else if constexpr (std::is_same_v<To, float>) {
    return __uint_as_float(v);
  } else {
    return __longlong_as_double(static_cast<long long>(v));
  }
#else
  To out;
  std::memcpy(&out, &v, sizeof(out));
  return out;
#endif
}

// Order-preserving keys: a < b (as floats, -0 < +0) iff key(a) < key(b) (as unsigned):
// negative values have all bits flipped, the others only the sign bit. Written without a
// branch: the sign of the statistic is a coin flip, and a mispredicted branch per element
// costs more than the whole key.
template <typename F>
C10_HOST_DEVICE inline key_type<F> key_of(F v) {
  using U = key_type<F>;
  constexpr int top = 8 * sizeof(U) - 1;
  const U u = bit_cast<U>(v);
  return u ^ ((U{0} - (u >> top)) | (U{1} << top));
}
template <typename U>
C10_HOST_DEVICE inline value_type<U> value_of(U key) {
  constexpr U sign = U{1} << (8 * sizeof(U) - 1);
  return bit_cast<value_type<U>>((key & sign) ? (key & ~sign) : U(~key));
}

// What one histogram pass needs to know, read from the state on the device by the kernel.
struct PassSpec {
  int stage;       // 0: keys of x; 1: keys of |x - mu| (float64)
  int pass;        // digit index, 0 = most significant
  int digit_bits;  // 8 or 16
  int key_bits;    // key width of stage 0: 32 (float32 math) or 64 (float64 math)
};

// Keys of the current stage are `bits` wide (32 or 64; stage 1 is always 64).
C10_HOST_DEVICE inline int stage_key_bits(const PassSpec& s) {
  return s.stage == 0 ? s.key_bits : 64;
}

// Passes of the current stage.
C10_HOST_DEVICE inline int stage_passes(const PassSpec& s) {
  return stage_passes(s.stage, s.key_bits, s.digit_bits);
}

// The shift of this pass's digit.
C10_HOST_DEVICE inline int digit_shift(const PassSpec& s) {
  return stage_key_bits(s) - (s.pass + 1) * s.digit_bits;
}

// Bin of `key` in this pass, or -1 when its higher digits differ from `prefix`.
C10_HOST_DEVICE inline int64_t bin_of(uint64_t key, uint64_t prefix, const PassSpec& s) {
  const int shift = digit_shift(s);
  const int high = shift + s.digit_bits;
  if (s.pass > 0 && (key >> high) != (prefix >> high)) return -1;
  return static_cast<int64_t>((key >> shift) & ((uint64_t{1} << s.digit_bits) - 1));
}

// The key of one statistic value x (already in opmath: float or double) in this pass's
// stage, or false for NaN. `mu` is the stage-0 result (stage 1 only).
template <typename T>
C10_HOST_DEVICE inline bool stage_key(T x, double mu, const PassSpec& s, uint64_t& key) {
  if (s.stage == 0) {
    if (x != x) return false;
    // Stage-0 keys are as wide as the driver chose: float32 math with 64-bit keys happens
    // when a call mixes float32 and float64 tensors (float -> double is exact).
    key = s.key_bits == 32 ? key_of(static_cast<float>(x)) : key_of(static_cast<double>(x));
    return true;
  }
  const double dev = static_cast<double>(x) - mu;
  const double a = std::fabs(dev);  // branch-free: the sign of dev is a coin flip
  if (a != a) return false;
  key = key_of(a);
  return true;
}

// Bin of one statistic value x, or -2 for NaN (counted in the last bin on pass 0 only).
template <typename T>
C10_HOST_DEVICE inline int64_t bin_of_value(T x, uint64_t prefix, double mu, const PassSpec& s) {
  uint64_t key = 0;
  if (!stage_key(x, mu, s, key)) return s.pass == 0 ? -2 : -1;
  return bin_of(key, prefix, s);
}

// The stage-0 result decoded from its final prefix.
C10_HOST_DEVICE inline double median_of_prefix(uint64_t prefix, int key_bits) {
  return key_bits == 32 ? static_cast<double>(value_of(static_cast<uint32_t>(prefix)))
                        : value_of(prefix);
}

}  // namespace softsign::ops::radix
