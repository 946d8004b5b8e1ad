// Trains a small MLP to regress y = sin(3 x0) * cos(2 x1) + 0.5 x2^2 with SoftSignum: Signum
// for the first 90% of the steps, then the soft-sign transition. Prints the loss every
// 50 steps, and every 10 steps with the temperature once the transition has started.
#include <softsign/softsign.h>
#include <torch/torch.h>

#include <cstdio>

int main() {
  torch::manual_seed(0);
  const int64_t total_steps = 600;

  const auto x = torch::rand({512, 3}) * 2 - 1;
  const auto y = (torch::sin(3 * x.select(1, 0)) * torch::cos(2 * x.select(1, 1)) +
                  0.5 * x.select(1, 2).pow(2))
                     .unsqueeze(1);

  torch::nn::Sequential model(torch::nn::Linear(3, 64), torch::nn::Tanh(),
                              torch::nn::Linear(64, 64), torch::nn::Tanh(),
                              torch::nn::Linear(64, 1));
  const auto options =
      softsign::optim::SoftSignumOptions(3e-3).momentum(0.9).total_steps(total_steps);
  softsign::optim::SoftSignum optimizer(model->parameters(), options);
  const int64_t sign_steps = softsign::optim::resolve_phases(options).sign_steps;

  for (int64_t step = 1; step <= total_steps; ++step) {
    const auto loss = optimizer.step([&] {
      optimizer.zero_grad();
      auto l = torch::mse_loss(model->forward(x), y);
      l.backward();
      return l;
    });
    if (step % 50 == 0 || (step > sign_steps && step % 10 == 0)) {
      // temperature() reads a device value: fine for logging every few steps.
      const auto tau = optimizer.temperature();
      if (tau) {
        std::printf("step %4lld  loss %.6f  temperature %.4g\n", static_cast<long long>(step),
                    loss.item<double>(), *tau);
      } else {
        std::printf("step %4lld  loss %.6f  (sign phase)\n", static_cast<long long>(step),
                    loss.item<double>());
      }
    }
  }
  return 0;
}
