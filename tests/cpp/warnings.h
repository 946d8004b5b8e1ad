// A c10 warning handler for the tests: collects every warning while it lives, and makes
// TORCH_WARN_ONCE warn each time, so that a test sees its warning whatever ran before it.
#pragma once

#include <c10/util/Exception.h>

#include <string>
#include <vector>

class WarningCollector : public c10::WarningHandler {
 public:
  WarningCollector() : guard_(this) {}
  void process(const c10::Warning& warning) override { messages.push_back(warning.msg()); }
  std::vector<std::string> messages;

 private:
  c10::WarningUtils::WarningHandlerGuard guard_;
  c10::WarningUtils::WarnAlways always_{true};
};
