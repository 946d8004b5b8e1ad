// Grouping of a fused call's tensors by dtype, shared by the CPU and CUDA kernels: one
// launch series (or one dispatch) per dtype, tensors in order of first appearance.
#pragma once

#include <ATen/ATen.h>

#include <utility>
#include <vector>

namespace softsign::ops {

// Indices into `tensors`, grouped by dtype in order of first appearance.
inline std::vector<std::pair<at::ScalarType, std::vector<size_t>>> group_by_dtype(
    at::TensorList tensors) {
  std::vector<std::pair<at::ScalarType, std::vector<size_t>>> groups;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const at::ScalarType dtype = tensors[i].scalar_type();
    size_t k = 0;
    while (k < groups.size() && groups[k].first != dtype) ++k;
    if (k == groups.size()) groups.emplace_back(dtype, std::vector<size_t>{});
    groups[k].second.push_back(i);
  }
  return groups;
}

}  // namespace softsign::ops
