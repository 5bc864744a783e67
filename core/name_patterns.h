#pragma once
// Regexes over module / parameter names (ECMAScript, searched anywhere in the name),
// as configs give them (trainable_patterns, lora.patterns): each must compile and
// must match at least one name, or the config is wrong; both errors name the pattern.
#include <regex>
#include <string>
#include <vector>

namespace hallo {

class NamePatterns {
 public:
  // `what` names the config key in errors ("trainable_patterns").
  NamePatterns(const std::vector<std::string>& patterns, std::string what);

  bool empty() const { return res_.empty(); }
  // True when any pattern matches; every matching pattern is marked used.
  bool match(const std::string& name);
  // Throws naming the first pattern that matched nothing ("... matches no <of_what>").
  void require_all_used(const std::string& of_what) const;

 private:
  std::vector<std::string> patterns_;
  std::vector<std::regex> res_;
  std::vector<bool> used_;
  std::string what_;
};

}  // namespace hallo
