#!/usr/bin/env python3
"""Re-save a SyncNet .safetensors file the way syncnet_v2.model is stored, for the C++ tests.

usage: make_syncnet_pickle.py IN.safetensors OUT.model

syncnet_v2.model is a legacy-format (pre-1.6, non-zip) torch pickle of a plain dict
name -> tensor without num_batches_tracked entries; this writes the same layout from
the tensors of IN. The safetensors file is parsed by hand (8-byte little-endian header
length, JSON header, data region) so only torch and numpy are needed.
Exit status 0 on success, 2 on usage errors (1 with a traceback otherwise).
"""
import json
import struct
import sys

import numpy as np
import torch

DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64}


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    data = memoryview(raw)[8 + n :]
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        begin, end = e["data_offsets"]
        arr = np.frombuffer(data[begin:end], dtype=DTYPES[e["dtype"]]).reshape(e["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    sd = read_safetensors(argv[1])
    torch.save(sd, argv[2], _use_new_zipfile_serialization=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
