#pragma once
// A clip exactly as it lies in a shard: named attributes and byte blobs in a
// fixed (canonical) order. The writer encodes a ClipRecord into this form, the
// reader decodes it back, and both hash the same form, so the checksum is
// defined on stored bytes (data/README.md spells the order out for Python).
#include <cstdint>
#include <string>
#include <vector>

#include "data/shard/clip_record.h"

namespace hallo::data {

enum class Elem { U8, U64, I64, F16, F32, F64 };
size_t elem_size(Elem e);

struct Attr {
  enum class Kind { Str, I64, F64 };
  std::string name;
  Kind kind = Kind::Str;
  std::string s;
  int64_t i = 0;
  double d = 0;
};

struct Blob {
  std::string name;
  Elem elem = Elem::U8;
  std::vector<uint64_t> dims;
  std::vector<uint8_t> bytes;  // little-endian element bytes, row-major
  // Storage hints for the writer: rows of dim 0 per chunk (0 = contiguous, unfiltered)
  // and whether gzip (+ shuffle for multi-byte elements) pays off.
  uint64_t chunk_rows = 0;
  bool compress = false;
};

struct EncodedClip {
  std::vector<Attr> attrs;    // canonical order (see canonical_attr_names)
  FrameStorage storage = FrameStorage::Jpeg;
  int height = 0, width = 0;
  std::vector<std::vector<uint8_t>> frames;  // JPEG bytes or raw RGB height*width*3
  std::vector<Blob> datasets;  // canonical order, absent ones left out; frame_checksums first
  uint64_t checksum = 0;
};

// Names in hashing order. Datasets not present in a clip are skipped.
const std::vector<std::string>& canonical_attr_names();
const std::vector<std::pair<std::string, Elem>>& canonical_datasets();

// Encodes frames (JPEG or raw), converts features to float16 and computes the
// frame and clip checksums. Thread-safe; `clip` must have passed validate_clip.
EncodedClip encode_clip(const ClipRecord& clip, FrameStorage storage, int jpeg_quality);

uint64_t clip_checksum(const std::vector<Attr>& attrs, const std::vector<Blob>& datasets);

// Fills every ClipRecord field except frames from stored attributes and datasets.
// `where` (shard path) names errors for malformed content.
ClipRecord decode_clip_fields(const std::vector<Attr>& attrs, const std::vector<Blob>& datasets,
                              const std::string& where);

// Decodes one stored frame to CV_8UC3 RGB height x width.
cv::Mat decode_frame(const std::vector<uint8_t>& bytes, FrameStorage storage, int height,
                     int width, const std::string& where);

const Attr* find_attr(const std::vector<Attr>& attrs, const std::string& name);

}  // namespace hallo::data
