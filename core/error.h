#pragma once
// One exception type for every user-facing failure. Messages always name the
// file (or object) and the problem, so the CLI can print them verbatim.
#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace hallo {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

// Throws hallo::Error("<where>: <formatted message>").
template <typename... Args>
[[noreturn]] void fail_at(const std::string& where, fmt::format_string<Args...> f,
                          Args&&... args) {
  throw Error(where + ": " + fmt::format(f, std::forward<Args>(args)...));
}

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> f, Args&&... args) {
  throw Error(fmt::format(f, std::forward<Args>(args)...));
}

// Re-throws the current exception with "<where>: " prepended unless the message
// already starts with it. Use in catch blocks around third-party calls.
[[noreturn]] void rethrow_with_context(const std::string& where);

}  // namespace hallo
