#!/usr/bin/env python3
"""Builds a seed corpus for one of the fuzz targets in fuzz/ (stdlib only).

  make_seeds.py safetensors OUT --fixtures tests/fixtures [--golden ../shared/golden] [--max-bytes N]
  make_seeds.py unpickler   OUT --fixtures tests/fixtures

safetensors: every <fixtures>/*.expected.safetensors plus every
<golden>/*.safetensors smaller than --max-bytes (1 MiB by default), verbatim.

unpickler: inputs are <mode byte><payload>, mode = byte % 3 (see
fuzz_unpickler.cpp): 0 raw pickle, 1 torch zip archive, 2 legacy torch stream.
For every <fixtures>/*.pth and *.ckpt this writes the whole file with mode 1
(zip) or 2 (legacy), the zip's data.pkl with mode 0, and each pickle of a
legacy stream (magic, protocol, sys_info, objects, storage keys) with mode 0.
Each zip also yields two rewritten variants with mode 1: one with a
<prefix>/byteorder record (newer torch writes it) and one in ZIP64 form (ZIP64
end record + locator, sizes/offsets in ZIP64 extra fields), so those reader
paths are in the corpus from the start.
A few pickles made here with the pickle module (protocols 0-5, self-referencing
containers, OrderedDict/set/bytes/big ints) cover opcodes the fixtures lack.

OUT is created if needed; existing files in it are left alone.
"""
import argparse
import collections
import glob
import hashlib
import io
import os
import pickle
import pickletools
import struct
import sys
import zipfile

MODE_PICKLE, MODE_ZIP, MODE_LEGACY = b"\x00", b"\x01", b"\x02"


_written = set()


def write(out, name, data):
    # Content hash in the name keeps names readable and unique; identical seeds are written once.
    h = hashlib.sha1(data).hexdigest()[:12]
    if h in _written:
        return
    _written.add(h)
    with open(os.path.join(out, f"{name}-{h}"), "wb") as f:
        f.write(data)


def safetensors_seeds(out, fixtures, golden, max_bytes):
    files = sorted(glob.glob(os.path.join(fixtures, "*.expected.safetensors"))) if fixtures else []
    if golden and os.path.isdir(golden):
        files += sorted(p for p in glob.glob(os.path.join(golden, "*.safetensors"))
                        if os.path.getsize(p) < max_bytes)
    for p in files:
        with open(p, "rb") as f:
            write(out, os.path.basename(p), f.read())
    return len(_written)


def split_pickles(data):
    """Yields the consecutive pickles at the start of data (stops at the first non-pickle)."""
    buf = io.BytesIO(data)
    while buf.tell() < len(data) and data[buf.tell()] == 0x80:
        start = buf.tell()
        try:
            for _ in pickletools.genops(buf):
                pass
        except Exception:
            return
        yield data[start:buf.tell()]


def with_byteorder(data):
    """The zip re-stored with a <prefix>/byteorder record, as torch >= 2.1 writes it."""
    src = zipfile.ZipFile(io.BytesIO(data))
    names = src.namelist()
    prefix = names[0].split("/")[0] + "/" if "/" in names[0] else ""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        for n in names:
            z.writestr(n, src.read(n))
        if prefix + "byteorder" not in names:
            z.writestr(prefix + "byteorder", b"little")
    return out.getvalue()


def as_zip64(data):
    """The same archive in ZIP64 form: every central directory entry's sizes and
    local-header offset moved into a ZIP64 extra field, and a ZIP64 end record
    plus locator in front of a saturated end-of-central-directory record.
    Assumes a well-formed archive without an archive comment."""
    eocd = data.rfind(b"PK\x05\x06")
    count, cd_size, cd_off = struct.unpack_from("<HII", data, eocd + 10)
    entries, p = [], cd_off
    for _ in range(count):
        fixed = bytearray(data[p:p + 46])
        nl, xl, cl = struct.unpack_from("<HHH", fixed, 28)
        csize, usize = struct.unpack_from("<II", fixed, 20)
        local = struct.unpack_from("<I", fixed, 42)[0]
        name = data[p + 46:p + 46 + nl]
        comment = data[p + 46 + nl + xl:p + 46 + nl + xl + cl]
        extra = struct.pack("<HHQQQ", 1, 24, usize, csize, local)
        struct.pack_into("<II", fixed, 20, 0xFFFFFFFF, 0xFFFFFFFF)
        struct.pack_into("<HHH", fixed, 28, nl, len(extra), cl)
        struct.pack_into("<I", fixed, 42, 0xFFFFFFFF)
        entries.append(bytes(fixed) + name + extra + comment)
        p += 46 + nl + xl + cl
    cd = b"".join(entries)
    body = data[:cd_off]
    e64_off = len(body) + len(cd)
    e64 = struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, count, count, len(cd), cd_off)
    loc = struct.pack("<IIQI", 0x07064B50, 0, e64_off, 1)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return body + cd + e64 + loc + end


def synthetic_pickles():
    cyc = []
    cyc.append(cyc)
    d = {"self": None}
    d["self"] = d
    objs = [
        collections.OrderedDict([("a", 1), ("b", [1.5, -2, None, True]), ("c", {"x": (1, 2, 3)})]),
        {"epoch": 3, "step": 2 ** 40, "big": 2 ** 100, "neg": -(2 ** 70), "name": "ünïcode", "raw": b"\x00\xff"},
        {"set": {1, 2, 3}, "frozen": frozenset({"a"}), "ba": bytearray(b"xyz"), "f": 3.25},
        [cyc, d, (cyc, d)],
    ]
    for i, o in enumerate(objs):
        for proto in range(0, 6):
            yield f"synthetic{i}_p{proto}", pickle.dumps(o, protocol=proto)


def unpickler_seeds(out, fixtures):
    files = sorted(glob.glob(os.path.join(fixtures, "*.pth")) + glob.glob(os.path.join(fixtures, "*.ckpt")))
    for p in files:
        base = os.path.basename(p)
        with open(p, "rb") as f:
            data = f.read()
        if data[:4] == b"PK\x03\x04":
            write(out, base + ".zip", MODE_ZIP + data)
            for label, variant in (("byteorder", with_byteorder), ("zip64", as_zip64)):
                try:
                    write(out, f"{base}.{label}.zip", MODE_ZIP + variant(data))
                except Exception as e:  # a malformed fixture (fine as a plain seed)
                    print(f"make_seeds: no {label} variant of {base}: {e}", file=sys.stderr)
            try:
                with zipfile.ZipFile(io.BytesIO(data)) as z:
                    for name in z.namelist():
                        if name.endswith("data.pkl"):
                            write(out, base + ".data.pkl", MODE_PICKLE + z.read(name))
            except zipfile.BadZipFile:
                pass
        else:
            write(out, base + ".legacy", MODE_LEGACY + data)
            for i, pk in enumerate(split_pickles(data)):
                write(out, f"{base}.pickle{i}", MODE_PICKLE + pk)
    for name, pk in synthetic_pickles():
        write(out, name, MODE_PICKLE + pk)
    return len(_written)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("target", choices=["safetensors", "unpickler"])
    ap.add_argument("out")
    ap.add_argument("--fixtures", help="tests/fixtures folder")
    ap.add_argument("--golden", help="shared/golden folder (safetensors only; skipped if absent)")
    ap.add_argument("--max-bytes", type=int, default=1 << 20, help="largest golden file to copy")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    if a.target == "safetensors":
        n = safetensors_seeds(a.out, a.fixtures, a.golden, a.max_bytes)
    else:
        n = unpickler_seeds(a.out, a.fixtures) if a.fixtures else 0
    print(f"make_seeds: {n} {a.target} seeds in {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
