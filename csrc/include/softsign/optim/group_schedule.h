// The per-group temperature schedule state shared by the soft optimizers (docs/algorithms.md
// section 3): the group's step count, its fit once known, and the caches derived from them.
#pragma once

#include <ATen/ATen.h>
#include <c10/core/Device.h>
#include <c10/core/Event.h>
#include <torch/serialize/archive.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "softsign/ops.h"

namespace softsign::optim {

// Sign phase length S and transition length T of a group (docs/algorithms.md section 2): explicit
// counts win, else S = floor(alpha_sign * total_steps + 0.5) and T = total_steps - S;
// T < 1 becomes 1 (the whole run is then sign phase).
struct Phases {
  int64_t sign_steps;
  int64_t transition_steps;
};
Phases resolve_phases(std::optional<int64_t> total_steps, double alpha_sign,
                      std::optional<int64_t> sign_steps, std::optional<int64_t> transition_steps);

// The shortest transition that softens anything: its first temperature is fitted to keep
// every entry saturated (sign-like), so a 1-step transition never leaves the sign phase
// (docs/algorithms.md section 2). The Python optimizers use the same minimum.
constexpr int64_t kMinTransitionSteps = 2;

// Warns (TORCH_WARN) when these options leave a transition shorter than
// kMinTransitionSteps, naming the option to change. Options that ask for no transition
// (alpha_sign = 1, or sign_steps >= total_steps) do not warn.
void warn_short_transition(const char* owner, std::optional<int64_t> total_steps, double alpha_sign,
                           std::optional<int64_t> sign_steps,
                           std::optional<int64_t> transition_steps);

namespace detail {

// Note [schedule cache]: per-group values derived from the serialized fit, never
// serialized themselves: the fit (median, MAD) as a device tensor on the group's devices,
// from which each step computes its temperature (temperature_at: O(1) in the transition's
// length, no schedule tensor), and a fit whose status is still on its way from the device.
// A copy is empty: whoever holds a copy of the options (load(), a cloned group) rebuilds
// the device fit from the stored median and MAD, exactly as the uninterrupted run does
// once its fit is known; that is what makes a resumed run bit-identical.
class ScheduleCache {
 public:
  ScheduleCache() = default;
  ScheduleCache(const ScheduleCache&) {}
  ScheduleCache(ScheduleCache&&) noexcept = default;
  ScheduleCache& operator=(const ScheduleCache& other) {
    if (this != &other) *this = ScheduleCache();
    return *this;
  }
  ScheduleCache& operator=(ScheduleCache&&) noexcept = default;
  ~ScheduleCache() = default;

  // float64 [median, mad] (NaN while a failed or skipped fit is the last word), one copy
  // per device it was asked for.
  std::vector<std::pair<c10::Device, at::Tensor>> fits;
  // A fit launched on an accelerator: stats [median, mad, status] copied to pinned host
  // memory without waiting, and the event after which they are readable.
  at::Tensor pending_stats;
  std::unique_ptr<c10::Event> pending_event;
};

// What the schedule is computed from besides the fit.
struct ScheduleParams {
  double eps;
  int64_t newton_iters;
  double tmax;
  std::string kind;       // "tanh" or "algebraic"
  std::string statistic;  // what was fitted, for messages ("the momentum", ...)
};

// A fit launched at this step: the device results, and on CPU the status already read.
struct FitLaunch {
  at::Tensor stats;  // float64 [median, mad, status] on the home device
  at::Tensor fit;    // float64 [median, mad] on the home device, NaN unless usable
  std::optional<ops::FitStatus> status;
  double median = 0, mad = 0;
};

// The serialized group state (step count k and the fit) plus its caches.
struct GroupSchedule {
  int64_t step_count = 0;
  bool fitted = false;
  double median = 0, mad = 0;
  ScheduleCache cache;

  bool operator==(const GroupSchedule& o) const {
    return step_count == o.step_count && fitted == o.fitted && median == o.median && mad == o.mad;
  }
  void write(torch::serialize::OutputArchive& archive) const;
  void read(torch::serialize::InputArchive& archive);

  // True when step k (the next one: step_count + 1) must launch a fit.
  bool fit_due(const Phases& phases, bool has_grads) const;
  // fit_temperature on the device; on CPU the status is read now and a non-finite
  // statistic throws (nothing has changed yet).
  static FitLaunch launch(const at::Tensor& median, const at::Tensor& mad,
                          const ScheduleParams& params);
  // Records a launched fit: the status now (CPU) or through pinned memory and an event.
  void commit(FitLaunch& fit, const ScheduleParams& params);
  // Reads the status of an in-flight fit if it has arrived (or, with wait, once it has).
  void resolve_pending(bool wait, const ScheduleParams& params);
  // The device fit [median, mad] on `device` (built from the stored fit if needed).
  at::Tensor fit_on(const c10::Device& device, const c10::Device& home);
  // The 0-dim temperature of step k, computed on `device` (nullopt in the sign phase).
  std::optional<at::Tensor> temperature_at(int64_t k, const Phases& phases,
                                           const c10::Device& device, const c10::Device& home,
                                           const ScheduleParams& params);
  // The temperature of the last step as a number, for logging (waits for a fit in flight).
  std::optional<double> last_temperature(const Phases& phases, const c10::Device& home,
                                         const ScheduleParams& params);
};

}  // namespace detail
}  // namespace softsign::optim
