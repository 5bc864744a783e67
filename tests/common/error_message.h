#pragma once
// The message of the hallo::Error a callable throws; a test failure if it throws none.
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "core/error.h"

namespace hallo::test {

inline std::string error_message(const std::function<void()>& f) {
  try {
    f();
  } catch (const ::hallo::Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected hallo::Error";
  return {};
}

}  // namespace hallo::test
