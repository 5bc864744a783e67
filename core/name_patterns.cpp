#include "core/name_patterns.h"

#include "core/error.h"

namespace hallo {

NamePatterns::NamePatterns(const std::vector<std::string>& patterns, std::string what)
    : patterns_(patterns), used_(patterns.size(), false), what_(std::move(what)) {
  for (const auto& p : patterns) {
    try {
      res_.emplace_back(p, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      fail("{}: '{}' is not a valid regular expression ({})", what_, p, e.what());
    }
  }
}

bool NamePatterns::match(const std::string& name) {
  bool hit = false;
  for (size_t i = 0; i < res_.size(); ++i)
    if (std::regex_search(name, res_[i])) hit = used_[i] = true;
  return hit;
}

void NamePatterns::require_all_used(const std::string& of_what) const {
  for (size_t i = 0; i < res_.size(); ++i)
    if (!used_[i]) fail("{}: '{}' matches no {}", what_, patterns_[i], of_what);
}

}  // namespace hallo
