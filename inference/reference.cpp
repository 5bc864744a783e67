#include "inference/reference.h"

#include <ATen/ATen.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <system_error>

#include "core/error.h"
#include "data/dataset/image_tensors.h"

namespace hallo::inference {

namespace fs = std::filesystem;

cv::Mat read_rgb_image(const fs::path& file) {
  std::error_code ec;
  if (!fs::exists(file, ec)) fail_at(file.string(), "no such image file (--ref)");
  if (fs::is_directory(file, ec)) fail_at(file.string(), "is a directory, not an image (--ref)");
  const cv::Mat bgr = cv::imread(file.string(), cv::IMREAD_COLOR);
  if (bgr.empty()) fail_at(file.string(), "not a readable image (OpenCV could not decode it)");
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  return rgb;
}

ReferenceTensors reference_tensors(const face::ReferenceCrop& crop, int64_t emb_dim) {
  ReferenceTensors r;
  r.crop = crop;
  const int h = crop.image.rows, w = crop.image.cols;
  r.image = at::empty({3, h, w});
  data::put_image(r.image, crop.image);
  at::Tensor region = at::empty({1, h, w});
  data::put_mask(region, crop.masks.face_region);
  r.face_region = region.expand({3, -1, -1}).unsqueeze(0).contiguous();
  auto level = [](const cv::Mat& m) {
    at::Tensor t = at::empty({1, m.rows, m.cols});
    data::put_mask(t, m);
    return t.view({1, -1});
  };
  for (size_t l = 0; l < crop.masks.pose.size(); ++l) {
    r.masks.full.push_back(level(crop.masks.pose[l]));
    r.masks.face.push_back(level(crop.masks.face[l]));
    r.masks.lip.push_back(level(crop.masks.lip[l]));
  }
  r.face_emb = crop.face_emb.empty()
                   ? at::zeros({1, emb_dim})
                   : at::tensor(crop.face_emb).view({1, static_cast<int64_t>(crop.face_emb.size())});
  return r;
}

}  // namespace hallo::inference
