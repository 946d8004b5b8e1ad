// Reader of the golden files written by make_golden.py (the format is documented there).
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdint>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

using StepParam = std::pair<int64_t, int64_t>;  // (1-based step, param index)

struct GoldenFile {
  std::vector<std::pair<std::string, std::string>> raw_options;  // in file order
  int64_t steps = 0;
  std::vector<std::vector<int64_t>> shapes;
  std::vector<std::vector<double>> init;
  std::map<int64_t, bool> muon;  // SoftMuon files: param index -> in the use_muon group
  std::map<StepParam, std::vector<double>> grads;
  std::map<StepParam, std::vector<double>> expect;
  std::map<int64_t, std::optional<double>> tau;
};

inline std::vector<double> read_values(std::istringstream& line) {
  std::vector<double> values;
  std::string token;
  while (line >> token) values.push_back(std::stod(token));
  return values;
}

inline GoldenFile read_golden_file(const std::string& name) {
  const std::string path = std::string(SOFTSIGN_GOLDEN_DIR) + "/" + name + ".txt";
  std::ifstream file(path);
  EXPECT_TRUE(file.good()) << "cannot open " << path;
  GoldenFile g;
  std::string text;
  while (std::getline(file, text)) {
    if (text.empty() || text[0] == '#') continue;
    std::istringstream line(text);
    std::string key;
    line >> key;
    if (key == "option") {
      std::string option, value;
      line >> option >> value;
      g.raw_options.emplace_back(option, value);
    } else if (key == "steps") {
      line >> g.steps;
    } else if (key == "param") {
      int64_t index;
      std::string word;
      line >> index >> word;
      g.shapes.resize(index + 1);
      int64_t d;
      while (line >> d) g.shapes[index].push_back(d);
    } else if (key == "muon") {
      int64_t index, flag;
      line >> index >> flag;
      g.muon[index] = flag != 0;
    } else if (key == "init") {
      int64_t index;
      line >> index;
      g.init.resize(index + 1);
      g.init[index] = read_values(line);
    } else if (key == "grad" || key == "expect") {
      int64_t step, index;
      line >> step >> index;
      (key == "grad" ? g.grads : g.expect)[{step, index}] = read_values(line);
    } else if (key == "tau") {
      int64_t step;
      std::string value;
      line >> step >> value;
      g.tau[step] = value == "none" ? std::nullopt : std::optional<double>(std::stod(value));
    } else {
      ADD_FAILURE() << "unknown record in " << path << ": " << key;
    }
  }
  return g;
}

// ---- running a golden file -------------------------------------------------------------

// A golden option's text as the field's type (make_golden.py writes flags as 0/1).
inline void parse_option(const std::string& text, double& out) { out = std::stod(text); }
inline void parse_option(const std::string& text, bool& out) { out = std::stoi(text) != 0; }
inline void parse_option(const std::string& text, int64_t& out) { out = std::stoll(text); }
inline void parse_option(const std::string& text, std::optional<int64_t>& out) {
  out = std::stoll(text);
}
inline void parse_option(const std::string& text, std::string& out) { out = text; }
template <typename T>
void parse_option(const std::string& text, T&) {
  ADD_FAILURE() << "golden files hold no option of this type (value " << text << ")";
}

// The file's options over Options' defaults, each found by its name in the option list
// (Note [one option list] in softsign/optim/options.h).
template <typename Options>
Options golden_options(const GoldenFile& g) {
  Options options;
  for (const auto& [name, value] : g.raw_options) {
    bool known = false;
    Options::for_each_field([&](const char* field_name, auto field) {
      if (name == field_name) {
        parse_option(value, options.*field);
        known = true;
      }
    });
    if (!known) ADD_FAILURE() << "unknown option in golden file: " << name;
  }
  return options;
}

// Golden values (written as float64) in `dtype`, shaped.
inline torch::Tensor golden_tensor(const std::vector<double>& values,
                                   const std::vector<int64_t>& shape, torch::Dtype dtype) {
  return torch::tensor(values, torch::kFloat64).to(dtype).reshape(shape);
}

// The initial params, leaves that require grad.
inline std::vector<torch::Tensor> golden_params(const GoldenFile& g, torch::Dtype dtype) {
  std::vector<torch::Tensor> params;
  for (size_t i = 0; i < g.init.size(); ++i) {
    params.push_back(golden_tensor(g.init[i], g.shapes[i], dtype).requires_grad_(true));
  }
  return params;
}

// Sets step k's gradients (none where the file has no grad line), steps, and checks the
// temperature against the reference's within `rtol`; `check(k)` then compares the params.
template <typename Optimizer, typename Check>
void run_golden(const GoldenFile& g, Optimizer& optimizer, std::vector<torch::Tensor>& params,
                double rtol, const Check& check) {
  ASSERT_GT(g.steps, 0);
  for (int64_t k = 1; k <= g.steps; ++k) {
    for (size_t i = 0; i < params.size(); ++i) {
      const auto grad = g.grads.find({k, static_cast<int64_t>(i)});
      params[i].mutable_grad() =
          grad == g.grads.end() ? torch::Tensor()
                                : golden_tensor(grad->second, g.shapes[i], params[i].scalar_type());
    }
    optimizer.step();
    check(k);
    const std::optional<double> expected_tau = g.tau.at(k);
    const std::optional<double> tau = optimizer.temperature();
    ASSERT_EQ(tau.has_value(), expected_tau.has_value()) << "step " << k;
    if (tau) {
      EXPECT_NEAR(*tau, *expected_tau, rtol * *expected_tau) << "step " << k;
    }
  }
}
