// Reader of the golden files written by make_golden.py (the format is documented there).
#pragma once

#include <gtest/gtest.h>

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
