// hallo export RUN_DIR|CHECKPOINT|MODEL_FOLDER --out net.safetensors [--ema] [--merge-lora]
//              [--torch-zip net.pth]
// The whole Hallo net as one safetensors file in upstream's net.pth key layout
// (reference_unet.*, denoising_unet.*, face_locator.*, imageproj.*, audioproj.*), the
// file upstream's Python loads with safetensors.torch.load_file + Net.load_state_dict;
// optionally also as a torch.save zip archive (torch.load(..., weights_only=True)).
// Which folder is read: tools/hallo/model_source.h.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <filesystem>

#include "core/error.h"
#include "model/io/safetensors.h"
#include "model/io/torch_zip_writer.h"
#include "model/nn/lora.h"
#include "tools/hallo/commands.h"
#include "tools/hallo/model_source.h"
#include "trainer/model_folder.h"

namespace hallo::cli {

namespace fs = std::filesystem;

Command register_export(CLI::App& app, const GlobalOptions&) {
  struct Opts {
    std::string input, out, torch_zip;
    bool ema = false, merge_lora = false;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("export", "Write a trained net as one .safetensors in upstream's net.pth key layout");
  sub->add_option("input", o->input, "run folder, checkpoint folder or model folder")->required();
  sub->add_option("--out", o->out, "output .safetensors (written to a temp name, then renamed)")->required();
  sub->add_flag("--ema", o->ema, "the EMA weights instead of the live ones");
  sub->add_flag("--merge-lora", o->merge_lora,
                "fold the run's LoRA adapters into their base weights (W += alpha/rank * B A)");
  sub->add_option("--torch-zip", o->torch_zip, "also a torch.save zip archive (net.pth) with the same tensors");
  return [o]() {
    const ModelSource src = resolve_model_source(o->input, o->ema);
    const trainer::ModelFolder m = trainer::read_model_folder(src.model);
    const io::StateDict net = trainer::net_state_dict(m);
    std::vector<io::TensorRecord> recs = net.weights().tensors;
    if (!src.ema.empty()) {
      // The checkpoint's averages replace the trained parameters they shadow.
      const io::StateDict ema = io::StateDict::open(src.ema);
      size_t replaced = 0;
      for (auto& r : recs)
        if (ema.contains(r.name)) {
          const at::Tensor t = ema.tensor(r.name);
          if (t.sizes() != net.tensor(r.name).sizes())
            fail_at(src.ema.string(), "'{}' is {}, the net's is {}", r.name, c10::str(t.sizes()),
                    c10::str(net.tensor(r.name).sizes()));
          r = io::from_tensor(r.name, t.to(net.tensor(r.name).scalar_type()));
          ++replaced;
        }
      if (replaced != ema.size())
        fail_at(src.ema.string(), "{} of its {} tensors name no parameter of the net", ema.size() - replaced, ema.size());
    }
    const nn::LoraConfig lora =
        nn::LoraConfig::from_json(m.net_config.value("lora", nlohmann::json()), (src.model / "net_config.json").string());
    if (lora.enabled()) {
      // Upstream's Net has no adapters: the full net exists only merged.
      if (!o->merge_lora)
        fail_at(src.model.string(),
                "the net carries LoRA adapters (a run with a lora: block): pass --merge-lora for the full net, "
                "or use the run's final_lora.safetensors with `hallo animate --lora`");
      nn::merge_own_lora(recs, lora.scaling(), src.model.string());
    } else if (o->merge_lora) {
      fail_at(src.model.string(), "--merge-lora: the net has no LoRA adapters");
    }
    io::write_safetensors(o->out, recs,
                          {{"format", "pt"}, {"layout", "hallo net.pth"}, {"stage", std::to_string(m.stage)},
                           {"step", std::to_string(m.step)}, {"ema", o->ema ? "true" : "false"},
                           {"lora_merged", lora.enabled() ? "true" : "false"},
                           {"source", fs::absolute(src.model).string()}});
    spdlog::info("{} tensors (stage {}, step {}{}{}) -> {}", recs.size(), m.stage, m.step, o->ema ? ", EMA" : "",
                 lora.enabled() ? ", LoRA merged" : "", o->out);
    if (!o->torch_zip.empty()) {
      io::write_torch_zip(o->torch_zip, recs);
      spdlog::info("torch.save zip archive -> {}", o->torch_zip);
    }
    return 0;
  };
}

}  // namespace hallo::cli
