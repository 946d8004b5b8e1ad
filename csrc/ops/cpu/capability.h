// Which build of the per-capability CPU kernels (DEFAULT, AVX2) runs on this CPU.
#pragma once

#include <cstdlib>
#include <cstring>

namespace softsign::ops {

// AVX2 + FMA when the CPU has them, unless SOFTSIGN_CPU_CAPABILITY=default asks for the
// portable build (the tests run both).
inline bool use_avx2() {
#if defined(SOFTSIGN_HAVE_AVX2)
  static const bool avx2 = [] {
    const char* want = std::getenv("SOFTSIGN_CPU_CAPABILITY");
    if (want != nullptr && std::strcmp(want, "default") == 0) return false;
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return avx2;
#else
  return false;
#endif
}

}  // namespace softsign::ops
