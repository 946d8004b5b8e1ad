// One-element device tensors (lr, temperature, grad_scale, found_inf) read by the kernels
// themselves, so the host never waits on them. Shared by the CUDA kernels.
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <vector>

#include "device_api.cuh"

namespace softsign::ops {

struct DeviceScalar {
  const void* ptr = nullptr;
  bool is_double = false;

  template <typename T>
  __device__ __forceinline__ T get() const {
    return is_double ? static_cast<T>(*static_cast<const double*>(ptr))
                     : static_cast<T>(*static_cast<const float*>(ptr));
  }
};

// The kernels read float32 or float64 only; other floating dtypes get a device-side copy,
// kept alive in `keep` until the launches are queued (the caching allocator orders its
// reuse after them on this stream).
inline DeviceScalar device_scalar(const std::optional<at::Tensor>& t,
                                  std::vector<at::Tensor>& keep) {
  if (!t.has_value()) return {};
  at::Tensor v = *t;
  if (v.scalar_type() != at::kFloat && v.scalar_type() != at::kDouble) v = v.to(at::kFloat);
  keep.push_back(v);
  return {v.data_ptr(), v.scalar_type() == at::kDouble};
}

}  // namespace softsign::ops
