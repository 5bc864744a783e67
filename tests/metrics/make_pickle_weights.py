#!/usr/bin/env python3
"""Re-save a .safetensors file as a torch.save checkpoint, for the C++ weight-format tests.

usage: make_pickle_weights.py IN.safetensors OUT.pth legacy|zip

The safetensors file is parsed by hand (8-byte little-endian header length, JSON header,
data region) so only torch and numpy are needed. The tensors go into an OrderedDict with
a `_metadata` attribute, the way `module.state_dict()` returns them; `legacy` writes the
pre-1.6 format that pytorch-fid's pt_inception-2015-12-05 file uses, `zip` the current one.
Exit status 0 on success, 2 on usage errors (and 1 with a traceback otherwise).
"""
import collections
import json
import struct
import sys

import numpy as np
import torch

DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "I64": np.int64, "I32": np.int32, "U8": np.uint8}


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    data = memoryview(raw)[8 + n :]
    out = collections.OrderedDict()
    for name, e in header.items():
        if name == "__metadata__":
            continue
        begin, end = e["data_offsets"]
        arr = np.frombuffer(data[begin:end], dtype=DTYPES[e["dtype"]]).reshape(e["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out


def main(argv):
    if len(argv) != 4 or argv[3] not in ("legacy", "zip"):
        print(__doc__, file=sys.stderr)
        return 2
    sd = read_safetensors(argv[1])
    sd._metadata = collections.OrderedDict([("", {"version": 1})])
    torch.save(sd, argv[2], _use_new_zipfile_serialization=(argv[3] == "zip"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
