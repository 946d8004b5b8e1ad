// softsign._C: pybind11 bindings of the C++ optimizers, for LibTorch parity tests and for
// users who want the exact C++ objects from Python. No logic lives here.
#include <torch/extension.h>

#include <algorithm>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "softsign/softsign.h"

namespace py = pybind11;
using softsign::optim::Muon;
using softsign::optim::SoftMuon;
using softsign::optim::SoftMuonOptions;

namespace {

// step(closure=None): the closure is a Python callable returning the loss tensor.
template <typename Optimizer>
std::optional<torch::Tensor> step(Optimizer& self, const std::optional<py::function>& closure) {
  torch::Tensor loss;
  if (closure) {
    loss = self.step([&closure]() { return (*closure)().template cast<torch::Tensor>(); });
  } else {
    py::gil_scoped_release no_gil;
    loss = self.step();
  }
  if (!loss.defined()) return std::nullopt;
  return loss;
}

template <typename Optimizer>
void save(const Optimizer& self, const std::string& path) {
  torch::save(self, path);
}

template <typename Optimizer>
void load(Optimizer& self, const std::string& path) {
  torch::load(self, path);
}

// SoftMuon/Muon param groups from Python: a list of (params, use_muon) pairs, each with
// `options` and its use_muon.
std::vector<torch::optim::OptimizerParamGroup> muon_groups(
    const std::vector<std::pair<std::vector<torch::Tensor>, bool>>& groups,
    const SoftMuonOptions& options) {
  std::vector<torch::optim::OptimizerParamGroup> out;
  for (const auto& [params, use_muon] : groups) {
    out.emplace_back(
        params, std::make_unique<SoftMuonOptions>(SoftMuonOptions(options).use_muon(use_muon)));
  }
  return out;
}

#define SOFTSIGN_OPTION_NAME(type, name, value) #name,
// The schedule options, which the plain optimizers (Signum, Lion, Muon) do not take.
const std::vector<std::string> kScheduleNames = {SOFTSIGN_SCHEDULE_OPTIONS(SOFTSIGN_OPTION_NAME)};
#undef SOFTSIGN_OPTION_NAME

bool is_schedule_option(const std::string& name) {
  return std::find(kScheduleNames.begin(), kScheduleNames.end(), name) != kScheduleNames.end();
}

// Options from the keyword arguments of the Python class (Note [one option list]): every
// field of the options list by its name, its default from Options(); an unknown keyword is
// a TypeError, as for a Python function.
template <typename Options>
Options options_from(const char* owner, bool transition, const py::kwargs& kwargs) {
  Options o;
  size_t used = 0;
  Options::for_each_field([&](const char* name, auto field) {
    if (!kwargs.contains(name) || (!transition && is_schedule_option(name))) return;
    using T = std::decay_t<decltype(o.*field)>;
    o.*field = kwargs[name].template cast<T>();
    ++used;
  });
  if (used != kwargs.size()) {
    for (const auto& item : kwargs) {
      const auto key = item.first.cast<std::string>();
      bool known = false;
      Options::for_each_field([&](const char* name, auto) { known = known || key == name; });
      if (!known || (!transition && is_schedule_option(key))) {
        throw py::type_error(std::string(owner) + "() got an unexpected keyword argument '" + key +
                             "'");
      }
    }
  }
  return o;
}

// The defaults of the class's options, {name: value}: what tests/python/test_options.py
// holds to the Python option table.
template <typename Options>
py::dict defaults_of(bool transition) {
  const Options o;
  py::dict out;
  Options::for_each_field([&](const char* name, auto field) {
    if (transition || !is_schedule_option(name)) out[name] = py::cast(o.*field);
  });
  return out;
}

template <typename Optimizer>
void bind_methods(py::class_<Optimizer>& cls, bool transition) {
  using Options = typename Optimizer::Options;
  cls.def("step", &step<Optimizer>, py::arg("closure") = py::none())
      .def("zero_grad", &Optimizer::zero_grad, py::arg("set_to_none") = true)
      .def("temperature", &Optimizer::temperature, py::arg("group") = 0)
      .def("save", &save<Optimizer>, py::arg("path"))
      .def("load", &load<Optimizer>, py::arg("path"))
      .def_static("defaults", [transition] { return defaults_of<Options>(transition); });
}

// An element-wise optimizer: Optimizer(params, **options).
template <typename Optimizer>
void bind_elementwise(py::module_& m, const char* name, bool transition) {
  using Options = typename Optimizer::Options;
  py::class_<Optimizer> cls(m, name);
  cls.def(py::init([name, transition](std::vector<torch::Tensor> params, const py::kwargs& kw) {
            return Optimizer(std::move(params), options_from<Options>(name, transition, kw));
          }),
          py::arg("params"));
  bind_methods(cls, transition);
}

// SoftMuon/Muon: Optimizer(groups, **options) with (params, use_muon) groups; the options
// apply to every group.
template <typename Optimizer>
void bind_muon(py::module_& m, const char* name, bool transition) {
  py::class_<Optimizer> cls(m, name);
  cls.def(py::init([name, transition](
                       const std::vector<std::pair<std::vector<torch::Tensor>, bool>>& groups,
                       const py::kwargs& kw) {
            const auto options = options_from<SoftMuonOptions>(name, transition, kw);
            return Optimizer(muon_groups(groups, options), options);
          }),
          py::arg("groups"));
  bind_methods(cls, transition);
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "softsign's C++ optimizers (softsign::optim) bound for Python";
#define SOFTSIGN_BIND(Soft, Plain, Traits)                                \
  bind_elementwise<softsign::optim::Soft>(m, #Soft, /*transition=*/true); \
  bind_elementwise<softsign::optim::Plain>(m, #Plain, /*transition=*/false);
  SOFTSIGN_ELEMENTWISE_OPTIMIZERS(SOFTSIGN_BIND)
#undef SOFTSIGN_BIND
  bind_muon<SoftMuon>(m, "SoftMuon", /*transition=*/true);
  bind_muon<Muon>(m, "Muon", /*transition=*/false);
}
