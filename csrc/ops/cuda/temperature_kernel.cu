// Registers the CUDA kernel of the temperature ops (temperature_kernel.cuh).
#include <torch/library.h>

#include "temperature_kernel.cuh"

TORCH_LIBRARY_IMPL(softsign, CUDA, m) {
  softsign::ops::register_temperature_ops<&softsign::ops::temperature_range_launch<>>(m);
}
