// Registers the CUDA kernel of softsign::radix_select_histogram (radix_select_kernel.cuh).
#include <torch/library.h>

#include "radix_select_kernel.cuh"

TORCH_LIBRARY_IMPL(softsign, CUDA, m) {
  m.impl("radix_select_histogram", &softsign::ops::radix_select_histogram_launch<>);
}
