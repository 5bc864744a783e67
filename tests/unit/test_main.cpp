// gtest entry point: the same runtime setup as the CLI (threads from
// HALLO_THREADS, malloc tuning, oneDNN ISA cap), so tests see what users run.
#include <gtest/gtest.h>

#include "core/runtime.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  hallo::configure_runtime();
  return RUN_ALL_TESTS();
}
