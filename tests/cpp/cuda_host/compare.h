// Helpers of the cuda_host tests: inputs laid out like a user's (views, offsets, mixed
// dtypes), twins that share nothing with them, and the comparisons the suite asserts.
#pragma once

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

namespace cuda_host_test {

// A copy of t's whole storage, viewed exactly as t is (sizes, strides, storage offset), so
// that the copy misaligns, overlaps nothing and has the same untouched neighbours.
inline at::Tensor twin(const at::Tensor& t) {
  const int64_t n = static_cast<int64_t>(t.storage().nbytes()) / t.element_size();
  at::Tensor storage = t.as_strided({n}, {1}, 0).clone();
  return storage.as_strided(t.sizes(), t.strides(), t.storage_offset());
}

inline std::vector<at::Tensor> twins(const std::vector<at::Tensor>& ts) {
  std::vector<at::Tensor> out;
  for (const auto& t : ts) out.push_back(twin(t));
  return out;
}

// The whole storage behind t, as a flat tensor (what a kernel could have written).
inline at::Tensor storage_of(const at::Tensor& t) {
  const int64_t n = static_cast<int64_t>(t.storage().nbytes()) / t.element_size();
  return t.as_strided({n}, {1}, 0);
}

// Bit-identical storages (NaN payloads included: compared as integers).
inline void expect_same_bits(const at::Tensor& a, const at::Tensor& b, const std::string& what) {
  const at::Tensor sa = storage_of(a), sb = storage_of(b);
  ASSERT_EQ(sa.numel(), sb.numel()) << what;
  const at::ScalarType as_int = a.element_size() == 8   ? at::kLong
                                : a.element_size() == 4 ? at::kInt
                                                        : at::kShort;
  const at::Tensor ia = sa.view(as_int), ib = sb.view(as_int);
  const int64_t differ = ia.ne(ib).sum().item<int64_t>();
  EXPECT_EQ(differ, 0) << what << ": " << differ << " of " << sa.numel() << " elements differ";
}

// Mantissa bits of a floating dtype.
inline int mantissa_bits(at::ScalarType t) {
  switch (t) {
    case at::kDouble:
      return 52;
    case at::kFloat:
      return 23;
    case at::kHalf:
      return 10;
    default:
      return 7;  // bfloat16
  }
}

// Soft-phase comparison. The host layer takes tanh from the C library; the CPU kernel uses
// its own SIMD polynomial (1.36 ulp at most). So u = tanh(tau d) may differ by 2 ulp of the
// opmath type, which lr scales, and the sum p - lr u may then round to a neighbour in the
// param's dtype: |a - b| <= lr * 4 eps(opmath) + 2^(1-m) max(|a|, |b|) (m: the dtype's
// mantissa bits; 2^(1-m) |x| is between one and two ulps of x).
inline void expect_close_soft(const at::Tensor& got, const at::Tensor& want, double lr,
                              const std::string& what) {
  const at::Tensor a = storage_of(got).to(at::kDouble), b = storage_of(want).to(at::kDouble);
  const double eps_opmath = got.scalar_type() == at::kDouble ? 0x1p-52 : 0x1p-23;
  const double rel = std::ldexp(2.0, -mantissa_bits(got.scalar_type()));
  const at::Tensor tol = at::maximum(a.abs(), b.abs()) * rel + std::abs(lr) * 4 * eps_opmath;
  const at::Tensor bad = (a - b).abs() > tol;
  const at::Tensor nan_mismatch = a.isnan().ne(b.isnan());
  EXPECT_EQ(nan_mismatch.sum().item<int64_t>(), 0) << what << ": NaN in one result only";
  const int64_t n_bad = bad.logical_and(nan_mismatch.logical_not()).sum().item<int64_t>();
  EXPECT_EQ(n_bad, 0) << what << ": " << n_bad << " elements beyond tolerance, max diff "
                      << (a - b).abs().nan_to_num(0).max().item<double>();
}

}  // namespace cuda_host_test
