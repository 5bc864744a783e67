// hallo export RUN_DIR|CHECKPOINT|MODEL_FOLDER --out net.safetensors [--ema]
// The whole Hallo net as one safetensors file in upstream's net.pth key layout
// (reference_unet.*, denoising_unet.*, face_locator.*, imageproj.*, audioproj.*), the
// file upstream's Python loads with safetensors.torch.load_file + Net.load_state_dict.
//   RUN_DIR        its final/ model folder (final_ema/ with --ema); without final/, the
//                  newest complete checkpoint
//   CHECKPOINT     its model/ folder; --ema applies the checkpoint's ema.safetensors
//   MODEL_FOLDER   as is; --ema needs the <folder>_ema sibling a run writes
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <filesystem>

#include "core/error.h"
#include "model/io/safetensors.h"
#include "tools/hallo/commands.h"
#include "trainer/checkpoint.h"
#include "trainer/model_folder.h"

namespace hallo::cli {

namespace fs = std::filesystem;

namespace {

struct Source {
  fs::path model;  // the model folder to read
  fs::path ema;    // ema.safetensors to apply over the trainable weights (checkpoints), or empty
};

Source resolve(const fs::path& in, bool ema) {
  if (!fs::exists(in)) fail_at(in.string(), "no such run, checkpoint or model folder");
  if (trainer::is_model_folder(in)) {
    if (!ema) return {in, {}};
    const fs::path sib = in.parent_path() / (in.filename().string() + "_ema");
    if (!trainer::is_model_folder(sib))
      fail_at(in.string(), "--ema: no {} next to this model folder (train with an ema: block)", sib.filename().string());
    return {sib, {}};
  }
  if (fs::exists(in / "checkpoint.json")) {
    trainer::verify_checkpoint(in);
    if (ema && !fs::exists(in / "ema.safetensors"))
      fail_at(in.string(), "--ema: this checkpoint has no ema.safetensors (the run had no ema: block)");
    return {in / "model", ema ? in / "ema.safetensors" : fs::path()};
  }
  if (trainer::is_model_folder(in / "final")) return resolve(in / "final", ema);
  if (fs::is_directory(in / "checkpoints")) {
    trainer::CheckpointStore store(in / "checkpoints", 1 << 30, /*cleanup=*/false);
    if (const auto last = store.latest()) return resolve(*last, ema);
  }
  fail_at(in.string(), "not a run folder (final/ or checkpoints/), a checkpoint or a model folder");
}

}  // namespace

Command register_export(CLI::App& app, const GlobalOptions&) {
  struct Opts {
    std::string input, out, torch_zip;
    bool ema = false;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("export", "Write a trained net as one .safetensors in upstream's net.pth key layout");
  sub->add_option("input", o->input, "run folder, checkpoint folder or model folder")->required();
  sub->add_option("--out", o->out, "output .safetensors (written to a temp name, then renamed)")->required();
  sub->add_flag("--ema", o->ema, "the EMA weights instead of the live ones");
  sub->add_option("--torch-zip", o->torch_zip, "also a torch.save zip archive (not implemented yet)");
  return [o]() {
    if (!o->torch_zip.empty())
      fail("--torch-zip is not implemented yet; load {} in Python with safetensors.torch.load_file", o->out);
    const Source src = resolve(o->input, o->ema);
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
    io::write_safetensors(o->out, recs,
                          {{"format", "pt"}, {"layout", "hallo net.pth"}, {"stage", std::to_string(m.stage)},
                           {"step", std::to_string(m.step)}, {"ema", o->ema ? "true" : "false"},
                           {"source", fs::absolute(src.model).string()}});
    spdlog::info("{} tensors (stage {}, step {}{}) -> {}", recs.size(), m.stage, m.step, o->ema ? ", EMA" : "", o->out);
    return 0;
  };
}

}  // namespace hallo::cli
