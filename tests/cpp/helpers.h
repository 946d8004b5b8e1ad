// What the C++ optimizer tests share: the optimizers' names, a warning collector, error
// and snapshot checks, and temporary checkpoint paths.
#pragma once

#include <c10/util/Exception.h>
#include <gtest/gtest.h>
#include <softsign/softsign.h>
#include <torch/torch.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <vector>

// The optimizers and their options under test, by their own names.
using namespace softsign::optim;  // NOLINT(google-build-using-namespace)
using torch::optim::OptimizerParamGroup;

// A c10 warning handler for the tests: collects every warning while it lives, and makes
// TORCH_WARN_ONCE warn each time, so that a test sees its warning whatever ran before it.
class WarningCollector : public c10::WarningHandler {
 public:
  WarningCollector() : guard_(this) {}
  void process(const c10::Warning& warning) override { messages.push_back(warning.msg()); }
  std::vector<std::string> messages;

 private:
  c10::WarningUtils::WarningHandlerGuard guard_;
  c10::WarningUtils::WarnAlways always_{true};
};

// Whether `run` throws a c10::Error whose message holds `text`.
inline testing::AssertionResult throws_with(const std::function<void()>& run,
                                            const std::string& text) {
  try {
    run();
  } catch (const c10::Error& e) {
    const std::string message = e.what_without_backtrace();
    if (message.find(text) != std::string::npos) return testing::AssertionSuccess();
    return testing::AssertionFailure() << "the error does not say '" << text << "': " << message;
  }
  return testing::AssertionFailure() << "no error (expected one saying '" << text << "')";
}

// Detached copies of the params, to check later that a failed step changed nothing.
inline std::vector<torch::Tensor> snapshot(const std::vector<torch::Tensor>& params) {
  std::vector<torch::Tensor> out;
  for (const auto& p : params) out.push_back(p.detach().clone());
  return out;
}

inline void expect_unchanged(const std::vector<torch::Tensor>& params,
                             const std::vector<torch::Tensor>& before) {
  for (size_t i = 0; i < params.size(); ++i) {
    EXPECT_TRUE(torch::equal(params[i], before[i])) << "param " << i << " changed";
  }
}

// A checkpoint path of this process in the test's temporary directory.
inline std::string temp_path(const std::string& name) {
  return testing::TempDir() + "softsign_" + std::to_string(getpid()) + "_" + name + ".pt";
}
