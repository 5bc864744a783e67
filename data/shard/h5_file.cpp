#include "data/shard/h5_file.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace hallo::data::h5 {

Handle& Handle::operator=(Handle&& o) noexcept {
  if (this != &o) {
    reset();
    id_ = o.id_;
    close_ = o.close_;
    o.id_ = -1;
  }
  return *this;
}

void Handle::reset() {
  if (id_ >= 0 && close_) close_(id_);
  id_ = -1;
}

namespace {

std::recursive_mutex& h5_mutex() {
  static std::recursive_mutex m;
  return m;
}

herr_t first_desc(unsigned, const H5E_error2_t* err, void* data) {
  auto* s = static_cast<std::string*>(data);
  if (s->empty() && err && err->desc && *err->desc) *s = err->desc;
  return 0;
}

// The innermost entry of HDF5's error stack is the most specific reason.
std::string reason() {
  std::string s;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, first_desc, &s);
  H5Eclear2(H5E_DEFAULT);
  return s.empty() ? std::string("HDF5 call failed") : s;
}

void check_status(herr_t st, const std::string& where, const std::string& what) {
  if (st < 0) fail_at(where, "{}: {}", what, reason());
}

// IEEE binary16, little-endian, laid out the way numpy/h5py define float16.
hid_t f16_type() {
  static hid_t t = [] {
    hid_t x = H5Tcopy(H5T_IEEE_F32LE);
    H5Tset_fields(x, 15, 10, 5, 0, 10);
    H5Tset_size(x, 2);
    H5Tset_ebias(x, 15);
    return x;
  }();
  return t;
}

hid_t elem_type(Elem e) {
  switch (e) {
    case Elem::U8: return H5T_STD_U8LE;
    case Elem::U64: return H5T_STD_U64LE;
    case Elem::I64: return H5T_STD_I64LE;
    case Elem::F16: return f16_type();
    case Elem::F32: return H5T_IEEE_F32LE;
    case Elem::F64: return H5T_IEEE_F64LE;
  }
  return H5T_STD_U8LE;
}

// Timestamps off: identical input gives byte-identical shards (resume relies on it).
Handle object_plist(hid_t cls, const std::string& where) {
  Handle p(check(H5Pcreate(cls), where, "H5Pcreate"), H5Pclose);
  check_status(H5Pset_obj_track_times(p.get(), false), where, "H5Pset_obj_track_times");
  return p;
}

Handle simple_space(const std::vector<hsize_t>& dims, const std::string& where) {
  return Handle(check(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), where,
                      "H5Screate_simple"),
                H5Sclose);
}

Handle vlen_u8_type(const std::string& where) {
  return Handle(check(H5Tvlen_create(H5T_STD_U8LE), where, "H5Tvlen_create"), H5Tclose);
}

Handle string_type(const std::string& where) {
  Handle t(check(H5Tcopy(H5T_C_S1), where, "H5Tcopy"), H5Tclose);
  check_status(H5Tset_size(t.get(), H5T_VARIABLE), where, "H5Tset_size");
  check_status(H5Tset_cset(t.get(), H5T_CSET_UTF8), where, "H5Tset_cset");
  return t;
}

Handle open_dataset(hid_t group, const std::string& name, const std::string& where) {
  return Handle(check(H5Dopen2(group, name.c_str(), H5P_DEFAULT), where,
                      "cannot open dataset '" + name + "'"),
                H5Dclose);
}

std::vector<hsize_t> dataset_dims(hid_t dset, const std::string& where, const std::string& name) {
  Handle space(check(H5Dget_space(dset), where, "H5Dget_space"), H5Sclose);
  const int nd = H5Sget_simple_extent_ndims(space.get());
  if (nd < 0) fail_at(where, "dataset '{}': cannot read its shape: {}", name, reason());
  std::vector<hsize_t> dims(static_cast<size_t>(nd));
  if (nd > 0) H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  return dims;
}

}  // namespace

Lock::Lock() : guard_(h5_mutex()) { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

hid_t check(hid_t id, const std::string& where, const std::string& what) {
  if (id < 0) fail_at(where, "{}: {}", what, reason());
  return id;
}

Handle create_file(const std::string& path) {
  Handle fcpl = object_plist(H5P_FILE_CREATE, path);
  return Handle(check(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, fcpl.get(), H5P_DEFAULT), path,
                      "cannot create HDF5 file"),
                H5Fclose);
}

Handle open_file(const std::string& path, bool writable) {
  return Handle(check(H5Fopen(path.c_str(), writable ? H5F_ACC_RDWR : H5F_ACC_RDONLY, H5P_DEFAULT),
                      path, "cannot open HDF5 file"),
                H5Fclose);
}

Handle create_group(hid_t parent, const std::string& name, const std::string& where) {
  Handle gcpl = object_plist(H5P_GROUP_CREATE, where);
  return Handle(check(H5Gcreate2(parent, name.c_str(), H5P_DEFAULT, gcpl.get(), H5P_DEFAULT), where,
                      "cannot create group '" + name + "'"),
                H5Gclose);
}

Handle open_group(hid_t parent, const std::string& name, const std::string& where) {
  return Handle(check(H5Gopen2(parent, name.c_str(), H5P_DEFAULT), where,
                      "cannot open group '" + name + "'"),
                H5Gclose);
}

bool exists(hid_t parent, const std::string& name) {
  return H5Lexists(parent, name.c_str(), H5P_DEFAULT) > 0;
}

void write_attr(hid_t obj, const Attr& a, const std::string& where) {
  Handle space(check(H5Screate(H5S_SCALAR), where, "H5Screate"), H5Sclose);
  const std::string what = "cannot write attribute '" + a.name + "'";
  switch (a.kind) {
    case Attr::Kind::Str: {
      Handle t = string_type(where);
      Handle attr(check(H5Acreate2(obj, a.name.c_str(), t.get(), space.get(), H5P_DEFAULT,
                                   H5P_DEFAULT),
                        where, what),
                  H5Aclose);
      const char* p = a.s.c_str();
      check_status(H5Awrite(attr.get(), t.get(), &p), where, what);
      break;
    }
    case Attr::Kind::I64: {
      Handle attr(check(H5Acreate2(obj, a.name.c_str(), H5T_STD_I64LE, space.get(), H5P_DEFAULT,
                                   H5P_DEFAULT),
                        where, what),
                  H5Aclose);
      check_status(H5Awrite(attr.get(), H5T_NATIVE_INT64, &a.i), where, what);
      break;
    }
    case Attr::Kind::F64: {
      Handle attr(check(H5Acreate2(obj, a.name.c_str(), H5T_IEEE_F64LE, space.get(), H5P_DEFAULT,
                                   H5P_DEFAULT),
                        where, what),
                  H5Aclose);
      check_status(H5Awrite(attr.get(), H5T_NATIVE_DOUBLE, &a.d), where, what);
      break;
    }
  }
}

void write_attr_u64(hid_t obj, const std::string& name, uint64_t v, const std::string& where) {
  const std::string what = "cannot write attribute '" + name + "'";
  Handle space(check(H5Screate(H5S_SCALAR), where, "H5Screate"), H5Sclose);
  Handle attr(check(H5Acreate2(obj, name.c_str(), H5T_STD_U64LE, space.get(), H5P_DEFAULT,
                               H5P_DEFAULT),
                    where, what),
              H5Aclose);
  check_status(H5Awrite(attr.get(), H5T_NATIVE_UINT64, &v), where, what);
}

Attr read_attr(hid_t obj, const std::string& name, const std::string& where) {
  const std::string what = "cannot read attribute '" + name + "'";
  if (H5Aexists(obj, name.c_str()) <= 0) fail_at(where, "attribute '{}' is missing", name);
  Handle attr(check(H5Aopen(obj, name.c_str(), H5P_DEFAULT), where, what), H5Aclose);
  Handle ftype(check(H5Aget_type(attr.get()), where, what), H5Tclose);
  Handle space(check(H5Aget_space(attr.get()), where, what), H5Sclose);
  if (H5Sget_simple_extent_npoints(space.get()) != 1)
    fail_at(where, "attribute '{}' is not a scalar", name);
  Attr a;
  a.name = name;
  switch (H5Tget_class(ftype.get())) {
    case H5T_STRING: {
      a.kind = Attr::Kind::Str;
      if (H5Tis_variable_str(ftype.get()) > 0) {
        Handle t = string_type(where);
        char* p = nullptr;
        check_status(H5Aread(attr.get(), t.get(), &p), where, what);
        if (p) a.s = p;
        H5Dvlen_reclaim(t.get(), space.get(), H5P_DEFAULT, &p);
      } else {  // fixed-length (e.g. written by other tools): trailing NULs trimmed
        const size_t n = H5Tget_size(ftype.get());
        std::string buf(n, '\0');
        check_status(H5Aread(attr.get(), ftype.get(), buf.data()), where, what);
        a.s = buf.substr(0, std::min(buf.find('\0'), n));
      }
      break;
    }
    case H5T_INTEGER:
      a.kind = Attr::Kind::I64;
      check_status(H5Aread(attr.get(), H5T_NATIVE_INT64, &a.i), where, what);
      break;
    case H5T_FLOAT:
      a.kind = Attr::Kind::F64;
      check_status(H5Aread(attr.get(), H5T_NATIVE_DOUBLE, &a.d), where, what);
      break;
    default:
      fail_at(where, "attribute '{}' has an unsupported type", name);
  }
  return a;
}

uint64_t read_attr_u64(hid_t obj, const std::string& name, const std::string& where) {
  const std::string what = "cannot read attribute '" + name + "'";
  if (H5Aexists(obj, name.c_str()) <= 0) fail_at(where, "attribute '{}' is missing", name);
  Handle attr(check(H5Aopen(obj, name.c_str(), H5P_DEFAULT), where, what), H5Aclose);
  uint64_t v = 0;
  check_status(H5Aread(attr.get(), H5T_NATIVE_UINT64, &v), where, what);
  return v;
}

void write_blob(hid_t group, const Blob& b, int gzip_level, const std::string& where) {
  const std::string what = "cannot write dataset '" + b.name + "'";
  std::vector<hsize_t> dims(b.dims.begin(), b.dims.end());
  Handle space = simple_space(dims, where);
  Handle dcpl = object_plist(H5P_DATASET_CREATE, where);
  const bool nonempty = !dims.empty() && std::all_of(dims.begin(), dims.end(),
                                                     [](hsize_t d) { return d > 0; });
  if (b.chunk_rows > 0 && nonempty) {
    std::vector<hsize_t> chunk = dims;
    chunk[0] = std::min<hsize_t>(b.chunk_rows, dims[0]);
    check_status(H5Pset_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data()), where,
                 what);
    if (b.compress && gzip_level > 0) {
      if (elem_size(b.elem) > 1) check_status(H5Pset_shuffle(dcpl.get()), where, what);
      check_status(H5Pset_deflate(dcpl.get(), static_cast<unsigned>(gzip_level)), where, what);
    }
  }
  const hid_t type = elem_type(b.elem);
  Handle dset(check(H5Dcreate2(group, b.name.c_str(), type, space.get(), H5P_DEFAULT, dcpl.get(),
                               H5P_DEFAULT),
                    where, what),
              H5Dclose);
  if (!b.bytes.empty())
    check_status(H5Dwrite(dset.get(), type, H5S_ALL, H5S_ALL, H5P_DEFAULT, b.bytes.data()), where,
                 what);
}

Blob read_blob(hid_t group, const std::string& name, Elem elem, const std::string& where) {
  const std::string what = "cannot read dataset '" + name + "'";
  Handle dset = open_dataset(group, name, where);
  Handle ftype(check(H5Dget_type(dset.get()), where, what), H5Tclose);
  const hid_t type = elem_type(elem);
  if (H5Tequal(ftype.get(), type) <= 0)
    fail_at(where, "dataset '{}' has an unexpected element type", name);
  Blob b;
  b.name = name;
  b.elem = elem;
  uint64_t n = 1;
  for (hsize_t d : dataset_dims(dset.get(), where, name)) {
    b.dims.push_back(d);
    n *= d;
  }
  b.bytes.resize(n * elem_size(elem));
  if (n > 0)
    check_status(H5Dread(dset.get(), type, H5S_ALL, H5S_ALL, H5P_DEFAULT, b.bytes.data()), where,
                 what);
  return b;
}

void write_vlen_frames(hid_t group, const std::string& name,
                       const std::vector<std::vector<uint8_t>>& frames, const std::string& where) {
  const std::string what = "cannot write dataset '" + name + "'";
  Handle vtype = vlen_u8_type(where);
  Handle space = simple_space({frames.size()}, where);
  Handle dcpl = object_plist(H5P_DATASET_CREATE, where);
  Handle dset(check(H5Dcreate2(group, name.c_str(), vtype.get(), space.get(), H5P_DEFAULT,
                               dcpl.get(), H5P_DEFAULT),
                    where, what),
              H5Dclose);
  std::vector<hvl_t> vl(frames.size());
  for (size_t i = 0; i < frames.size(); ++i) {
    vl[i].len = frames[i].size();
    vl[i].p = const_cast<uint8_t*>(frames[i].data());
  }
  check_status(H5Dwrite(dset.get(), vtype.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, vl.data()), where,
               what);
}

namespace {

// Selects rows [index, index+1) of dim 0 in the dataset's file space.
Handle select_row(hid_t dset, uint64_t index, const std::string& where, const std::string& name) {
  const auto dims = dataset_dims(dset, where, name);
  if (dims.empty() || index >= dims[0])
    fail_at(where, "dataset '{}': frame {} out of range (has {})", name, index,
            dims.empty() ? 0 : dims[0]);
  Handle fs(check(H5Dget_space(dset), where, "H5Dget_space"), H5Sclose);
  std::vector<hsize_t> start(dims.size(), 0), count = dims;
  start[0] = index;
  count[0] = 1;
  if (H5Sselect_hyperslab(fs.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr) < 0)
    fail_at(where, "dataset '{}': cannot select frame {}: {}", name, index, reason());
  return fs;
}

}  // namespace

std::vector<uint8_t> read_vlen_frame(hid_t group, const std::string& name, uint64_t index,
                                     const std::string& where) {
  const std::string what = "cannot read frame " + std::to_string(index);
  Handle dset = open_dataset(group, name, where);
  Handle vtype = vlen_u8_type(where);
  Handle ftype(check(H5Dget_type(dset.get()), where, what), H5Tclose);
  if (H5Tget_class(ftype.get()) != H5T_VLEN)
    fail_at(where, "dataset '{}' is not a variable-length (JPEG) frame list", name);
  Handle fs = select_row(dset.get(), index, where, name);
  Handle ms = simple_space({1}, where);
  hvl_t v{0, nullptr};
  check_status(H5Dread(dset.get(), vtype.get(), ms.get(), fs.get(), H5P_DEFAULT, &v), where, what);
  std::vector<uint8_t> out(static_cast<const uint8_t*>(v.p), static_cast<const uint8_t*>(v.p) + v.len);
  H5Dvlen_reclaim(vtype.get(), ms.get(), H5P_DEFAULT, &v);
  return out;
}

void write_raw_frames(hid_t group, const std::string& name,
                      const std::vector<std::vector<uint8_t>>& frames, int height, int width,
                      int gzip_level, const std::string& where) {
  const std::string what = "cannot write dataset '" + name + "'";
  const std::vector<hsize_t> dims = {frames.size(), static_cast<hsize_t>(height),
                                     static_cast<hsize_t>(width), 3};
  Handle space = simple_space(dims, where);
  Handle dcpl = object_plist(H5P_DATASET_CREATE, where);
  const std::vector<hsize_t> chunk = {1, dims[1], dims[2], 3};
  check_status(H5Pset_chunk(dcpl.get(), 4, chunk.data()), where, what);
  if (gzip_level > 0)
    check_status(H5Pset_deflate(dcpl.get(), static_cast<unsigned>(gzip_level)), where, what);
  Handle dset(check(H5Dcreate2(group, name.c_str(), H5T_STD_U8LE, space.get(), H5P_DEFAULT,
                               dcpl.get(), H5P_DEFAULT),
                    where, what),
              H5Dclose);
  Handle ms = simple_space(chunk, where);
  for (size_t f = 0; f < frames.size(); ++f) {
    Handle fs = select_row(dset.get(), f, where, name);
    check_status(H5Dwrite(dset.get(), H5T_STD_U8LE, ms.get(), fs.get(), H5P_DEFAULT,
                          frames[f].data()),
                 where, what);
  }
}

std::vector<uint8_t> read_raw_frame(hid_t group, const std::string& name, uint64_t index,
                                    int height, int width, const std::string& where) {
  const std::string what = "cannot read frame " + std::to_string(index);
  Handle dset = open_dataset(group, name, where);
  const auto dims = dataset_dims(dset.get(), where, name);
  if (dims.size() != 4 || dims[1] != static_cast<hsize_t>(height) ||
      dims[2] != static_cast<hsize_t>(width) || dims[3] != 3)
    fail_at(where, "dataset '{}' is not a [F,{},{},3] frame array", name, height, width);
  Handle fs = select_row(dset.get(), index, where, name);
  const std::vector<hsize_t> one = {1, dims[1], dims[2], 3};
  Handle ms = simple_space(one, where);
  std::vector<uint8_t> out(static_cast<size_t>(height) * width * 3);
  check_status(H5Dread(dset.get(), H5T_STD_U8LE, ms.get(), fs.get(), H5P_DEFAULT, out.data()),
               where, what);
  return out;
}

}  // namespace hallo::data::h5
