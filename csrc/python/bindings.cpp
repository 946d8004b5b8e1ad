// softsign._C: pybind11 bindings of the C++ optimizers, for LibTorch parity tests and for
// users who want the exact C++ objects from Python. No logic lives here.
#include <torch/extension.h>

#include <optional>
#include <string>
#include <vector>

#include "softsign/softsign.h"

namespace py = pybind11;
using softsign::optim::Muon;
using softsign::optim::Signum;
using softsign::optim::SignumOptions;
using softsign::optim::SoftMuon;
using softsign::optim::SoftMuonOptions;
using softsign::optim::SoftSignum;
using softsign::optim::SoftSignumOptions;

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

template <typename Optimizer>
void bind_muon(py::module_& m, const char* name, bool transition) {
  auto cls = py::class_<Optimizer>(m, name);
  cls.def(py::init([transition](
                       const std::vector<std::pair<std::vector<torch::Tensor>, bool>>& groups,
                       double lr, double momentum, bool nesterov, double weight_decay,
                       int64_t ns_steps, std::optional<int64_t> total_steps, double alpha_sign,
                       std::optional<int64_t> sign_steps, std::optional<int64_t> transition_steps,
                       double eps, int64_t newton_iters, double tmax, std::string soft_map,
                       int64_t soft_steps, std::string adjust_lr, double adamw_lr,
                       std::tuple<double, double> adamw_betas, double adamw_eps,
                       double adamw_weight_decay) {
            auto options = SoftMuonOptions(lr)
                               .momentum(momentum)
                               .nesterov(nesterov)
                               .weight_decay(weight_decay)
                               .ns_steps(ns_steps)
                               .alpha_sign(alpha_sign)
                               .eps(eps)
                               .newton_iters(newton_iters)
                               .tmax(tmax)
                               .soft_map(soft_map)
                               .soft_steps(soft_steps)
                               .adjust_lr(adjust_lr)
                               .adamw_lr(adamw_lr)
                               .adamw_betas(adamw_betas)
                               .adamw_eps(adamw_eps)
                               .adamw_weight_decay(adamw_weight_decay);
            if (transition) {
              options.total_steps(total_steps)
                  .sign_steps(sign_steps)
                  .transition_steps(transition_steps);
            }
            return Optimizer(muon_groups(groups, options), options);
          }),
          py::arg("groups"), py::kw_only(), py::arg("lr") = 0.02, py::arg("momentum") = 0.95,
          py::arg("nesterov") = true, py::arg("weight_decay") = 0.0, py::arg("ns_steps") = 5,
          py::arg("total_steps") = py::none(), py::arg("alpha_sign") = 0.9,
          py::arg("sign_steps") = py::none(), py::arg("transition_steps") = py::none(),
          py::arg("eps") = 1e-4, py::arg("newton_iters") = 10, py::arg("tmax") = 1e9,
          py::arg("soft_map") = "newton_schulz", py::arg("soft_steps") = 5,
          py::arg("adjust_lr") = "original", py::arg("adamw_lr") = 3e-4,
          py::arg("adamw_betas") = std::make_tuple(0.9, 0.95), py::arg("adamw_eps") = 1e-10,
          py::arg("adamw_weight_decay") = 0.0)
      .def("step", &step<Optimizer>, py::arg("closure") = py::none())
      .def("zero_grad", &Optimizer::zero_grad, py::arg("set_to_none") = true)
      .def("temperature", &Optimizer::temperature, py::arg("group") = 0)
      .def("save", &save<Optimizer>, py::arg("path"))
      .def("load", &load<Optimizer>, py::arg("path"));
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "softsign's C++ optimizers (softsign::optim) bound for Python";

  py::class_<SoftSignum>(m, "SoftSignum")
      .def(py::init([](std::vector<torch::Tensor> params, double lr, double momentum,
                       double dampening, double weight_decay, bool nesterov, bool maximize,
                       std::optional<int64_t> total_steps, double alpha_sign,
                       std::optional<int64_t> sign_steps, std::optional<int64_t> transition_steps,
                       double eps, int64_t newton_iters, double tmax) {
             return SoftSignum(std::move(params), SoftSignumOptions(lr)
                                                      .momentum(momentum)
                                                      .dampening(dampening)
                                                      .weight_decay(weight_decay)
                                                      .nesterov(nesterov)
                                                      .maximize(maximize)
                                                      .total_steps(total_steps)
                                                      .alpha_sign(alpha_sign)
                                                      .sign_steps(sign_steps)
                                                      .transition_steps(transition_steps)
                                                      .eps(eps)
                                                      .newton_iters(newton_iters)
                                                      .tmax(tmax));
           }),
           py::arg("params"), py::kw_only(), py::arg("lr") = 1e-3, py::arg("momentum") = 0.9,
           py::arg("dampening") = 0.0, py::arg("weight_decay") = 0.0, py::arg("nesterov") = false,
           py::arg("maximize") = false, py::arg("total_steps") = py::none(),
           py::arg("alpha_sign") = 0.9, py::arg("sign_steps") = py::none(),
           py::arg("transition_steps") = py::none(), py::arg("eps") = 1e-4,
           py::arg("newton_iters") = 10, py::arg("tmax") = 1e9)
      .def("step", &step<SoftSignum>, py::arg("closure") = py::none())
      .def("zero_grad", &SoftSignum::zero_grad, py::arg("set_to_none") = true)
      .def("temperature", &SoftSignum::temperature, py::arg("group") = 0)
      .def("save", &save<SoftSignum>, py::arg("path"))
      .def("load", &load<SoftSignum>, py::arg("path"));

  py::class_<Signum>(m, "Signum")
      .def(py::init([](std::vector<torch::Tensor> params, double lr, double momentum,
                       double dampening, double weight_decay, bool nesterov, bool maximize) {
             return Signum(std::move(params), SignumOptions(lr)
                                                  .momentum(momentum)
                                                  .dampening(dampening)
                                                  .weight_decay(weight_decay)
                                                  .nesterov(nesterov)
                                                  .maximize(maximize));
           }),
           py::arg("params"), py::kw_only(), py::arg("lr") = 1e-3, py::arg("momentum") = 0.9,
           py::arg("dampening") = 0.0, py::arg("weight_decay") = 0.0, py::arg("nesterov") = false,
           py::arg("maximize") = false)
      .def("step", &step<Signum>, py::arg("closure") = py::none())
      .def("zero_grad", &Signum::zero_grad, py::arg("set_to_none") = true)
      .def("save", &save<Signum>, py::arg("path"))
      .def("load", &load<Signum>, py::arg("path"));

  // (params, use_muon) groups; the options apply to every group.
  bind_muon<SoftMuon>(m, "SoftMuon", /*transition=*/true);
  bind_muon<Muon>(m, "Muon", /*transition=*/false);
}
