#pragma once
// `stage: vae`: fits a VAE to the shards' frames (reconstruction + KL,
// losses/vae_loss.h). The demo trains its tiny VAE this way before stage 1; real
// runs use the frozen SD VAE. The same run machinery as the diffusion stages: the
// stage-1 sampler's frames (target and reference, two images per sample), AdamW and
// the LR schedule, scalars.jsonl / TensorBoard, checkpoints through CheckpointStore
// (model/ is the VAE folder) with exact resume, SIGINT/SIGTERM handling and a fixed
// held-out batch whose reconstruction error is logged as heldout_loss.
//
// Output: RUN_DIR/final/ = a diffusers VAE folder (config.json,
// diffusion_pytorch_model.safetensors) that vae_model_path takes.
#include <memory>

#include "trainer/batch_source.h"
#include "trainer/train_config.h"
#include "trainer/trainer.h"

namespace hallo::trainer {

class VaeTrainer {
 public:
  VaeTrainer(TrainConfig config, TrainOptions options, std::unique_ptr<BatchSource> data);
  ~VaeTrainer();
  TrainResult run();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hallo::trainer
