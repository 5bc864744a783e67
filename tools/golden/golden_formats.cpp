// formats_probe: decode each stored dtype exactly (bf16/f16 widened to f32).
#include <ATen/ATen.h>

#include "core/error.h"
#include "tools/golden/golden.h"

namespace hallo::golden {

Outputs run_formats_probe(const GoldenCase& c) {
  if (!c.weights) fail("{}: formats_probe needs {}.weights.safetensors", c.name, c.name);
  const auto& w = *c.weights;
  return {
      {"out.bf16_as_f32", w.tensor("probe.bf16").to(at::kFloat)},
      {"out.f16_as_f32", w.tensor("probe.f16").to(at::kFloat)},
      {"out.f32", w.tensor("probe.f32").clone()},
      {"out.i64", w.tensor("probe.i64").clone()},
      {"out.scalar_f32", w.tensor("probe.scalar_f32").clone()},
      {"out.empty_f32", w.tensor("probe.empty_f32").clone()},
  };
}

}  // namespace hallo::golden
