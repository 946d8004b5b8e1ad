// Note [one option list]: each optimizer's options are one X-macro list of
// (type, name, default) in its header. The list declares the TORCH_ARG fields and, through
// `for_each_field`, gives everything that walks the options (group merging, equality,
// save/load) without naming a field again; the Python bindings read the defaults from a
// default-constructed options object, and tests/python/test_options.py holds them to the
// Python option table (softsign/reference/options.py) and the README.
#pragma once

#include <c10/util/Exception.h>
#include <torch/arg.h>
#include <torch/optim/optimizer.h>
#include <torch/serialize/archive.h>

#include <cstdint>
#include <optional>
#include <string>
#include <tuple>

#include "softsign/optim/group_schedule.h"

namespace softsign::optim {

using betas_t = std::tuple<double, double>;

template <typename Rule>
class ScheduledOptimizer;

// The schedule options every soft optimizer shares (docs/algorithms.md sections 2 and 3).
// total_steps with alpha_sign gives S = round(alpha_sign * total_steps) and T = the rest;
// sign_steps and transition_steps override them.
#define SOFTSIGN_SCHEDULE_OPTIONS(X)                        \
  X(std::optional<int64_t>, total_steps, std::nullopt)      \
  X(double, alpha_sign, 0.9)                                \
  X(std::optional<int64_t>, sign_steps, std::nullopt)       \
  X(std::optional<int64_t>, transition_steps, std::nullopt) \
  X(double, eps, 1e-4)                                      \
  X(int64_t, newton_iters, 10)                              \
  X(double, tmax, 1e9)

// The constructors and LR accessors of an options struct whose rate is its `lr` field:
// Options() has the list's defaults, Options(lr) changes lr only (torch's pattern).
#define SOFTSIGN_OPTIONS_LR(Self)                                         \
  Self() = default;                                                       \
  Self(double lr) { lr_ = lr; } /* NOLINT(google-explicit-constructor) */ \
  double get_lr() const override { return lr_; }                          \
  void set_lr(const double lr) override { lr_ = lr; }

#define SOFTSIGN_OPTION_ARG(type, name, value) TORCH_ARG(type, name) = value;
#define SOFTSIGN_OPTION_FIELD(type, name, value) f(#name, &Self::name##_);

// The body of an options struct `Self` whose fields are the X-macro `LIST`, plus the
// group state (step count and fit) that torch::optim keeps in the options object.
#define SOFTSIGN_OPTIONS_BODY(Self, LIST)                                                       \
  LIST(SOFTSIGN_OPTION_ARG)                                                                     \
                                                                                                \
 public:                                                                                        \
  template <typename F>                                                                         \
  static void for_each_field(F&& f) {                                                           \
    LIST(SOFTSIGN_OPTION_FIELD)                                                                 \
  }                                                                                             \
  void serialize(torch::serialize::OutputArchive& archive) const override {                     \
    ::softsign::optim::detail::write_options(*this, archive);                                   \
    schedule_.write(archive);                                                                   \
  }                                                                                             \
  void serialize(torch::serialize::InputArchive& archive) override {                            \
    ::softsign::optim::detail::read_options(*this, archive);                                    \
    schedule_.read(archive);                                                                    \
  }                                                                                             \
  /* Equal options and equal group state. */                                                    \
  friend bool operator==(const Self& lhs, const Self& rhs) {                                    \
    return ::softsign::optim::detail::same_options(lhs, rhs) && lhs.schedule_ == rhs.schedule_; \
  }                                                                                             \
  /* Group state: steps taken by this group (k of the spec), and the fit once known. */         \
  int64_t step_count() const { return schedule_.step_count; }                                   \
  bool fitted() const { return schedule_.fitted; }                                              \
  double fit_median() const { return schedule_.median; }                                        \
  double fit_mad() const { return schedule_.mad; }                                              \
                                                                                                \
 private:                                                                                       \
  template <typename Rule>                                                                      \
  friend class ::softsign::optim::ScheduledOptimizer;                                           \
  detail::GroupSchedule schedule_;

namespace detail {

template <typename T>
void write_value(torch::serialize::OutputArchive& archive, const char* key, const T& value) {
  archive.write(key, c10::IValue(value));
}
inline void write_value(torch::serialize::OutputArchive& archive, const char* key,
                        const betas_t& value) {
  archive.write(key, c10::IValue(std::make_tuple(std::get<0>(value), std::get<1>(value))));
}

inline void read_value(const c10::IValue& v, double& out) { out = v.toDouble(); }
inline void read_value(const c10::IValue& v, bool& out) { out = v.toBool(); }
inline void read_value(const c10::IValue& v, int64_t& out) { out = v.toInt(); }
inline void read_value(const c10::IValue& v, std::string& out) { out = v.toStringRef(); }
inline void read_value(const c10::IValue& v, std::optional<int64_t>& out) {
  out = v.isNone() ? std::nullopt : std::optional<int64_t>(v.toInt());
}
inline void read_value(const c10::IValue& v, betas_t& out) {
  const auto& items = v.toTupleRef().elements();
  TORCH_CHECK(items.size() == 2, "softsign: expected a pair of betas in the checkpoint");
  out = std::make_tuple(items[0].toDouble(), items[1].toDouble());
}

template <typename Options>
void write_options(const Options& o, torch::serialize::OutputArchive& archive) {
  Options::for_each_field(
      [&](const char* key, auto field) { write_value(archive, key, o.*field); });
}

// An option missing from the archive (a checkpoint saved before the option existed) keeps
// the value `o` holds: its default, since torch::optim reads a group into fresh options.
template <typename Options>
void read_options(Options& o, torch::serialize::InputArchive& archive) {
  Options::for_each_field([&](const char* key, auto field) {
    c10::IValue value;
    if (archive.try_read(key, value)) read_value(value, o.*field);
  });
}

template <typename Options>
bool same_options(const Options& a, const Options& b) {
  bool same = true;
  Options::for_each_field([&](const char*, auto field) { same = same && a.*field == b.*field; });
  return same;
}

// A param group's options: every field the user left at its constructor default takes the
// optimizer's default, as in torch's own optimizers (Optimizer::_merge_by_comparison).
// torch::optim::Optimizer::add_param_group does this for torch's option types only and
// silently keeps the defaults for any other. The result starts a fresh group.
template <typename Options>
Options merge_options(const Options& defaults, const Options& user) {
  const Options fresh;
  Options out;
  Options::for_each_field([&](const char*, auto field) {
    out.*field = user.*field == fresh.*field ? defaults.*field : user.*field;
  });
  return out;
}

}  // namespace detail
}  // namespace softsign::optim
