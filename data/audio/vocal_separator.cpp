#include "data/audio/vocal_separator.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>
#include <opencv2/dnn.hpp>
#include <ATen/core/grad_mode.h>

#include <cmath>

#include "core/error.h"
#include "model/io/hf_config.h"

namespace hallo::audio {

SeparatorConfig SeparatorConfig::from_json(const nlohmann::json& j, const std::string& where) {
  io::JsonFields f(j, where);
  for (const auto& k : f.unknown_keys({"onnx", "sample_rate", "n_fft", "hop_length", "dim_f", "dim_t", "overlap",
                                       "compensate", "output_is_vocals", "denoise"}))
    fail_at(where, "unknown separator field '{}'", k);
  SeparatorConfig c;
  c.onnx = f.get_or<std::string>("onnx", c.onnx);
  c.sample_rate = f.get_or<int>("sample_rate", c.sample_rate);
  c.n_fft = f.get_or<int>("n_fft", c.n_fft);
  c.hop_length = f.get_or<int>("hop_length", c.hop_length);
  c.dim_f = f.get_or<int>("dim_f", c.dim_f);
  c.dim_t = f.get_or<int>("dim_t", c.dim_t);
  c.overlap = f.get_or<double>("overlap", c.overlap);
  c.compensate = f.get_or<double>("compensate", c.compensate);
  c.output_is_vocals = f.get_or<bool>("output_is_vocals", c.output_is_vocals);
  c.denoise = f.get_or<bool>("denoise", c.denoise);
  c.validate(where);
  return c;
}

void SeparatorConfig::validate(const std::string& where) const {
  if (sample_rate <= 0 || n_fft <= 0 || hop_length <= 0 || dim_t <= 0) fail_at(where, "separator sizes must be positive");
  if (dim_f <= 0 || dim_f > n_fft / 2 + 1)
    fail_at(where, "separator dim_f {} must be in 1..n_fft/2+1 ({})", dim_f, n_fft / 2 + 1);
  if (overlap < 0 || overlap >= 1) fail_at(where, "separator overlap must be in [0, 1), got {}", overlap);
}

struct VocalSeparator::Net {
  cv::dnn::Net net;
};

VocalSeparator::VocalSeparator(SeparatorConfig cfg) : cfg_(std::move(cfg)), net_(std::make_unique<Net>()) {
  cfg_.validate(cfg_.onnx.empty() ? "separator" : cfg_.onnx);
  if (cfg_.onnx.empty()) fail_at("separator", "no ONNX model given");
  if (!std::filesystem::exists(cfg_.onnx)) fail_at(cfg_.onnx, "no such separation model file");
  try {
    net_->net = cv::dnn::readNetFromONNX(cfg_.onnx);
  } catch (const cv::Exception& e) {
    fail_at(cfg_.onnx, "not a loadable ONNX model: {}", e.what());
  }
  if (net_->net.empty()) fail_at(cfg_.onnx, "not a loadable ONNX model");
}

VocalSeparator::~VocalSeparator() = default;

std::vector<float> VocalSeparator::separate(const std::vector<float>& mono) {
  at::NoGradGuard ng;
  if (mono.empty()) return {};
  const int64_t n = static_cast<int64_t>(mono.size());
  const int64_t bins = cfg_.n_fft / 2 + 1, df = cfg_.dim_f, dt = cfg_.dim_t;
  auto x = at::from_blob(const_cast<float*>(mono.data()), {n}, at::kFloat).clone();
  // Reflect padding needs more than n_fft/2 samples: very short inputs are zero-padded
  // for the analysis and trimmed back to n at the end.
  const int64_t analysed = std::max<int64_t>(n, cfg_.n_fft / 2 + 1);
  if (analysed > n) x = at::constant_pad_nd(x, {0, analysed - n});
  auto window = at::hann_window(cfg_.n_fft, /*periodic=*/true, at::kFloat);
  // Mono input feeds both stereo channels (the models are stereo).
  auto spec = at::stft(x, cfg_.n_fft, cfg_.hop_length, cfg_.n_fft, window, /*center=*/true, "reflect",
                       /*normalized=*/false, /*onesided=*/true, /*return_complex=*/true);  // [bins, T]
  const int64_t frames = spec.size(1);
  auto ri = at::view_as_real(spec.narrow(0, 0, df)).permute({2, 0, 1});  // [2, df, T] (re, im)
  auto input = at::cat(at::TensorList{ri, ri}, 0).contiguous();                         // [4, df, T]

  // Overlapping blocks of dim_t frames, cross-faded with a triangular weight.
  const int64_t step = std::max<int64_t>(1, static_cast<int64_t>(std::llround(dt * (1.0 - cfg_.overlap))));
  const int64_t padded = std::max<int64_t>(dt, ((frames - dt + step - 1) / step) * step + dt);
  input = at::constant_pad_nd(input, {0, padded - frames});
  auto out = at::zeros({4, df, padded}, at::kFloat);
  auto weight_sum = at::zeros({padded}, at::kFloat);
  auto tri = at::ones({dt}, at::kFloat);
  if (cfg_.overlap > 0) {
    auto t = at::arange(dt, at::kFloat);
    tri = at::minimum(t + 1, dt - t).clamp_max(static_cast<float>(step)) / static_cast<float>(step);
  }
  auto run = [&](const at::Tensor& block) {  // [4, df, dt] -> [4, df, dt]
    auto b = block.contiguous();
    const int sizes[] = {1, 4, static_cast<int>(df), static_cast<int>(dt)};
    cv::Mat blob(4, sizes, CV_32F, b.data_ptr<float>());
    net_->net.setInput(blob);
    cv::Mat y;
    try {
      y = net_->net.forward();
    } catch (const cv::Exception& e) {
      fail_at(cfg_.onnx, "model failed on a [1, 4, {}, {}] block: {}", df, dt, e.what());
    }
    if (y.dims != 4 || y.size[0] != 1 || y.size[1] != 4 || y.size[2] != df || y.size[3] != dt)
      fail_at(cfg_.onnx, "model output must be [1, 4, {}, {}] (dim_f, dim_t), got a {}-d blob", df, dt, y.dims);
    return at::from_blob(y.ptr<float>(), {4, df, dt}, at::kFloat).clone();
  };
  for (int64_t s = 0; s + dt <= padded; s += step) {
    auto block = input.narrow(2, s, dt);
    auto y = run(block);
    if (cfg_.denoise) y = (y - run(-block)) * 0.5;
    out.narrow(2, s, dt).add_(y * tri);
    weight_sum.narrow(0, s, dt).add_(tri);
  }
  out = (out / weight_sum.clamp_min(1e-6)).narrow(2, 0, frames);  // [4, df, T]
  // Back to one complex spectrogram per channel; bins above dim_f are silent.
  auto stem = at::zeros({2, bins, frames, 2}, at::kFloat);
  stem.narrow(1, 0, df).copy_(out.view({2, 2, df, frames}).permute({0, 2, 3, 1}));
  auto wav = at::istft(at::view_as_complex(stem.contiguous()), cfg_.n_fft, cfg_.hop_length, cfg_.n_fft, window,
                       /*center=*/true, /*normalized=*/false, /*onesided=*/true, /*length=*/analysed);  // [2, S]
  auto y = wav.mean(0) * cfg_.compensate;
  if (!cfg_.output_is_vocals) y = x - y;
  y = y.narrow(0, 0, n);
  y = y.contiguous();
  return std::vector<float>(y.data_ptr<float>(), y.data_ptr<float>() + n);
}

}  // namespace hallo::audio
