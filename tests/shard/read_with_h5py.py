#!/usr/bin/env python3
"""Reads one clip of a hallo shard with plain h5py, the way data/README.md
describes it, re-computes the clip and frame checksums, and dumps a few values
as JSON for the C++ test to compare. Exit 77 when h5py is missing (test skip).

usage: read_with_h5py.py SHARD.h5 CLIP_ID OUT.json   (also writes OUT.json's dir/frame3.jpg)
"""
import json
import os
import struct
import sys

try:
    import h5py
    import numpy as np
except ImportError:
    sys.exit(77)

ATTRS = ["id", "source", "t_start", "t_end", "fps", "num_frames", "height", "width",
         "frame_storage", "audio_extractor", "audio_layers", "audio_dim", "latent_channels",
         "face_emb_valid", "meta"]
DATASETS = (["frame_checksums", "audio", "face_region"]
            + [f"{k}_mask_{l}" for k in ("lip", "face", "pose") for l in range(4)]
            + ["face_emb", "latent_mean", "latent_std", "face_boxes", "landmarks"])


def fnv1a64(data, h=0xCBF29CE484222325):
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def clip_checksum(g):
    h = 0xCBF29CE484222325
    for name in ATTRS:
        v = g.attrs[name]
        if isinstance(v, (bytes, str)):
            payload = v.encode("utf-8") if isinstance(v, str) else v
        elif isinstance(v, (float, np.floating)):
            payload = struct.pack("<d", float(v))
        else:
            payload = struct.pack("<q", int(v))
        h = fnv1a64(name.encode() + b"\0" + struct.pack("<Q", len(payload)) + payload, h)
    for name in DATASETS:
        if name not in g:
            continue
        arr = np.ascontiguousarray(g[name][()])
        payload = arr.tobytes()
        head = name.encode() + b"\0" + struct.pack("<Q", arr.ndim)
        head += b"".join(struct.pack("<Q", d) for d in arr.shape)
        h = fnv1a64(head + struct.pack("<Q", len(payload)) + payload, h)
    return h


def main():
    shard, clip_id, out = sys.argv[1:4]
    with h5py.File(shard, "r") as f:
        assert f.attrs["format"] == "hallo-shard"
        g = f["clips"][clip_id]
        audio = g["audio"][()]
        frames = g["frames"]
        sums = g["frame_checksums"][()]
        frame3 = bytes(frames[3])
        with open(os.path.join(os.path.dirname(out), "frame3.jpg"), "wb") as fp:
            fp.write(frame3)
        result = {
            "id": g.attrs["id"],
            "source": g.attrs["source"],
            "num_frames": int(g.attrs["num_frames"]),
            "meta": json.loads(g.attrs["meta"]),
            "audio_dtype": str(audio.dtype),
            "audio_shape": list(audio.shape),
            "audio_4_1_0": float(audio[4, 1, 0]),
            "audio_2_1_2": float(audio[2, 1, 2]),
            "face_emb_7": float(g["face_emb"][7]),
            "lip_mask_1_shape": list(g["lip_mask_1"].shape),
            "checksum_matches": clip_checksum(g) == int(g.attrs["checksum"]),
            "frame_checksums_match": all(fnv1a64(bytes(frames[i])) == int(sums[i])
                                         for i in range(len(frames))),
        }
    with open(out, "w") as fp:
        json.dump(result, fp)


if __name__ == "__main__":
    main()
