// The definitions of ElementwiseRule<Traits> (softsign/optim/elementwise.h): the work of one
// group of an element-wise optimizer. It only organizes the calls (which params have
// gradients, which buffers are new, which device each call runs on); all arithmetic
// happens in the ops. elementwise.cpp includes this and instantiates each rule of the
// optimizer list once (Note [optimizer list] in CMakeLists.txt).
#pragma once

#include <algorithm>
#include <iterator>
#include <memory>
#include <utility>
#include <vector>

#include "softsign/optim/elementwise.h"

namespace softsign::optim {
namespace elementwise_detail {

// Tensors of one fused call. A fused call takes one device, and one first_step flag.
struct CallLists {
  std::vector<at::Tensor> params, grads, bufs;
};

// The params of a group that have a gradient, on one device: `buffered` have a buffer (or
// need none: momentum 0), `fresh` get theirs on this step (first_step).
struct DeviceBucket {
  c10::Device device;
  CallLists buffered, fresh;
  std::vector<std::pair<at::Tensor, at::Tensor>> new_bufs;  // (param, buffer) to store
};

// The op steps any layout through dense stand-ins (Note [step layouts]). A buffer whose
// strides differ from its dense param's (the param was re-laid out since, say to
// channels_last) is re-laid out here once and kept, so that it needs no stand-in again.
inline at::Tensor in_layout_of(const at::Tensor& like, const at::Tensor& t) {
  if (!like.is_non_overlapping_and_dense() || t.strides() == like.strides()) return t;
  return at::empty_like(like).copy_(t);
}

inline DeviceBucket& bucket_for(std::vector<DeviceBucket>& buckets, const c10::Device& device) {
  auto it = std::find_if(buckets.begin(), buckets.end(),
                         [&](const DeviceBucket& b) { return b.device == device; });
  if (it != buckets.end()) return *it;
  buckets.push_back(DeviceBucket{device, {}, {}, {}});
  return buckets.back();
}

}  // namespace elementwise_detail

template <typename Traits>
struct ElementwiseRule<Traits>::Work {
  std::vector<elementwise_detail::DeviceBucket> buckets;
};

template <typename Traits>
auto ElementwiseRule<Traits>::gather(const torch::optim::OptimizerParamGroup& group, size_t index,
                                     const StateMap& state, const Options& o) -> Work {
  // Allocates (but does not yet store) the buffers of params seen for the first time.
  using namespace elementwise_detail;
  Work work;
  const bool buffered = Traits::buffered(o);
  for (const at::Tensor& p : group.params()) {
    const at::Tensor& g = p.grad();
    if (!g.defined()) continue;
    TORCH_CHECK(g.layout() == at::kStrided,
                "softsign: sparse gradients are not supported (param group ", index, ")");
    TORCH_CHECK(!p.is_complex() && !g.is_complex(),
                "softsign: complex parameters are not supported (param group ", index, ")");
    TORCH_CHECK(
        g.device() == p.device() && g.scalar_type() == p.scalar_type() && g.sizes() == p.sizes(),
        "softsign: expected a gradient of the parameter's device, dtype and shape ",
        "(param group ", index, "), got ", g.device(), " ", g.scalar_type(), " ", g.sizes(),
        " for ", p.device(), " ", p.scalar_type(), " ", p.sizes());
    DeviceBucket& bucket = bucket_for(work.buckets, p.device());
    at::Tensor buf;
    if (buffered) {
      auto it = state.find(p.unsafeGetTensorImpl());
      if (it != state.end()) buf = Traits::buffer(static_cast<const ParamState&>(*it->second));
    }
    CallLists& lists = (buffered && !buf.defined()) ? bucket.fresh : bucket.buffered;
    lists.params.push_back(p);
    lists.grads.push_back(g);
    if (buffered) {
      at::Tensor laid_out =
          buf.defined() ? in_layout_of(p, buf) : at::zeros_like(p, at::MemoryFormat::Preserve);
      if (!laid_out.is_same(buf)) bucket.new_bufs.emplace_back(p, laid_out);
      lists.bufs.push_back(std::move(laid_out));
    }
  }
  return work;
}

template <typename Traits>
bool ElementwiseRule<Traits>::has_elements(const Work& work) {
  using namespace elementwise_detail;
  for (const DeviceBucket& b : work.buckets) {
    for (const CallLists* lists : {&b.buffered, &b.fresh}) {
      for (const at::Tensor& g : lists->grads) {
        if (g.numel() > 0) return true;
      }
    }
  }
  return false;
}

// Median and MAD of the fit statistic, the direction of every param. A group on one device
// is read in place (Note [radix selection]); a group spread over devices gathers its
// directions on `home` first.
template <typename Traits>
std::tuple<at::Tensor, at::Tensor> ElementwiseRule<Traits>::statistics(const Work& work,
                                                                       const Options& o,
                                                                       const c10::Device& home) {
  using namespace elementwise_detail;
  ops::SoftSignStepArgs args = Traits::step_args(o);
  if (work.buckets.size() == 1) {
    const DeviceBucket& b = work.buckets.front();
    const ops::SelectionSource src{
        b.buffered.grads, b.buffered.bufs, b.fresh.grads, args.momentum,      args.dampening,
        args.nesterov,    args.maximize,   std::nullopt,  args.momentum_rule, args.rule_coeffs};
    return ops::direction_median_mad(src);
  }
  std::vector<at::Tensor> out;
  for (const DeviceBucket& b : work.buckets) {
    for (const bool first_step : {false, true}) {
      const CallLists& lists = first_step ? b.fresh : b.buffered;
      if (lists.params.empty()) continue;
      args.first_step = first_step;
      for (at::Tensor& d : ops::soft_sign_direction(lists.grads, lists.bufs, args)) {
        out.push_back(b.device == home ? std::move(d) : d.to(home));
      }
    }
  }
  return ops::median_mad(out);
}

// Stores the new buffers and runs the fused step of every bucket.
template <typename Traits>
void ElementwiseRule<Traits>::update(Work& work, const Options& o, StateMap& state,
                                     const StepTemperature& temperature) {
  using namespace elementwise_detail;
  ops::SoftSignStepArgs args = Traits::step_args(o);
  for (DeviceBucket& b : work.buckets) {
    const std::optional<at::Tensor> tau = temperature.on(b.device);
    for (const auto& [p, buf] : b.new_bufs) {
      auto& slot = state[p.unsafeGetTensorImpl()];
      if (!slot) slot = std::make_unique<ParamState>();
      Traits::set_buffer(static_cast<ParamState&>(*slot), buf);
    }
    for (const bool first_step : {false, true}) {
      CallLists& lists = first_step ? b.fresh : b.buffered;
      if (lists.params.empty()) continue;
      args.first_step = first_step;
      ops::soft_sign_step_(lists.params, lists.grads, lists.bufs, args, std::nullopt, tau);
    }
  }
}

}  // namespace softsign::optim
