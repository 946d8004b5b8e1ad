// The group schedule state of the soft optimizers: when a fit is launched, how its status
// comes back without a host wait, and which schedule entry a step uses.
#include "softsign/optim/group_schedule.h"

#include <c10/core/impl/VirtualGuardImpl.h>

#include <algorithm>
#include <cmath>

#include "softsign/optim/scheduled_optimizer.h"

namespace softsign::optim {

Phases resolve_phases(std::optional<int64_t> total_steps, double alpha_sign,
                      std::optional<int64_t> sign_steps, std::optional<int64_t> transition_steps) {
  TORCH_CHECK(total_steps || (sign_steps && transition_steps),
              "Invalid options: pass total_steps, or both sign_steps and transition_steps");
  const int64_t s =
      sign_steps
          ? *sign_steps
          : static_cast<int64_t>(std::floor(alpha_sign * static_cast<double>(*total_steps) + 0.5));
  const int64_t t = transition_steps ? *transition_steps : *total_steps - s;
  return Phases{s, std::max<int64_t>(t, 1)};
}

void warn_short_transition(const char* owner, std::optional<int64_t> total_steps, double alpha_sign,
                           std::optional<int64_t> sign_steps,
                           std::optional<int64_t> transition_steps) {
  int64_t length = 0;
  if (transition_steps) {
    length = *transition_steps;
  } else if (!total_steps) {
    return;  // refused by the options check
  } else if (!sign_steps) {
    if (alpha_sign >= 1) return;
    length = *total_steps -
             static_cast<int64_t>(std::floor(alpha_sign * static_cast<double>(*total_steps) + 0.5));
  } else {
    if (*sign_steps >= *total_steps) return;
    length = *total_steps - *sign_steps;
  }
  if (length < kMinTransitionSteps) {
    TORCH_WARN(owner, ": these options leave a transition of ", length,
               " step(s); it takes at least ", kMinTransitionSteps,
               " to leave the sign phase (docs/algorithms.md section 2). Raise total_steps, "
               "lower alpha_sign or sign_steps, or pass transition_steps >= ",
               kMinTransitionSteps, ".");
  }
}

void validate_schedule(const char* plain, bool transition, std::optional<int64_t> total_steps,
                       double alpha_sign, std::optional<int64_t> sign_steps,
                       std::optional<int64_t> transition_steps, double eps, int64_t newton_iters,
                       double tmax) {
  // The same checks, and bounds, as the Python option table (softsign/reference/options.py).
  const std::string soft = std::string("Soft") + plain;
  if (!transition) {
    TORCH_CHECK(!total_steps && !sign_steps && !transition_steps, "Invalid ", plain,
                " options: ", plain, " has no transition (use ", soft,
                " for total_steps, sign_steps and transition_steps)");
    return;
  }
  // alpha_sign = 0 (or sign_steps = 0): the fit runs at the first step, as in the paper's
  // unigram experiment.
  TORCH_CHECK(alpha_sign >= 0 && alpha_sign <= 1, "Invalid alpha_sign value: ", alpha_sign,
              " (expected 0 <= alpha_sign <= 1)");
  TORCH_CHECK(eps > 0 && eps < 1, "Invalid eps value: ", eps, " (expected 0 < eps < 1)");
  TORCH_CHECK(newton_iters >= 0, "Invalid newton_iters value: ", newton_iters);
  // The kernels use tau in float32: keep it finite there.
  TORCH_CHECK(tmax >= 1 && tmax <= 1e38, "Invalid tmax value: ", tmax,
              " (expected 1 <= tmax <= 1e38)");
  TORCH_CHECK(!total_steps || *total_steps >= 1, "Invalid total_steps value: ", *total_steps);
  TORCH_CHECK(!sign_steps || *sign_steps >= 0, "Invalid sign_steps value: ", *sign_steps);
  TORCH_CHECK(!transition_steps || *transition_steps >= 1,
              "Invalid transition_steps value: ", *transition_steps);
  TORCH_CHECK(total_steps || (sign_steps && transition_steps), "Invalid ", soft,
              " options: pass total_steps, or both sign_steps and transition_steps (", plain,
              " is the optimizer without a transition)");
  warn_short_transition(soft.c_str(), total_steps, alpha_sign, sign_steps, transition_steps);
}

namespace detail {
namespace {

[[noreturn]] void throw_non_finite(const ScheduleParams& params, double median, double mad) {
  TORCH_CHECK(false, "softsign: non-finite median/MAD of ", params.statistic,
              " at the temperature fit step (median ", median, ", MAD ", mad,
              "); the gradients contain inf or NaN. No parameter was changed by this step.");
}

void warn_zero_mad(const ScheduleParams& params, double median) {
  TORCH_WARN("softsign: ", params.statistic, " has zero MAD at the temperature fit step (median ",
             median, "); the temperature stays at c_eps / |median|");
}

}  // namespace

void GroupSchedule::write(torch::serialize::OutputArchive& archive) const {
  archive.write("step", c10::IValue(step_count));
  archive.write("fitted", c10::IValue(fitted));
  archive.write("fit_median", c10::IValue(median));
  archive.write("fit_mad", c10::IValue(mad));
}

void GroupSchedule::read(torch::serialize::InputArchive& archive) {
  c10::IValue value;
  archive.read("step", value);
  step_count = value.toInt();
  archive.read("fitted", value);
  fitted = value.toBool();
  archive.read("fit_median", value);
  median = value.toDouble();
  archive.read("fit_mad", value);
  mad = value.toDouble();
  cache = ScheduleCache();
}

bool GroupSchedule::fit_due(const Phases& phases, bool has_grads) const {
  return step_count + 1 > phases.sign_steps && !fitted && !cache.pending_event && has_grads;
}

FitLaunch GroupSchedule::launch(const at::Tensor& median, const at::Tensor& mad,
                                const ScheduleParams& params) {
  FitLaunch fit;
  std::tie(fit.stats, fit.fit) = ops::fit_temperature(median, mad);
  if (fit.stats.device().is_cpu()) {
    const at::Tensor stats = fit.stats.to(at::kDouble).contiguous();
    const double* s = stats.const_data_ptr<double>();
    fit.median = s[0];
    fit.mad = s[1];
    fit.status = static_cast<ops::FitStatus>(static_cast<int>(s[2]));
    if (*fit.status == ops::FitStatus::kNonFinite) throw_non_finite(params, fit.median, fit.mad);
  }
  return fit;
}

void GroupSchedule::commit(FitLaunch& fit, const ScheduleParams& params) {
  cache.fits.clear();
  cache.fits.emplace_back(fit.fit.device(), fit.fit);
  if (fit.status) {
    if (*fit.status == ops::FitStatus::kZeroMad) warn_zero_mad(params, fit.median);
    if (*fit.status != ops::FitStatus::kPending) {
      fitted = true;
      median = fit.median;
      mad = fit.mad;
      cache.fits.clear();  // rebuilt from the stored fit, as after load()
    }
    return;
  }
  // Accelerator: read the status at a later step, once the copy has landed; the device
  // fit serves meanwhile (NaN, so a no-op step, if the fit failed).
  const c10::Device home = fit.stats.device();
  cache.pending_stats = at::empty({3}, at::TensorOptions().dtype(at::kDouble).pinned_memory(true));
  cache.pending_stats.copy_(fit.stats, /*non_blocking=*/true);
  cache.pending_event = std::make_unique<c10::Event>(home.type());
  cache.pending_event->record(c10::impl::VirtualGuardImpl(home.type()).getStream(home));
}

void GroupSchedule::resolve_pending(bool wait, const ScheduleParams& params) {
  if (!cache.pending_event) return;
  if (wait) {
    cache.pending_event->synchronize();
  } else if (!cache.pending_event->query()) {
    return;
  }
  const double* stats = cache.pending_stats.const_data_ptr<double>();
  const double m = stats[0];
  const double d = stats[1];
  const auto status = static_cast<ops::FitStatus>(static_cast<int>(stats[2]));
  cache.pending_event.reset();
  cache.pending_stats.reset();
  switch (status) {
    case ops::FitStatus::kPending:
      return;  // the group fits again at its next step with gradients
    case ops::FitStatus::kNonFinite:
      cache.fits.clear();
      throw_non_finite(params, m, d);
    case ops::FitStatus::kZeroMad:
      warn_zero_mad(params, m);
      [[fallthrough]];
    case ops::FitStatus::kOk:
      fitted = true;
      median = m;
      mad = d;
      cache.fits.clear();  // rebuilt from the stored fit, as after load()
      return;
  }
}

at::Tensor GroupSchedule::fit_on(const c10::Device& device, const c10::Device& home) {
  // A fitted group's temperatures always come from its stored median and MAD: the same op
  // on the same numbers whether the run was resumed or not (Note [schedule cache]).
  for (const auto& entry : cache.fits) {
    if (entry.first == device) return entry.second;
  }
  if (cache.fits.empty()) {
    TORCH_INTERNAL_ASSERT(fitted, "softsign: a temperature was asked of an unfitted group");
    // Filled on the device: a copy from pageable host memory would synchronize.
    at::Tensor fit = at::empty({2}, at::TensorOptions().dtype(at::kDouble).device(home));
    fit[0].fill_(median);
    fit[1].fill_(mad);
    cache.fits.emplace_back(home, fit);
    if (device == home) return fit;
  }
  at::Tensor copy = cache.fits.front().second.to(device, /*non_blocking=*/true);
  cache.fits.emplace_back(device, copy);
  return copy;
}

std::optional<at::Tensor> GroupSchedule::temperature_at(int64_t k, const Phases& phases,
                                                        const c10::Device& device,
                                                        const c10::Device& home,
                                                        const ScheduleParams& params) {
  if (k <= phases.sign_steps) return std::nullopt;
  if (!fitted && cache.fits.empty()) return std::nullopt;  // waits for gradients
  const at::Tensor fit = fit_on(device, home);
  // Steps past the transition keep its last temperature (the op clamps the index).
  return ops::temperature_at(fit[0], fit[1], k - phases.sign_steps - 1, phases.transition_steps,
                             params.eps, params.newton_iters, params.tmax, params.kind);
}

std::optional<double> GroupSchedule::last_temperature(const Phases& phases, const c10::Device& home,
                                                      const ScheduleParams& params) {
  const int64_t k = step_count;
  if (k <= phases.sign_steps) return std::nullopt;
  resolve_pending(/*wait=*/true, params);
  if (!fitted) return std::nullopt;
  return temperature_at(k, phases, home, home, params)->item<double>();
}

}  // namespace detail
}  // namespace softsign::optim
