// Which build of the per-capability CPU kernels (DEFAULT, AVX2, AVX512) runs on this CPU.
#pragma once

#include <cstdlib>
#include <cstring>

namespace softsign::ops {

enum class CpuCapability { kDefault, kAvx2, kAvx512 };

// The best build this CPU runs (AVX512: F, BW, VL and DQ, as ATen's AVX512 kernels
// need; AVX2: with FMA), capped by SOFTSIGN_CPU_CAPABILITY=default|avx2 (the tests run
// every build this machine has).
inline CpuCapability cpu_capability() {
  static const CpuCapability cap = [] {
    const char* want = std::getenv("SOFTSIGN_CPU_CAPABILITY");
    const bool at_most_default = want != nullptr && std::strcmp(want, "default") == 0;
    const bool at_most_avx2 = want != nullptr && std::strcmp(want, "avx2") == 0;
    if (at_most_default) return CpuCapability::kDefault;
#if defined(SOFTSIGN_HAVE_AVX512)
    if (!at_most_avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")) {
      return CpuCapability::kAvx512;
    }
#endif
#if defined(SOFTSIGN_HAVE_AVX2)
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
      return CpuCapability::kAvx2;
    }
#endif
    (void)at_most_avx2;
    return CpuCapability::kDefault;
  }();
  return cap;
}

// Declares, for each build (DEFAULT, AVX2, AVX512), the kernel declarations `...` of a
// file compiled once per capability into namespace CPU_CAPABILITY.
#define SOFTSIGN_CPU_KERNEL_BUILDS(...) \
  namespace DEFAULT {                   \
  __VA_ARGS__                           \
  }                                     \
  namespace AVX2 {                      \
  __VA_ARGS__                           \
  }                                     \
  namespace AVX512 {                    \
  __VA_ARGS__                           \
  }

// Calls CAP::NAME(args...) for the build cpu_capability() picks.
#define SOFTSIGN_CPU_DISPATCH(NAME, ...)             \
  do {                                               \
    switch (::softsign::ops::cpu_capability()) {     \
      case ::softsign::ops::CpuCapability::kAvx512:  \
        SOFTSIGN_CALL_AVX512(NAME, __VA_ARGS__);     \
        break;                                       \
      case ::softsign::ops::CpuCapability::kAvx2:    \
        SOFTSIGN_CALL_AVX2(NAME, __VA_ARGS__);       \
        break;                                       \
      default:                                       \
        ::softsign::ops::DEFAULT::NAME(__VA_ARGS__); \
    }                                                \
  } while (0)

#if defined(SOFTSIGN_HAVE_AVX512)
#define SOFTSIGN_CALL_AVX512(NAME, ...) ::softsign::ops::AVX512::NAME(__VA_ARGS__)
#else
#define SOFTSIGN_CALL_AVX512(NAME, ...) ::softsign::ops::DEFAULT::NAME(__VA_ARGS__)
#endif
#if defined(SOFTSIGN_HAVE_AVX2)
#define SOFTSIGN_CALL_AVX2(NAME, ...) ::softsign::ops::AVX2::NAME(__VA_ARGS__)
#else
#define SOFTSIGN_CALL_AVX2(NAME, ...) ::softsign::ops::DEFAULT::NAME(__VA_ARGS__)
#endif

}  // namespace softsign::ops
