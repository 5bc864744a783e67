#pragma once
// A restricted Python unpickler (protocols 0-5). It builds plain values
// (None/bool/int/float/str/bytes/tuple/list/dict/set) and never imports or
// calls anything: every GLOBAL is passed to a resolver that either accepts it
// as a known constructor or refuses it, and REDUCE/NEWOBJ/BUILD on an accepted
// global are delegated to a handler (the torch layer turns
// torch._utils._rebuild_tensor_v2 into tensor records, for example).
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "model/io/tensor_record.h"

namespace hallo::io {

struct PyObj;
using PyRef = std::shared_ptr<PyObj>;

enum class PyKind {
  None, Bool, Int, BigInt, Float, Str, Bytes, Tuple, List, Dict, Set,
  Global,   // an accepted class/function reference: module + name
  Storage,  // a torch storage produced by persistent_load
  Tensor,   // a tensor record produced by a rebuild function
};

// A torch storage: dtype, element count and (once resolved) its bytes.
struct StorageRef {
  std::string key;
  DType dtype = DType::F32;
  uint64_t numel = 0;
  BlobPtr blob;  // null until the container resolves it (legacy format: after the pickle)
};

struct PyObj {
  PyKind kind = PyKind::None;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;                 // Str/Bytes; BigInt: little-endian two's complement bytes
  std::string module, name;      // Global
  std::vector<PyRef> items;      // Tuple/List/Set
  std::vector<std::pair<PyRef, PyRef>> dict;  // Dict (insertion order)
  std::shared_ptr<StorageRef> storage;        // Storage
  std::shared_ptr<TensorRecord> tensor;       // Tensor (name left empty)
  PyRef state;                   // BUILD state kept for inspection (ignored otherwise)

  static PyRef make(PyKind k);
  static PyRef make_int(int64_t v);
  static PyRef make_str(std::string v);
  std::string repr(int depth = 0) const;  // short Python-like rendering for messages
  const char* kind_name() const;
};

struct UnpickleHooks {
  // Called for every GLOBAL / STACK_GLOBAL / INST / OBJ class reference.
  // Must throw for anything not allowed. Returns the object to push.
  std::function<PyRef(const std::string& module, const std::string& name)> find_class;
  // Called for REDUCE, NEWOBJ, NEWOBJ_EX, INST and OBJ on a Global (kwargs may be null).
  std::function<PyRef(const PyRef& callable, const PyRef& args)> call;
  // Called for PERSID/BINPERSID; absent means persistent ids are an error.
  std::function<PyRef(const PyRef& pid)> persistent_load;
};

// The result of one unpickle. Pickles may build reference cycles (a list that
// contains itself); the destructor clears every mutable container it created so
// shared_ptr cycles never leak. Use `root` only while this object lives.
struct Unpickled {
  PyRef root;
  std::vector<PyRef> mutables;
  Unpickled() = default;
  Unpickled(Unpickled&&) = default;
  Unpickled& operator=(Unpickled&&) = default;
  ~Unpickled();
};

// Unpickles one pickle from data[*pos..size); advances *pos past STOP.
// `where` names the file (and record) for error messages.
Unpickled unpickle(const uint8_t* data, size_t size, size_t* pos, const UnpickleHooks& hooks,
                   const std::string& where);

// Globals every restricted unpickler may accept without executing code:
// collections.OrderedDict, builtins set/frozenset/bytearray, _codecs.encode.
// Returns null if (module, name) is not one of them.
PyRef builtin_find_class(const std::string& module, const std::string& name);
// Implements the calls for builtin_find_class's globals; null if not handled.
PyRef builtin_call(const PyRef& callable, const PyRef& args, const std::string& where);

// Python-2 compatible aliases (pickle protocol <3 writes __builtin__, posix) -> canonical names.
std::string canonical_global_name(const std::string& module, const std::string& name);

}  // namespace hallo::io
