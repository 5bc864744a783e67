#!/usr/bin/env python3
"""Re-save a SyncNet .safetensors file the way syncnet_v2.model is stored, for the C++ tests.

usage: make_syncnet_pickle.py IN.safetensors OUT.model

syncnet_v2.model is a legacy-format (pre-1.6, non-zip) torch pickle of a plain dict
name -> tensor without num_batches_tracked entries; this writes the same layout from
the tensors of IN. The safetensors file is parsed by hand (8-byte little-endian header
length, JSON header, data region) so only torch and numpy are needed.
Exit status 0 on success, 2 on usage errors (1 with a traceback otherwise).
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_pickle_weights import read_safetensors  # noqa: E402  (one reader for both scripts)


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    sd = dict(read_safetensors(argv[1]))  # a plain dict, as syncnet_v2.model is
    torch.save(sd, argv[2], _use_new_zipfile_serialization=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
