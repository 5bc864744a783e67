#include "model/io/torch_zip_writer.h"

#include <caffe2/serialize/inline_container.h>

#include <cstdint>

#include "core/atomic_file.h"
#include "core/error.h"
#include "model/io/safetensors.h"

namespace hallo::io {

namespace {

// The few protocol-2 opcodes a state dict needs.
class PickleOut {
 public:
  void proto() { s_ += "\x80\x02"; }
  void global(const char* module, const char* name) {
    s_ += 'c';
    s_ += module;
    s_ += '\n';
    s_ += name;
    s_ += '\n';
  }
  void mark() { s_ += '('; }
  void tuple() { s_ += 't'; }
  void empty_tuple() { s_ += ')'; }
  void reduce() { s_ += 'R'; }
  void setitems() { s_ += 'u'; }
  void binpersid() { s_ += 'Q'; }
  void newfalse() { s_ += '\x89'; }
  void stop() { s_ += '.'; }
  void str(const std::string& v) {
    s_ += 'X';
    put_le(static_cast<uint64_t>(v.size()), 4);
    s_ += v;
  }
  void integer(int64_t v) {
    if (v >= INT32_MIN && v <= INT32_MAX) {
      s_ += 'J';
      put_le(static_cast<uint64_t>(static_cast<uint32_t>(static_cast<int32_t>(v))), 4);
    } else {
      s_ += '\x8a';  // LONG1: 8 bytes of two's complement
      s_ += '\x08';
      put_le(static_cast<uint64_t>(v), 8);
    }
  }
  void int_tuple(const std::vector<int64_t>& v) {
    mark();
    for (int64_t x : v) integer(x);
    tuple();
  }
  const std::string& bytes() const { return s_; }

 private:
  void put_le(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) s_ += static_cast<char>((v >> (8 * i)) & 0xff);
  }
  std::string s_;
};

const char* storage_class(DType d) {
  switch (d) {
    case DType::F64: return "DoubleStorage";
    case DType::F32: return "FloatStorage";
    case DType::F16: return "HalfStorage";
    case DType::BF16: return "BFloat16Storage";
    case DType::I64: return "LongStorage";
    case DType::I32: return "IntStorage";
    case DType::I16: return "ShortStorage";
    case DType::I8: return "CharStorage";
    case DType::U8: return "ByteStorage";
    case DType::BOOL: return "BoolStorage";
  }
  return "FloatStorage";
}

}  // namespace

std::string torch_state_dict_pickle(const std::vector<TensorRecord>& tensors) {
  PickleOut p;
  p.proto();
  p.global("collections", "OrderedDict");
  p.empty_tuple();
  p.reduce();
  p.mark();
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorRecord& t = tensors[i];
    p.str(t.name);
    // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks)
    p.global("torch._utils", "_rebuild_tensor_v2");
    p.mark();
    p.mark();  // persistent id: ('storage', torch.<T>Storage, key, location, numel)
    p.str("storage");
    p.global("torch", storage_class(t.dtype));
    p.str(std::to_string(i));
    p.str("cpu");
    p.integer(t.numel());
    p.tuple();
    p.binpersid();
    p.integer(0);
    p.int_tuple(t.shape);
    p.int_tuple(t.contiguous_strides());
    p.newfalse();
    p.global("collections", "OrderedDict");
    p.empty_tuple();
    p.reduce();
    p.tuple();
    p.reduce();
  }
  p.setitems();
  p.stop();
  return p.bytes();
}

void write_torch_zip(const std::filesystem::path& path, const std::vector<TensorRecord>& tensors) {
  AtomicFile out(path);
  // PyTorchStreamWriter streams through this function; its records are 64-byte aligned.
  // The function never throws (the writer's destructor would write again while
  // unwinding): the first failure is kept and reported once the archive is closed.
  std::string failure;
  caffe2::serialize::PyTorchStreamWriter w([&](const void* data, size_t n) -> size_t {
    if (failure.empty()) {
      try {
        out.write(data, n);
      } catch (const std::exception& e) {
        failure = e.what();
      }
    }
    return n;
  });
  const std::string pkl = torch_state_dict_pickle(tensors);
  w.writeRecord("data.pkl", pkl.data(), pkl.size());
  w.writeRecord("byteorder", "little", 6);
  std::vector<uint8_t> buf;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorRecord& t = tensors[i];
    const uint8_t* data = t.data();
    if (!t.is_contiguous()) {
      buf.resize(t.nbytes());
      copy_contiguous(t, buf.data());
      data = buf.data();
    }
    w.writeRecord("data/" + std::to_string(i), data, t.nbytes());
  }
  w.writeEndOfFile();
  if (!failure.empty()) throw Error(failure);
  out.commit();
}

}  // namespace hallo::io
