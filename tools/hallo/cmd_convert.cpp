// hallo convert IN OUT.safetensors: any supported weights source to safetensors,
// names and dtypes unchanged unless asked. Nothing is written unless the whole
// input was read and validated, and the output appears only by atomic rename.
#include <ATen/ATen.h>
#include <spdlog/spdlog.h>

#include "core/error.h"
#include "core/progress.h"
#include "model/io/safetensors.h"
#include "model/io/state_dict.h"
#include "model/io/weights.h"
#include "tools/hallo/commands.h"

namespace hallo::cli {

Command register_convert(CLI::App& app, const GlobalOptions&) {
  struct Opts {
    std::string in, out, dtype, prefix;
    std::vector<std::string> strip;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("convert", "Convert weights (torch.save, folder, safetensors) to .safetensors");
  sub->add_option("input", o->in, "input file or diffusers/HF folder")->required();
  sub->add_option("output", o->out, "output .safetensors (written to a temp name, then renamed)")->required();
  sub->add_option("--dtype", o->dtype, "cast floating tensors to f16, bf16 or f32 (integers are kept)")
      ->check(CLI::IsMember({"f16", "bf16", "f32"}));
  sub->add_option("--prefix", o->prefix, "keep only tensors under this prefix and strip it (e.g. 'denoising_unet.')");
  sub->add_option("--strip-prefix", o->strip, "strip this prefix where present, keep every tensor (repeatable)");
  return [o]() {
    if (o->out.size() < 12 || o->out.compare(o->out.size() - 12, 12, ".safetensors") != 0)
      fail_at(o->out, "output must end in .safetensors");
    io::WeightSet ws = io::open_weights(o->in);
    if (!o->prefix.empty()) {
      ws = io::select_prefix(ws, o->prefix, true);
      if (ws.tensors.empty()) fail_at(o->in, "no tensor names start with prefix '{}'", o->prefix);
    }
    for (const auto& p : o->strip) ws = io::strip_prefix(ws, p);
    if (!o->dtype.empty()) {
      const io::DType target = o->dtype == "f16" ? io::DType::F16 : o->dtype == "bf16" ? io::DType::BF16 : io::DType::F32;
      ProgressBar bar("cast", ws.tensors.size(), " tensors");
      for (auto& t : ws.tensors) {
        if (io::dtype_is_floating(t.dtype) && t.dtype != target)
          t = io::from_tensor(t.name, io::to_tensor(t).to(io::to_scalar_type(target)));
        bar.advance();
      }
    }
    auto meta = ws.metadata;
    meta.emplace("format", "pt");  // what diffusers/transformers expect in __metadata__
    io::write_safetensors(o->out, ws.tensors, meta);
    spdlog::info("wrote {} tensors ({} bytes) to {}", ws.tensors.size(), ws.total_bytes(), o->out);
    return 0;
  };
}

}  // namespace hallo::cli
