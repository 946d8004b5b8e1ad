// Registers the CUDA kernels of the radix selection (radix_select_kernel.cuh): the
// histogram and advance ops, and the device-side driver as CUDA's part of the driver in
// radix_select.cpp (SelectionBackend).
#include <torch/library.h>

#include <type_traits>

#include "op_signatures.h"
#include "radix_select_kernel.cuh"

namespace softsign::ops {
namespace {

std::tuple<at::Tensor, at::Tensor> select_median_mad_cuda(const SelectionSource& src) {
  return select_median_mad_launch<>(src);
}

[[maybe_unused]] const bool registered =
    register_selection_backend(c10::DeviceType::CUDA, {&select_median_mad_cuda, nullptr});

}  // namespace
}  // namespace softsign::ops

// Note [one signature per op].
static_assert(std::is_same_v<decltype(softsign::ops::radix_select_histogram_launch<>),
                             softsign::ops::sig::RadixSelectHistogram>);
static_assert(std::is_same_v<decltype(softsign::ops::radix_select_advance_entry),
                             softsign::ops::sig::RadixSelectAdvance>);

TORCH_LIBRARY_IMPL(softsign, CUDA, m) {
  m.impl("radix_select_histogram", &softsign::ops::radix_select_histogram_launch<>);
  m.impl("radix_select_advance_", &softsign::ops::radix_select_advance_entry);
}
