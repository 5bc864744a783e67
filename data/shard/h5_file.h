#pragma once
// Thin RAII + error layer over the HDF5 C API, private to hallo_shard. Every
// failing call becomes a hallo::Error naming the shard file, the object and
// HDF5's own innermost reason; HDF5's automatic stderr dumps are switched off.
#include <hdf5.h>

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "data/shard/clip_codec.h"

namespace hallo::data::h5 {

// Owns one hid_t and closes it with the matching H5*close.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer close) : id_(id), close_(close) {}
  ~Handle() { reset(); }
  Handle(Handle&& o) noexcept : id_(o.id_), close_(o.close_) { o.id_ = -1; }
  Handle& operator=(Handle&& o) noexcept;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  hid_t get() const { return id_; }
  explicit operator bool() const { return id_ >= 0; }
  void reset();

 private:
  hid_t id_ = -1;
  Closer close_ = nullptr;
};

// Serialises our multi-call HDF5 sequences (the library's own lock is per call)
// and silences HDF5's automatic error printing for the calling thread.
class Lock {
 public:
  Lock();

 private:
  std::lock_guard<std::recursive_mutex> guard_;
};

// Throws hallo::Error("<where>: <what>: <HDF5 reason>") when `id` is negative.
hid_t check(hid_t id, const std::string& where, const std::string& what);

Handle create_file(const std::string& path);              // truncates
Handle open_file(const std::string& path, bool writable);  // throws naming path
Handle create_group(hid_t parent, const std::string& name, const std::string& where);
Handle open_group(hid_t parent, const std::string& name, const std::string& where);
bool exists(hid_t parent, const std::string& name);

void write_attr(hid_t obj, const Attr& a, const std::string& where);
void write_attr_u64(hid_t obj, const std::string& name, uint64_t v, const std::string& where);
// Reads an attribute written by write_attr (kind decided by its HDF5 class).
Attr read_attr(hid_t obj, const std::string& name, const std::string& where);
uint64_t read_attr_u64(hid_t obj, const std::string& name, const std::string& where);

// Writes a numeric dataset with the blob's chunk/compression hints.
void write_blob(hid_t group, const Blob& b, int gzip_level, const std::string& where);
// Reads a whole numeric dataset; its element type must match `elem`.
Blob read_blob(hid_t group, const std::string& name, Elem elem, const std::string& where);

// JPEG frames: a 1-D dataset of variable-length uint8 sequences.
void write_vlen_frames(hid_t group, const std::string& name,
                       const std::vector<std::vector<uint8_t>>& frames, const std::string& where);
std::vector<uint8_t> read_vlen_frame(hid_t group, const std::string& name, uint64_t index,
                                     const std::string& where);

// Raw frames: uint8 [F,H,W,3], one chunk per frame.
void write_raw_frames(hid_t group, const std::string& name,
                      const std::vector<std::vector<uint8_t>>& frames, int height, int width,
                      int gzip_level, const std::string& where);
std::vector<uint8_t> read_raw_frame(hid_t group, const std::string& name, uint64_t index,
                                    int height, int width, const std::string& where);

}  // namespace hallo::data::h5
