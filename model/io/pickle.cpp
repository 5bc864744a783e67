#include "model/io/pickle.h"

#include <cmath>
#include <cstring>
#include <unordered_map>

#include "core/error.h"

namespace hallo::io {

PyRef PyObj::make(PyKind k) {
  auto p = std::make_shared<PyObj>();
  p->kind = k;
  return p;
}
PyRef PyObj::make_int(int64_t v) {
  auto p = make(PyKind::Int);
  p->i = v;
  return p;
}
PyRef PyObj::make_str(std::string v) {
  auto p = make(PyKind::Str);
  p->s = std::move(v);
  return p;
}

const char* PyObj::kind_name() const {
  switch (kind) {
    case PyKind::None: return "None";
    case PyKind::Bool: return "bool";
    case PyKind::Int: case PyKind::BigInt: return "int";
    case PyKind::Float: return "float";
    case PyKind::Str: return "str";
    case PyKind::Bytes: return "bytes";
    case PyKind::Tuple: return "tuple";
    case PyKind::List: return "list";
    case PyKind::Dict: return "dict";
    case PyKind::Set: return "set";
    case PyKind::Global: return "global";
    case PyKind::Storage: return "storage";
    case PyKind::Tensor: return "tensor";
  }
  return "?";
}

std::string PyObj::repr(int depth) const {
  if (depth > 3) return "...";
  switch (kind) {
    case PyKind::None: return "None";
    case PyKind::Bool: return b ? "True" : "False";
    case PyKind::Int: return std::to_string(i);
    case PyKind::BigInt: return fmt::format("<int of {} bytes>", s.size());
    case PyKind::Float: return fmt::format("{}", f);
    case PyKind::Str: return "'" + s.substr(0, 64) + "'";
    case PyKind::Bytes: return fmt::format("<bytes of length {}>", s.size());
    case PyKind::Global: return module + "." + name;
    case PyKind::Storage: return fmt::format("<storage {} {}>", dtype_name(storage->dtype), storage->key);
    case PyKind::Tensor: return fmt::format("<tensor {}>", dtype_name(tensor->dtype));
    case PyKind::Tuple: case PyKind::List: case PyKind::Set: {
      std::string r = kind == PyKind::List ? "[" : "(";
      for (size_t k = 0; k < items.size() && k < 8; ++k) r += (k ? ", " : "") + items[k]->repr(depth + 1);
      if (items.size() > 8) r += ", ...";
      return r + (kind == PyKind::List ? "]" : ")");
    }
    case PyKind::Dict: return fmt::format("{{dict of {} items}}", dict.size());
  }
  return "?";
}

std::string canonical_global_name(const std::string& module, const std::string& name) {
  std::string m = module;
  if (m == "__builtin__") m = "builtins";
  if (m == "posix" || m == "nt") m = "os";
  if (m == "copy_reg") m = "copyreg";
  return m + "." + name;
}

PyRef builtin_find_class(const std::string& module, const std::string& name) {
  const std::string full = canonical_global_name(module, name);
  static const char* kAllowed[] = {"collections.OrderedDict", "builtins.set", "builtins.frozenset",
                                   "builtins.bytearray", "_codecs.encode"};
  for (const char* a : kAllowed) {
    if (full == a) {
      auto g = PyObj::make(PyKind::Global);
      auto dot = full.find('.');
      g->module = full.substr(0, dot);
      g->name = full.substr(dot + 1);
      return g;
    }
  }
  return nullptr;
}

PyRef builtin_call(const PyRef& callable, const PyRef& args, const std::string& where) {
  const std::string full = callable->module + "." + callable->name;
  if (args->kind != PyKind::Tuple) fail_at(where, "{} called with non-tuple arguments", full);
  const auto& a = args->items;
  if (full == "collections.OrderedDict") {
    auto d = PyObj::make(PyKind::Dict);
    if (!a.empty()) {  // OrderedDict([(k, v), ...])
      if (a[0]->kind != PyKind::List && a[0]->kind != PyKind::Tuple)
        fail_at(where, "OrderedDict argument must be a list of pairs");
      for (const auto& kv : a[0]->items) {
        if ((kv->kind != PyKind::Tuple && kv->kind != PyKind::List) || kv->items.size() != 2)
          fail_at(where, "OrderedDict item is not a pair");
        d->dict.emplace_back(kv->items[0], kv->items[1]);
      }
    }
    return d;
  }
  if (full == "builtins.set" || full == "builtins.frozenset") {
    auto s = PyObj::make(PyKind::Set);
    if (!a.empty()) {
      if (a[0]->kind != PyKind::List && a[0]->kind != PyKind::Tuple && a[0]->kind != PyKind::Set)
        fail_at(where, "{} argument must be a sequence", full);
      s->items = a[0]->items;
    }
    return s;
  }
  if (full == "builtins.bytearray") {
    auto b = PyObj::make(PyKind::Bytes);
    if (!a.empty()) {
      if (a[0]->kind != PyKind::Bytes && a[0]->kind != PyKind::Str)
        fail_at(where, "bytearray argument must be bytes");
      b->s = a[0]->s;
    }
    return b;
  }
  if (full == "_codecs.encode") {
    // Protocol-2 pickles store bytes as _codecs.encode(str, 'latin1').
    if (a.size() != 2 || a[0]->kind != PyKind::Str || a[1]->kind != PyKind::Str)
      fail_at(where, "_codecs.encode expects (str, encoding)");
    if (a[1]->s != "latin1" && a[1]->s != "latin-1")
      fail_at(where, "_codecs.encode with unsupported encoding '{}'", a[1]->s);
    auto b = PyObj::make(PyKind::Bytes);
    // Decode UTF-8 code points, each must fit in one byte.
    const std::string& u = a[0]->s;
    for (size_t k = 0; k < u.size();) {
      unsigned char c = static_cast<unsigned char>(u[k]);
      if (c < 0x80) { b->s.push_back(static_cast<char>(c)); k += 1; }
      else if ((c & 0xE0) == 0xC0 && k + 1 < u.size()) {
        unsigned cp = ((c & 0x1F) << 6) | (static_cast<unsigned char>(u[k + 1]) & 0x3F);
        if (cp > 0xFF) fail_at(where, "_codecs.encode: code point out of latin1 range");
        b->s.push_back(static_cast<char>(cp));
        k += 2;
      } else fail_at(where, "_codecs.encode: code point out of latin1 range");
    }
    return b;
  }
  return nullptr;
}

namespace {

class Machine {
 public:
  Machine(const uint8_t* d, size_t n, size_t pos, const UnpickleHooks& h, const std::string& w,
          std::vector<PyRef>& mutables)
      : d_(d), n_(n), p_(pos), hooks_(h), where_(w), mutables_(mutables) {}

  PyRef run(size_t* end_pos);

 private:
  const uint8_t* d_;
  size_t n_, p_;
  const UnpickleHooks& hooks_;
  const std::string& where_;
  std::vector<PyRef>& mutables_;
  std::vector<PyRef> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, PyRef> memo_;

  template <typename... Args>
  [[noreturn]] void bad(fmt::format_string<Args...> f, Args&&... args) {
    throw Error(fmt::format("{}: pickle: {} (at byte {})", where_, fmt::format(f, std::forward<Args>(args)...), p_));
  }
  void need(size_t k) {
    if (k > n_ - p_) bad("truncated data: needs {} more bytes", k);
  }
  uint8_t u8() { need(1); return d_[p_++]; }
  uint64_t uN(int k) {
    need(k);
    uint64_t v = 0;
    for (int j = k - 1; j >= 0; --j) v = (v << 8) | d_[p_ + j];
    p_ += k;
    return v;
  }
  std::string bytes(uint64_t k) {
    if (k > n_ - p_) bad("truncated data: string of {} bytes", k);
    std::string s(reinterpret_cast<const char*>(d_ + p_), static_cast<size_t>(k));
    p_ += k;
    return s;
  }
  std::string line() {
    const void* nl = std::memchr(d_ + p_, '\n', n_ - p_);
    if (!nl) bad("truncated data: missing newline");
    size_t e = static_cast<const uint8_t*>(nl) - d_;
    std::string s(reinterpret_cast<const char*>(d_ + p_), e - p_);
    p_ = e + 1;
    return s;
  }
  PyRef pop() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) bad("stack underflow");
    PyRef r = std::move(stack_.back());
    stack_.pop_back();
    return r;
  }
  PyRef& top() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) bad("stack underflow");
    return stack_.back();
  }
  std::vector<PyRef> pop_mark() {
    if (marks_.empty()) bad("MARK expected");
    size_t m = marks_.back();
    marks_.pop_back();
    std::vector<PyRef> v(std::make_move_iterator(stack_.begin() + m), std::make_move_iterator(stack_.end()));
    stack_.resize(m);
    return v;
  }
  void push(PyRef r) {
    // Every container is remembered so ~Unpickled can empty them all while they
    // are still alive: no reference cycle leaks, and a 200k-deep tuple nest is
    // torn down iteratively instead of overflowing the stack recursively.
    if (r->kind == PyKind::List || r->kind == PyKind::Dict || r->kind == PyKind::Set || r->kind == PyKind::Tuple)
      mutables_.push_back(r);
    stack_.push_back(std::move(r));
  }
  PyRef memo_get(uint64_t k) {
    auto it = memo_.find(k);
    if (it == memo_.end()) bad("memo key {} not found", k);
    return it->second;
  }
  PyRef tuple(std::vector<PyRef> v) {
    auto t = PyObj::make(PyKind::Tuple);
    t->items = std::move(v);
    return t;
  }
  PyRef global(const std::string& module, const std::string& name) {
    if (!hooks_.find_class) bad("global {}.{} not allowed", module, name);
    return hooks_.find_class(module, name);
  }
  PyRef call(const PyRef& callable, const PyRef& args) {
    if (callable->kind != PyKind::Global) bad("cannot call a {}", callable->kind_name());
    if (args->kind != PyKind::Tuple) bad("call arguments must be a tuple");
    if (!hooks_.call) bad("calls are not allowed");
    return hooks_.call(callable, args);
  }
  void set_items(PyRef& target, std::vector<PyRef>& kv) {
    if (target->kind != PyKind::Dict) bad("SETITEM(S) on a {}", target->kind_name());
    if (kv.size() % 2) bad("odd number of items for SETITEMS");
    // Appended in order without a duplicate scan (a pickled dict has unique keys;
    // a crafted duplicate surfaces later as a duplicate tensor name error).
    for (size_t k = 0; k < kv.size(); k += 2) target->dict.emplace_back(kv[k], kv[k + 1]);
  }
  void append_items(PyRef& target, std::vector<PyRef> v) {
    if (target->kind != PyKind::List && target->kind != PyKind::Set)
      bad("APPEND(S)/ADDITEMS on a {}", target->kind_name());
    for (auto& x : v) target->items.push_back(std::move(x));
  }
  PyRef parse_decimal_int(const std::string& s, bool allow_bool) {
    if (allow_bool && s == "00") { auto r = PyObj::make(PyKind::Bool); return r; }
    if (allow_bool && s == "01") { auto r = PyObj::make(PyKind::Bool); r->b = true; return r; }
    std::string t = s;
    if (!t.empty() && t.back() == 'L') t.pop_back();
    if (t.empty()) bad("empty integer literal");
    errno = 0;
    char* end = nullptr;
    long long v = std::strtoll(t.c_str(), &end, 10);
    if (*end != '\0' || errno == ERANGE) bad("unsupported integer literal '{}'", s.substr(0, 32));
    return PyObj::make_int(v);
  }
  PyRef long_bytes(const std::string& raw) {
    if (raw.size() <= 8) {
      uint64_t v = 0;
      for (size_t j = raw.size(); j-- > 0;) v = (v << 8) | static_cast<uint8_t>(raw[j]);
      if (!raw.empty() && raw.size() < 8 && (static_cast<uint8_t>(raw.back()) & 0x80))
        v |= ~uint64_t{0} << (8 * raw.size());  // sign-extend
      return PyObj::make_int(static_cast<int64_t>(v));
    }
    auto r = PyObj::make(PyKind::BigInt);
    r->s = raw;
    return r;
  }
  std::string unquote(const std::string& s) {
    if (s.size() >= 2 && (s.front() == '\'' || s.front() == '"') && s.back() == s.front())
      return s.substr(1, s.size() - 2);
    bad("malformed STRING literal");
  }
};

PyRef Machine::run(size_t* end_pos) {
  for (;;) {
    const uint8_t op = u8();
    switch (op) {
      case 0x80: {  // PROTO
        uint8_t v = u8();
        if (v > 5) bad("unsupported pickle protocol {}", v);
        break;
      }
      case 0x95: uN(8); break;  // FRAME: length only, data follows inline
      case '.': {               // STOP
        PyRef r = pop();
        *end_pos = p_;
        return r;
      }
      case '(': marks_.push_back(stack_.size()); break;
      case '0': pop(); break;
      case '1': pop_mark(); break;
      case '2': push(top()); break;
      case 'N': push(PyObj::make(PyKind::None)); break;
      case 0x88: { auto r = PyObj::make(PyKind::Bool); r->b = true; push(r); break; }
      case 0x89: push(PyObj::make(PyKind::Bool)); break;
      case 'I': push(parse_decimal_int(line(), true)); break;
      case 'L': push(parse_decimal_int(line(), false)); break;
      case 'J': push(PyObj::make_int(static_cast<int32_t>(uN(4)))); break;
      case 'K': push(PyObj::make_int(u8())); break;
      case 'M': push(PyObj::make_int(static_cast<int64_t>(uN(2)))); break;
      case 0x8a: { uint8_t k = u8(); push(long_bytes(bytes(k))); break; }
      case 0x8b: {
        uint64_t k = uN(4);
        if (k & 0x80000000u) bad("negative LONG4 length");
        push(long_bytes(bytes(k)));
        break;
      }
      case 'F': {
        std::string s = line();
        char* end = nullptr;
        auto r = PyObj::make(PyKind::Float);
        r->f = std::strtod(s.c_str(), &end);
        if (end == s.c_str()) bad("malformed FLOAT");
        push(r);
        break;
      }
      case 'G': {
        uint64_t bits = 0;
        need(8);
        for (int j = 0; j < 8; ++j) bits = (bits << 8) | d_[p_ + j];  // big-endian
        p_ += 8;
        auto r = PyObj::make(PyKind::Float);
        std::memcpy(&r->f, &bits, 8);
        push(r);
        break;
      }
      case 'S': { auto r = PyObj::make(PyKind::Str); r->s = unquote(line()); push(r); break; }
      case 'T': { uint64_t k = uN(4); if (k & 0x80000000u) bad("negative BINSTRING length"); auto r = PyObj::make(PyKind::Str); r->s = bytes(k); push(r); break; }
      case 'U': { auto r = PyObj::make(PyKind::Str); r->s = bytes(u8()); push(r); break; }
      case 'V': push(PyObj::make_str(line())); break;
      case 'X': push(PyObj::make_str(bytes(uN(4)))); break;
      case 0x8c: push(PyObj::make_str(bytes(u8()))); break;
      case 0x8d: push(PyObj::make_str(bytes(uN(8)))); break;
      case 'B': { auto r = PyObj::make(PyKind::Bytes); r->s = bytes(uN(4)); push(r); break; }
      case 'C': { auto r = PyObj::make(PyKind::Bytes); r->s = bytes(u8()); push(r); break; }
      case 0x8e: case 0x96: { auto r = PyObj::make(PyKind::Bytes); r->s = bytes(uN(8)); push(r); break; }
      case ')': push(tuple({})); break;
      case 't': push(tuple(pop_mark())); break;
      case 0x85: { auto a = pop(); push(tuple({a})); break; }
      case 0x86: { auto b = pop(); auto a = pop(); push(tuple({a, b})); break; }
      case 0x87: { auto c = pop(); auto b = pop(); auto a = pop(); push(tuple({a, b, c})); break; }
      case ']': push(PyObj::make(PyKind::List)); break;
      case 'l': { auto l = PyObj::make(PyKind::List); l->items = pop_mark(); push(l); break; }
      case 'a': { auto v = pop(); append_items(top(), {v}); break; }
      case 'e': { auto v = pop_mark(); append_items(top(), std::move(v)); break; }
      case '}': push(PyObj::make(PyKind::Dict)); break;
      case 'd': {
        auto v = pop_mark();
        auto dct = PyObj::make(PyKind::Dict);
        set_items(dct, v);
        push(dct);
        break;
      }
      case 's': { auto v = pop(); auto k = pop(); std::vector<PyRef> kv{k, v}; set_items(top(), kv); break; }
      case 'u': { auto v = pop_mark(); set_items(top(), v); break; }
      case 0x8f: push(PyObj::make(PyKind::Set)); break;
      case 0x90: { auto v = pop_mark(); append_items(top(), std::move(v)); break; }
      case 0x91: { auto s = PyObj::make(PyKind::Set); s->items = pop_mark(); push(s); break; }
      case 'c': {
        std::string module = line();
        std::string name = line();
        push(global(module, name));
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        auto name = pop();
        auto module = pop();
        if (module->kind != PyKind::Str || name->kind != PyKind::Str) bad("STACK_GLOBAL needs two strings");
        push(global(module->s, name->s));
        break;
      }
      case 'R': { auto args = pop(); auto fn = pop(); push(call(fn, args)); break; }
      case 0x81: { auto args = pop(); auto cls = pop(); push(call(cls, args)); break; }
      case 0x92: {
        auto kwargs = pop();
        auto args = pop();
        auto cls = pop();
        if (kwargs->kind != PyKind::Dict || !kwargs->dict.empty()) bad("NEWOBJ_EX with keyword arguments");
        push(call(cls, args));
        break;
      }
      case 'i': {  // INST
        std::string module = line();
        std::string name = line();
        auto args = pop_mark();
        auto cls = global(module, name);
        push(call(cls, tuple(std::move(args))));
        break;
      }
      case 'o': {  // OBJ
        auto v = pop_mark();
        if (v.empty()) bad("OBJ without class");
        auto cls = v.front();
        push(call(cls, tuple(std::vector<PyRef>(v.begin() + 1, v.end()))));
        break;
      }
      case 'b': {  // BUILD: state is kept but never used to call anything
        auto state = pop();
        mutables_.push_back(top());
        top()->state = state;
        break;
      }
      case 'p': { std::string s = line(); memo_[std::strtoull(s.c_str(), nullptr, 10)] = top(); break; }
      case 'q': memo_[u8()] = top(); break;
      case 'r': memo_[uN(4)] = top(); break;
      case 0x94: memo_[memo_.size()] = top(); break;
      case 'g': { std::string s = line(); push(memo_get(std::strtoull(s.c_str(), nullptr, 10))); break; }
      case 'h': push(memo_get(u8())); break;
      case 'j': push(memo_get(uN(4))); break;
      case 'P': {
        if (!hooks_.persistent_load) bad("persistent id without a container");
        push(hooks_.persistent_load(PyObj::make_str(line())));
        break;
      }
      case 'Q': {
        if (!hooks_.persistent_load) bad("persistent id without a container");
        auto pid = pop();
        push(hooks_.persistent_load(pid));
        break;
      }
      case 0x82: case 0x83: case 0x84: bad("extension registry opcodes are not supported");
      case 0x97: case 0x98: bad("out-of-band buffers are not supported");
      default: bad("unknown opcode 0x{:02x}", op);
    }
  }
}

}  // namespace

Unpickled::~Unpickled() {
  for (auto& m : mutables) {
    m->items.clear();
    m->dict.clear();
    m->state.reset();
  }
}

Unpickled unpickle(const uint8_t* data, size_t size, size_t* pos, const UnpickleHooks& hooks,
                   const std::string& where) {
  if (*pos >= size) throw Error(fmt::format("{}: pickle: empty data", where));
  Unpickled out;
  Machine m(data, size, *pos, hooks, where, out.mutables);
  out.root = m.run(pos);
  return out;
}

}  // namespace hallo::io
