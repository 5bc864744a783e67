// libFuzzer target: the restricted unpickler and both torch.save containers
// (model/io/pickle.cpp, torch_checkpoint.cpp, zip_reader.cpp).
//
// The first input byte selects the mode (byte % 3); the rest is the payload:
//   0  raw pickle -> unpickle() with the torch hooks (torch_find_class /
//      torch_call) and a persistent_load hook that hands out zero-filled
//      storages, then flatten_pickled() into a WeightSet;
//   1  read_torch_zip(owned_blob(payload))     (torch >= 1.6 zip archive);
//   2  read_torch_legacy(owned_blob(payload))  (legacy pickle stream).
// Every tensor that comes out is copied with copy_contiguous, so a record
// pointing outside its storage is caught by ASan.
//
// Parse errors are hallo::Error and are expected; any crash, sanitizer report
// or leak (e.g. a shared_ptr cycle the unpickler fails to break) is a bug.
#include <cstddef>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "model/io/blob.h"
#include "model/io/dtype.h"
#include "model/io/pickle.h"
#include "model/io/safetensors.h"
#include "model/io/tensor_record.h"
#include "model/io/torch_checkpoint.h"

namespace {

using namespace hallo::io;

constexpr uint64_t kMaxStorageBytes = uint64_t{1} << 20;  // per fake storage (mode 0)
constexpr uint64_t kMaxCopyBytes = uint64_t{4} << 20;     // per input, all copies together

// Copies out every tensor (stride-0 views can be huge logically, so the total is capped).
void touch_tensors(const WeightSet& ws) {
  uint64_t budget = kMaxCopyBytes;
  std::vector<uint8_t> buf;
  for (const auto& t : ws.tensors) {
    const uint64_t n = t.nbytes();
    if (n > budget) continue;
    budget -= n;
    buf.assign(static_cast<size_t>(n) + 1, 0);
    copy_contiguous(t, buf.data());
  }
  (void)ws.total_bytes();
  if (!ws.tensors.empty()) (void)ws.find(ws.tensors.front().name);
}

void run_pickle(const uint8_t* data, size_t size) {
  const std::string where = "fuzz.pkl";
  std::map<std::string, std::shared_ptr<StorageRef>> storages;
  UnpickleHooks hooks;
  hooks.find_class = [&](const std::string& m, const std::string& n) { return torch_find_class(m, n, where); };
  hooks.call = [&](const PyRef& fn, const PyRef& args) { return torch_call(fn, args, where); };
  // ('storage', torch.<X>Storage, key, location, numel): a zero-filled storage
  // of numel elements, shared between persistent ids with the same key.
  hooks.persistent_load = [&](const PyRef& pid) -> PyRef {
    if (pid->kind != PyKind::Tuple || pid->items.size() < 5) hallo::fail("fuzz: bad persistent id");
    const auto& a = pid->items;
    if (a[1]->kind != PyKind::Global || a[1]->module != "torch") hallo::fail("fuzz: bad storage type");
    const auto dt = torch_storage_dtype(a[1]->name);
    if (!dt) hallo::fail("fuzz: unknown storage type");
    if (a[2]->kind != PyKind::Str) hallo::fail("fuzz: storage key must be a string");
    if (a[4]->kind != PyKind::Int || a[4]->i < 0) hallo::fail("fuzz: bad storage size");
    const uint64_t numel = static_cast<uint64_t>(a[4]->i);
    const uint64_t es = dtype_size((*dt));
    if (numel > kMaxStorageBytes / es) hallo::fail("fuzz: storage over the fuzzing cap");
    auto& s = storages[a[2]->s];
    if (!s) {
      s = std::make_shared<StorageRef>();
      s->key = a[2]->s;
      s->dtype = (*dt);
      s->numel = numel;
      s->blob = owned_blob(std::vector<uint8_t>(static_cast<size_t>(numel * es), 0));
    } else if (s->dtype != (*dt)) {
      hallo::fail("fuzz: storage used with two dtypes");
    }
    auto o = PyObj::make(PyKind::Storage);
    o->storage = s;
    return o;
  };
  size_t pos = 0;
  Unpickled u = unpickle(data, size, &pos, hooks, where);
  if (pos > size) hallo::fail("fuzz: unpickle advanced past the end");  // would be a bug; ASan sees it first
  (void)u.root->repr();
  WeightSet ws;
  ws.format = "fuzz";
  ws.source = where;
  flatten_pickled(u.root, &ws);
  touch_tensors(ws);
}

void run(const uint8_t* data, size_t size) {
  if (size == 0) return;
  const unsigned mode = data[0] % 3;
  // Exact-size private copy so reads past the end land in an ASan redzone.
  std::vector<uint8_t> payload(data + 1, data + size);
  switch (mode) {
    case 0:
      run_pickle(payload.data(), payload.size());
      break;
    case 1:
      touch_tensors(read_torch_zip(owned_blob(std::move(payload)), "fuzz.zip.pth"));
      break;
    case 2:
      touch_tensors(read_torch_legacy(owned_blob(std::move(payload)), "fuzz.legacy.pth"));
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    run(data, size);
  } catch (const hallo::Error&) {
  } catch (const std::exception&) {
  }
  return 0;
}
