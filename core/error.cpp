#include "core/error.h"

#include <exception>

namespace hallo {

void rethrow_with_context(const std::string& where) {
  try {
    throw;
  } catch (const std::exception& e) {
    std::string msg = e.what();
    // c10::Error appends a C++ backtrace after the first line; users need only the reason.
    if (auto nl = msg.find("\nException raised from"); nl != std::string::npos) msg.resize(nl);
    if (msg.rfind(where, 0) == 0) throw Error(msg);
    throw Error(where + ": " + msg);
  }
}

}  // namespace hallo
