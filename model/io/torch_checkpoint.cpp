#include "model/io/torch_checkpoint.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <unordered_set>

#include "core/error.h"
#include "model/io/zip_reader.h"

namespace hallo::io {

namespace {

// torch.<X>Storage -> element type. UntypedStorage is bytes.
const std::map<std::string, DType>& storage_types() {
  static const std::map<std::string, DType> m = {
      {"DoubleStorage", DType::F64}, {"FloatStorage", DType::F32}, {"HalfStorage", DType::F16},
      {"BFloat16Storage", DType::BF16}, {"LongStorage", DType::I64}, {"IntStorage", DType::I32},
      {"ShortStorage", DType::I16}, {"CharStorage", DType::I8}, {"ByteStorage", DType::U8},
      {"BoolStorage", DType::BOOL}, {"UntypedStorage", DType::U8},
  };
  return m;
}

// Globals that are mere tokens (types, dtypes) or tensor rebuild functions.
const std::unordered_set<std::string>& torch_globals() {
  static const std::unordered_set<std::string> s = {
      "torch._utils._rebuild_tensor",
      "torch._utils._rebuild_tensor_v2",
      "torch._utils._rebuild_parameter",
      "torch._utils._rebuild_parameter_with_state",
      "torch._tensor._rebuild_from_type_v2",
      "torch.nn.parameter.Parameter",
      "torch.Tensor",
      "torch.Size",
      "torch.device",
      "torch.float64", "torch.float32", "torch.float16", "torch.bfloat16", "torch.int64",
      "torch.int32", "torch.int16", "torch.int8", "torch.uint8", "torch.bool",
  };
  return s;
}

std::vector<int64_t> int_tuple(const PyRef& v, const char* what, const std::string& where) {
  if (v->kind != PyKind::Tuple && v->kind != PyKind::List)
    fail_at(where, "tensor {} must be a tuple, got {}", what, v->kind_name());
  std::vector<int64_t> out;
  for (const auto& x : v->items) {
    if (x->kind != PyKind::Int) fail_at(where, "tensor {} must hold integers", what);
    out.push_back(x->i);
  }
  return out;
}

PyRef make_tensor(const PyRef& storage, const PyRef& offset, const PyRef& size, const PyRef& stride,
                  const std::string& where) {
  if (storage->kind != PyKind::Storage) fail_at(where, "tensor rebuild without a storage");
  if (offset->kind != PyKind::Int || offset->i < 0) fail_at(where, "bad tensor storage offset");
  auto t = PyObj::make(PyKind::Tensor);
  t->storage = storage->storage;
  t->tensor = std::make_shared<TensorRecord>();
  t->tensor->dtype = storage->storage->dtype;
  t->tensor->shape = int_tuple(size, "size", where);
  t->tensor->strides = int_tuple(stride, "stride", where);
  if (t->tensor->strides.size() != t->tensor->shape.size())
    fail_at(where, "tensor size has {} dims but stride has {}", t->tensor->shape.size(),
            t->tensor->strides.size());
  t->tensor->offset = static_cast<uint64_t>(offset->i);  // in elements until resolved
  return t;
}

}  // namespace

std::optional<DType> torch_storage_dtype(const std::string& name) {
  auto it = storage_types().find(name);
  if (it == storage_types().end()) return std::nullopt;
  return it->second;
}

PyRef torch_find_class(const std::string& module, const std::string& name, const std::string& where) {
  if (auto g = builtin_find_class(module, name)) return g;
  const std::string full = module + "." + name;
  if ((module == "torch" && storage_types().count(name)) || torch_globals().count(full)) {
    auto g = PyObj::make(PyKind::Global);
    g->module = module;
    g->name = name;
    return g;
  }
  const std::string canon = canonical_global_name(module, name);
  const std::string shown = canon == full ? "'" + full + "'" : "'" + full + "' (" + canon + ")";
  fail_at(where,
          "refusing to unpickle forbidden global {}: only tensors and state-dict containers are "
          "allowed; nothing was executed",
          shown);
}

PyRef torch_call(const PyRef& fn, const PyRef& args, const std::string& where) {
  if (auto r = builtin_call(fn, args, where)) return r;
  const std::string full = fn->module + "." + fn->name;
  const auto& a = args->items;
  if (full == "torch._utils._rebuild_tensor_v2") {
    // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
    if (a.size() < 4) fail_at(where, "_rebuild_tensor_v2 expects at least 4 arguments, got {}", a.size());
    return make_tensor(a[0], a[1], a[2], a[3], where);
  }
  if (full == "torch._utils._rebuild_tensor") {
    if (a.size() != 4) fail_at(where, "_rebuild_tensor expects 4 arguments");
    return make_tensor(a[0], a[1], a[2], a[3], where);
  }
  if (full == "torch._utils._rebuild_parameter" || full == "torch._utils._rebuild_parameter_with_state") {
    if (a.empty() || a[0]->kind != PyKind::Tensor) fail_at(where, "{} without a tensor", full);
    return a[0];
  }
  if (full == "torch._tensor._rebuild_from_type_v2") {
    // (func, new_type, args, state): func must itself be an accepted rebuild function.
    if (a.size() < 3 || a[0]->kind != PyKind::Global || a[2]->kind != PyKind::Tuple)
      fail_at(where, "malformed _rebuild_from_type_v2 call");
    return torch_call(a[0], a[2], where);
  }
  if (full == "torch.Size") {
    auto t = PyObj::make(PyKind::Tuple);
    if (!a.empty()) t->items = a[0]->items;
    return t;
  }
  if (full == "torch.device") {
    return a.empty() ? PyObj::make(PyKind::None) : a[0];
  }
  fail_at(where, "global '{}' cannot be called", full);
}

namespace {

void flatten(const PyRef& v, const std::string& path, int depth, WeightSet* out,
             std::vector<std::shared_ptr<StorageRef>>* storages_seen) {
  const std::string& where = out->source;
  if (depth > 64) fail_at(where, "object nesting deeper than 64 levels at '{}'", path);
  auto child = [&](const std::string& k) { return path.empty() ? k : path + "." + k; };
  switch (v->kind) {
    case PyKind::Dict:
      for (const auto& [k, x] : v->dict) {
        std::string key;
        if (k->kind == PyKind::Str) key = k->s;
        else if (k->kind == PyKind::Int) key = std::to_string(k->i);
        else { out->metadata[child("<" + std::string(k->kind_name()) + " key>")] = "<unsupported>"; continue; }
        flatten(x, child(key), depth + 1, out, storages_seen);
      }
      break;
    case PyKind::List:
    case PyKind::Tuple:
      for (size_t i = 0; i < v->items.size(); ++i) flatten(v->items[i], child(std::to_string(i)), depth + 1, out, storages_seen);
      break;
    case PyKind::Tensor: {
      TensorRecord r = *v->tensor;
      r.name = path.empty() ? "tensor" : path;
      const auto& st = v->storage;
      if (!st->blob) fail_at(where, "tensor '{}' refers to storage '{}' whose data is missing", r.name, st->key);
      if (r.dtype != st->dtype) fail_at(where, "tensor '{}' dtype differs from its storage", r.name);
      const uint64_t es = dtype_size(r.dtype);
      if (r.offset > st->blob->size() / es)
        fail_at(where, "tensor '{}': storage offset {} beyond its storage", r.name, r.offset);
      r.offset *= es;
      r.storage = st->blob;
      check_view_bounds(where + ": tensor '" + r.name + "'", r.shape, r.strides, r.dtype, r.offset,
                        st->numel * es);
      if (r.is_contiguous()) r.strides.clear();
      out->tensors.push_back(std::move(r));
      break;
    }
    case PyKind::None: out->metadata[path] = "None"; break;
    case PyKind::Bool: out->metadata[path] = v->b ? "True" : "False"; break;
    case PyKind::Int: out->metadata[path] = std::to_string(v->i); break;
    case PyKind::Float: out->metadata[path] = fmt::format("{}", v->f); break;
    case PyKind::Str: out->metadata[path] = v->s; break;
    default: out->metadata[path] = "<" + std::string(v->kind_name()) + ">"; break;
  }
}

UnpickleHooks hooks_for(const std::string& where) {
  UnpickleHooks h;
  h.find_class = [&where](const std::string& m, const std::string& n) { return torch_find_class(m, n, where); };
  h.call = [&where](const PyRef& fn, const PyRef& args) { return torch_call(fn, args, where); };
  return h;
}

// Parses the ('storage', storage_type, key, location, numel[, view_metadata]) persistent id.
std::shared_ptr<StorageRef> storage_from_pid(const PyRef& pid, const std::string& where) {
  if (pid->kind != PyKind::Tuple || pid->items.size() < 5 || pid->items[0]->kind != PyKind::Str ||
      pid->items[0]->s != "storage")
    fail_at(where, "unsupported persistent id {}", pid->repr());
  const auto& a = pid->items;
  if (a[1]->kind != PyKind::Global || a[1]->module != "torch" || !storage_types().count(a[1]->name))
    fail_at(where, "persistent id has unknown storage type {}", a[1]->repr());
  if (a[2]->kind != PyKind::Str) fail_at(where, "storage key must be a string");
  if (a[4]->kind != PyKind::Int || a[4]->i < 0) fail_at(where, "storage size must be a non-negative integer");
  auto s = std::make_shared<StorageRef>();
  s->dtype = storage_types().at(a[1]->name);
  s->key = a[2]->s;
  s->numel = static_cast<uint64_t>(a[4]->i);
  if (s->numel > (uint64_t{1} << 60)) fail_at(where, "storage '{}' is implausibly large", s->key);
  return s;
}

}  // namespace

void flatten_pickled(const PyRef& root, WeightSet* out) {
  std::vector<std::shared_ptr<StorageRef>> seen;
  flatten(root, "", 0, out, &seen);
  out->sort_by_name();
}

WeightSet read_torch_zip(BlobPtr file, const std::string& where) {
  const auto entries = read_zip_directory(file->data(), file->size(), where);
  std::map<std::string, const ZipEntry*> by_name;
  for (const auto& e : entries) by_name[e.name] = &e;
  // The archive folder name varies (it is the file stem for old torch versions).
  std::string prefix;
  for (const auto& e : entries) {
    auto pos = e.name.rfind("data.pkl");
    if (pos != std::string::npos && pos + 8 == e.name.size() && (pos == 0 || e.name[pos - 1] == '/') &&
        e.name.find('/') + 1 == pos) {
      prefix = e.name.substr(0, pos);
      break;
    }
  }
  if (!by_name.count(prefix + "data.pkl"))
    fail_at(where, "zip archive has no data.pkl: not a torch.save checkpoint (TorchScript archives are not state dicts)");
  auto record = [&](const std::string& name) -> const ZipEntry& {
    auto it = by_name.find(prefix + name);
    if (it == by_name.end()) fail_at(where, "missing archive record '{}{}'", prefix, name);
    if (it->second->method != 0)
      fail_at(where, "record '{}' is compressed (method {}); torch.save writes stored records", it->second->name,
              it->second->method);
    return *it->second;
  };
  if (by_name.count(prefix + "byteorder")) {
    const ZipEntry& e = record("byteorder");
    std::string order(reinterpret_cast<const char*>(file->data() + e.data_offset), std::min<uint64_t>(e.size, 16));
    if (order != "little") fail_at(where, "checkpoint byte order '{}' is not supported", order);
  }

  WeightSet ws;
  ws.format = "torch-zip";
  ws.source = where;
  const ZipEntry& pkl = record("data.pkl");
  UnpickleHooks hooks = hooks_for(where);
  std::map<std::string, std::shared_ptr<StorageRef>> storages;
  hooks.persistent_load = [&](const PyRef& pid) {
    auto s = storage_from_pid(pid, where);
    if (auto it = storages.find(s->key); it != storages.end()) {
      if (it->second->dtype != s->dtype) fail_at(where, "storage '{}' used with two dtypes", s->key);
    } else {
      const ZipEntry& e = record("data/" + s->key);
      const uint64_t need = s->numel * dtype_size(s->dtype);
      if (e.size < need)
        fail_at(where, "storage record '{}' has {} bytes, {} elements of {} need {}", e.name, e.size, s->numel,
                dtype_name(s->dtype), need);
      s->blob = slice_blob(file, e.data_offset, e.size);
      storages[s->key] = s;
    }
    auto o = PyObj::make(PyKind::Storage);
    o->storage = storages[s->key];
    return o;
  };
  size_t pos = pkl.data_offset;
  const uint8_t* base = file->data();
  auto result = unpickle(base, pkl.data_offset + pkl.size, &pos, hooks, where);
  flatten_pickled(result.root, &ws);
  return ws;
}

WeightSet read_torch_legacy(BlobPtr file, const std::string& where) {
  const uint8_t* d = file->data();
  const size_t n = file->size();
  size_t pos = 0;
  UnpickleHooks plain = hooks_for(where);
  {
    auto magic = unpickle(d, n, &pos, plain, where);
    static const std::string kMagic("\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 10);
    if (magic.root->kind != PyKind::BigInt || magic.root->s != kMagic)
      fail_at(where, "not a torch.save file: legacy magic number missing");
    auto proto = unpickle(d, n, &pos, plain, where);
    if (proto.root->kind != PyKind::Int || proto.root->i != 1001)
      fail_at(where, "unsupported legacy protocol version {}", proto.root->repr());
    auto info = unpickle(d, n, &pos, plain, where);
    if (info.root->kind == PyKind::Dict)
      for (const auto& [k, v] : info.root->dict)
        if (k->kind == PyKind::Str && k->s == "little_endian" && v->kind == PyKind::Bool && !v->b)
          fail_at(where, "big-endian checkpoints are not supported");
  }
  // Storages by key; views (pre-1.0 files) point into a root storage.
  std::map<std::string, std::shared_ptr<StorageRef>> roots;
  struct View { std::shared_ptr<StorageRef> ref; std::string root; uint64_t offset; };
  std::vector<View> views;
  UnpickleHooks hooks = hooks_for(where);
  hooks.persistent_load = [&](const PyRef& pid) {
    auto s = storage_from_pid(pid, where);
    auto& root = roots[s->key];
    if (!root) root = s;
    else if (root->dtype != s->dtype) fail_at(where, "storage '{}' used with two dtypes", s->key);
    auto o = PyObj::make(PyKind::Storage);
    o->storage = root;
    const auto& a = pid->items;
    if (a.size() >= 6 && a[5]->kind == PyKind::Tuple) {
      const auto& vm = a[5]->items;
      if (vm.size() != 3 || vm[0]->kind != PyKind::Str || vm[1]->kind != PyKind::Int || vm[2]->kind != PyKind::Int ||
          vm[1]->i < 0 || vm[2]->i < 0)
        fail_at(where, "malformed storage view metadata");
      auto v = std::make_shared<StorageRef>();
      v->key = vm[0]->s;
      v->dtype = s->dtype;
      v->numel = static_cast<uint64_t>(vm[2]->i);
      views.push_back({v, s->key, static_cast<uint64_t>(vm[1]->i)});
      o->storage = v;
    }
    return o;
  };
  auto main = unpickle(d, n, &pos, hooks, where);
  auto keys = unpickle(d, n, &pos, plain, where);
  if (keys.root->kind != PyKind::List) fail_at(where, "legacy storage key list missing");
  for (const auto& k : keys.root->items) {
    if (k->kind != PyKind::Str) fail_at(where, "legacy storage key is not a string");
    auto it = roots.find(k->s);
    if (it == roots.end()) fail_at(where, "legacy file stores unknown storage '{}'", k->s);
    if (n - pos < 8) fail_at(where, "truncated: storage '{}' size missing", k->s);
    uint64_t numel = 0;
    for (int i = 7; i >= 0; --i) numel = (numel << 8) | d[pos + i];
    pos += 8;
    const uint64_t es = dtype_size(it->second->dtype);
    if (numel > (n - pos) / es)
      fail_at(where, "truncated: storage '{}' needs {} bytes, {} left", k->s, numel * es, n - pos);
    it->second->numel = numel;
    it->second->blob = slice_blob(file, pos, numel * es);
    pos += numel * es;
  }
  for (auto& v : views) {
    const auto& root = roots.at(v.root);
    const uint64_t es = dtype_size(root->dtype);
    if (!root->blob || v.offset > root->numel || v.ref->numel > root->numel - v.offset)
      fail_at(where, "storage view '{}' lies outside storage '{}'", v.ref->key, v.root);
    v.ref->blob = slice_blob(root->blob, v.offset * es, v.ref->numel * es);
  }
  WeightSet ws;
  ws.format = "torch-legacy";
  ws.source = where;
  flatten_pickled(main.root, &ws);
  return ws;
}

WeightSet read_torch_checkpoint(const std::filesystem::path& path) {
  auto blob = map_file(path);
  const std::string where = path.string();
  if (looks_like_zip(blob->data(), blob->size())) return read_torch_zip(blob, where);
  if (blob->size() > 262 && std::string(reinterpret_cast<const char*>(blob->data()) + 257, 5) == "ustar")
    fail_at(where, "tar-format checkpoint (torch < 0.4) is not supported: load and re-save it with torch.save");
  if (blob->size() >= 2 && blob->data()[0] == 0x80) return read_torch_legacy(blob, where);
  fail_at(where, "not a torch.save checkpoint (neither a zip archive nor a pickle stream)");
}

}  // namespace hallo::io
