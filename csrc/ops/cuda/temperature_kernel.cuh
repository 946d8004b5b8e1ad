// The CUDA kernel of the temperature ops: one thread per index, each computing
// quantile_temperature from the median and MAD it reads on the device (no host read).
// Built by nvcc (temperature_kernel.cu) and, as host code, by the cuda_host tests.
#pragma once

#include <limits>

#include "kernel_common.cuh"
#include "temperature.h"

namespace softsign::ops {

template <int kThreads>
struct TemperatureRangeOp {
  const double* median;
  const double* mad;
  int64_t first;
  int64_t count;
  TemperatureRule rule;
  double* out;

  __device__ __forceinline__ void operator()() const {
    const int64_t i = static_cast<int64_t>(dev::block_index()) * kThreads + dev::thread_index();
    if (i < count) out[i] = quantile_temperature(*median, *mad, first + i, rule);
  }
};

// TemperatureRange on the current stream. A launch covers up to 2^31 - 1 blocks, far
// beyond any schedule a run asks for (temperature_at asks for one).
template <int kThreads = 128>
void temperature_range_launch(const at::Tensor& median, const at::Tensor& mad, int64_t first,
                              const TemperatureRule& rule, const at::Tensor& out) {
  const int64_t n = out.numel();
  if (n == 0) return;
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  TORCH_CHECK(blocks <= std::numeric_limits<int>::max(), "softsign: a temperature schedule of ", n,
              " steps is too long for one launch; ask temperature_at for each step");
#if defined(__CUDACC__)
  const c10::cuda::CUDAGuard guard(out.device());
#endif
  const TemperatureRangeOp<kThreads> op{
      median.const_data_ptr<double>(), mad.const_data_ptr<double>(), first, n, rule,
      out.mutable_data_ptr<double>()};
  mt::launch_grid<kThreads>(static_cast<int>(blocks), op);
}

}  // namespace softsign::ops
