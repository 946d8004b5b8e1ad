// The SoftMuon schedule statistic (docs/algorithms.md section 5): every singular value of every
// gradient, from an eigendecomposition of its small-side Gram matrix, batched over
// gradients of equal shape. Gram and eigensolver run in float64: sigma^2 = eig(G) loses
// the small singular values below sqrt(eps) * sigma_max of the solver's dtype, and in
// float32 those are noise (about 3e-4 sigma_max) that moved with the batch a gradient was
// solved in (a sharded run gathers other batches than a single process). In float64 they
// are accurate to about 1e-8 sigma_max. The fit runs once per training, so the float64
// solve is a one-time cost.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <algorithm>
#include <limits>
#include <vector>

namespace softsign::ops {
namespace {

// 1-D as 1 x n, 2-D as is, >= 3-D (conv weights) as (size0, -1).
at::Tensor statistic_view(const at::Tensor& t) {
  if (t.dim() <= 1) return t.reshape({1, t.numel()});
  return t.reshape({t.size(0), -1});
}

std::vector<at::Tensor> singular_values_impl(at::TensorList tensors) {
  struct Bucket {
    int64_t rows, cols;
    c10::Device device;
    at::ScalarType out_dtype;
    std::vector<size_t> members;
  };
  std::vector<Bucket> buckets;
  std::vector<at::Tensor> views(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const at::Tensor& t = tensors[i];
    TORCH_CHECK(t.layout() == at::kStrided && at::isFloatingType(t.scalar_type()),
                "softsign.singular_values: expected dense real floating tensors, got ", t.layout(),
                " ", t.scalar_type(), " at index ", i);
    views[i] = statistic_view(t);
    const int64_t rows = views[i].size(0), cols = views[i].size(1);
    const auto out_dtype = t.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
    auto it = std::find_if(buckets.begin(), buckets.end(), [&](const Bucket& b) {
      return b.rows == rows && b.cols == cols && b.device == t.device() && b.out_dtype == out_dtype;
    });
    if (it == buckets.end()) {
      buckets.push_back(Bucket{rows, cols, t.device(), out_dtype, {}});
      it = std::prev(buckets.end());
    }
    it->members.push_back(i);
  }
  std::vector<at::Tensor> out(tensors.size());
  for (const Bucket& b : buckets) {
    if (std::min(b.rows, b.cols) == 0) {
      for (size_t i : b.members) out[i] = at::empty({0}, tensors[i].options().dtype(b.out_dtype));
      continue;
    }
    // One gradient at a time into float64 (a float64 copy of a whole bucket would be a
    // spike the size of the model); the Grams are min(m, n) square.
    std::vector<at::Tensor> grams;
    grams.reserve(b.members.size());
    for (size_t i : b.members) {
      const at::Tensor v = views[i].to(at::kDouble);
      grams.push_back(b.rows <= b.cols ? at::mm(v, v.t()) : at::mm(v.t(), v));
    }
    // Non-finite gradients give NaN singular values (the fit then reports them) instead
    // of an eigensolver failure; decided on the device.
    at::Tensor gram = at::stack(grams);
    const at::Tensor finite = at::isfinite(gram).flatten(1).all(1).view({-1, 1});
    gram = at::where(finite.unsqueeze(-1), gram, 0);
    const at::Tensor sigma = at::where(finite, at::linalg_eigvalsh(gram).clamp_min_(0).sqrt_(),
                                       std::numeric_limits<double>::quiet_NaN())
                                 .to(b.out_dtype);
    for (size_t j = 0; j < b.members.size(); ++j)
      out[b.members[j]] = sigma.select(0, j).clone();  // outputs may not alias
  }
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(softsign, CompositeExplicitAutograd, m) {
  m.impl("singular_values", &singular_values_impl);
}

}  // namespace softsign::ops
