// What every CUDA kernel body beside this file includes, in both of its builds: device
// code under nvcc, and host code for the cuda_host tests (device_api.cuh). ATen and its
// dtype dispatch, the device layer, device scalars, dtype buckets, the chunked multi-tensor
// launcher (as `mt`), the element math of soft_sign_step.h, and CUDA's device guard under
// nvcc.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>

#include <array>
#include <optional>
#include <utility>
#include <vector>

#include "device_api.cuh"
#include "device_scalar.cuh"
#include "dtype_buckets.h"
#include "multi_tensor.cuh"
#include "soft_sign_step.h"

#if defined(__CUDACC__)
#include <c10/cuda/CUDAGuard.h>
#endif

namespace softsign::ops {
namespace mt = multi_tensor;
}  // namespace softsign::ops
