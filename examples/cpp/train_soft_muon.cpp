// Trains a small MLP on the regression task of train_soft_signum.cpp with SoftMuon: the
// hidden weight matrices take Muon's orthogonalized steps, then the soft spectral map over
// the last 30% of the steps; biases and the 1-wide output layer go to the auxiliary AdamW.
// Prints the loss every 50 steps, and every 10 steps with the temperature in the transition.
#include <softsign/softsign.h>
#include <torch/torch.h>

#include <cstdio>
#include <memory>
#include <vector>

int main() {
  torch::manual_seed(0);
  const int64_t total_steps = 600;

  const auto x = torch::rand({512, 3}) * 2 - 1;
  const auto y = (torch::sin(3 * x.select(1, 0)) * torch::cos(2 * x.select(1, 1)) +
                  0.5 * x.select(1, 2).pow(2))
                     .unsqueeze(1);

  torch::nn::Linear in(3, 64), hidden(64, 64), out(64, 1);
  torch::nn::Sequential model(in, torch::nn::Tanh(), hidden, torch::nn::Tanh(), out);

  // Hidden matrices on the matrix path (a group without options takes the defaults); the
  // rest (input and output layers, biases) on AdamW: a copy of the defaults with
  // use_muon(false).
  using softsign::optim::SoftMuonOptions;
  const auto options = SoftMuonOptions(0.02)
                           .total_steps(total_steps)
                           .alpha_sign(0.7)
                           .soft_map("accurate")
                           .adamw_lr(3e-3);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<torch::Tensor>{hidden->weight});
  groups.emplace_back(
      std::vector<torch::Tensor>{in->weight, in->bias, hidden->bias, out->weight, out->bias},
      std::make_unique<SoftMuonOptions>(SoftMuonOptions(options).use_muon(false)));
  softsign::optim::SoftMuon optimizer(groups, options);
  const int64_t sign_steps = softsign::optim::resolve_phases(options).sign_steps;
  torch::optim::StepLR scheduler(optimizer, /*step_size=*/200, /*gamma=*/0.5);

  for (int64_t step = 1; step <= total_steps; ++step) {
    const auto loss = optimizer.step([&] {
      optimizer.zero_grad();
      auto l = torch::mse_loss(model->forward(x), y);
      l.backward();
      return l;
    });
    scheduler.step();
    if (step % 50 == 0 || (step > sign_steps && step % 10 == 0)) {
      const auto tau = optimizer.temperature();
      if (tau) {
        std::printf("step %4lld  loss %.6f  temperature %.4g\n", static_cast<long long>(step),
                    loss.item<double>(), *tau);
      } else {
        std::printf("step %4lld  loss %.6f  (Muon phase)\n", static_cast<long long>(step),
                    loss.item<double>());
      }
    }
  }
  return 0;
}
