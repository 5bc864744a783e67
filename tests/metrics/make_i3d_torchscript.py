#!/usr/bin/env python3
"""I3D detector files for the hallo_metrics FVD tests (needs torch; no safetensors package).

  make_i3d_torchscript.py WEIGHTS.safetensors OUT_DIR [--bn-eps EPS] [--pool T H W]
      reads an I3D state dict that the C++ test wrote (VideoGPT / piergiaj key layout,
      F32, no num_batches_tracked) and writes, from the same weights:
        OUT_DIR/i3d_torchscript.pt  torch.jit.script of an I3D whose forward has the
                                    signature of StyleGAN-V's i3d_torchscript.pt:
                                    forward(x, rescale: bool, resize: bool, return_features: bool)
        OUT_DIR/i3d_state_dict.pt   torch.save(state_dict) (zip), the i3d_pretrained_400.pt format

The network is written here from the published topology (Inception-v1 inflated, TF "SAME"
padding computed from the input size, zero padding before max pools too, bias-free
conv + BatchNorm + ReLU units, (2,7,7) average pool, 1x1x1 logits conv with bias), not
taken from the C++ port, so the test compares two independent implementations.
"""
import argparse
import json
import os
import struct
import sys
from typing import List, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def same_pad(size: int, k: int, s: int) -> Tuple[int, int]:
    """TF SAME: total pad from the input size, the odd element at the back."""
    if size % s == 0:
        pad = max(k - s, 0)
    else:
        pad = max(k - size % s, 0)
    return pad // 2, pad - pad // 2


def pad_same(x: torch.Tensor, k: List[int], s: List[int]) -> torch.Tensor:
    t0, t1 = same_pad(x.shape[2], k[0], s[0])
    h0, h1 = same_pad(x.shape[3], k[1], s[1])
    w0, w1 = same_pad(x.shape[4], k[2], s[2])
    return F.pad(x, [w0, w1, h0, h1, t0, t1])


class Unit(nn.Module):
    """conv3d (padding 0, SAME applied in forward) [+ BatchNorm + ReLU]."""

    def __init__(self, cin: int, cout: int, k: List[int], s: List[int], eps: float, logits: bool = False):
        super().__init__()
        self.k = k
        self.s = s
        self.logits = logits
        self.conv3d = nn.Conv3d(cin, cout, k, stride=s, padding=0, bias=logits)
        # The logits unit has no BN; an Identity keeps `bn` scriptable without parameters.
        self.bn = nn.Identity() if logits else nn.BatchNorm3d(cout, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv3d(pad_same(x, self.k, self.s))
        if self.logits:
            return y
        return F.relu(self.bn(y))


class PoolSame(nn.Module):
    def __init__(self, k: List[int], s: List[int]):
        super().__init__()
        self.k = k
        self.s = s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool3d(pad_same(x, self.k, self.s), self.k, self.s)


class Mixed(nn.Module):
    def __init__(self, cin: int, oc: List[int], eps: float):
        super().__init__()
        one, three = [1, 1, 1], [3, 3, 3]
        self.b0 = Unit(cin, oc[0], one, one, eps)
        self.b1a = Unit(cin, oc[1], one, one, eps)
        self.b1b = Unit(oc[1], oc[2], three, one, eps)
        self.b2a = Unit(cin, oc[3], one, one, eps)
        self.b2b = Unit(oc[3], oc[4], three, one, eps)
        self.b3a = PoolSame(three, one)
        self.b3b = Unit(cin, oc[5], one, one, eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], 1)


class I3D(nn.Module):
    def __init__(self, eps: float, pool: List[int], num_classes: int = 400):
        super().__init__()
        one = [1, 1, 1]
        self.pool = pool
        self.logits = Unit(1024, num_classes, one, one, eps, logits=True)
        self.Conv3d_1a_7x7 = Unit(3, 64, [7, 7, 7], [2, 2, 2], eps)
        self.MaxPool3d_2a_3x3 = PoolSame([1, 3, 3], [1, 2, 2])
        self.Conv3d_2b_1x1 = Unit(64, 64, one, one, eps)
        self.Conv3d_2c_3x3 = Unit(64, 192, [3, 3, 3], one, eps)
        self.MaxPool3d_3a_3x3 = PoolSame([1, 3, 3], [1, 2, 2])
        self.Mixed_3b = Mixed(192, [64, 96, 128, 16, 32, 32], eps)
        self.Mixed_3c = Mixed(256, [128, 128, 192, 32, 96, 64], eps)
        self.MaxPool3d_4a_3x3 = PoolSame([3, 3, 3], [2, 2, 2])
        self.Mixed_4b = Mixed(480, [192, 96, 208, 16, 48, 64], eps)
        self.Mixed_4c = Mixed(512, [160, 112, 224, 24, 64, 64], eps)
        self.Mixed_4d = Mixed(512, [128, 128, 256, 24, 64, 64], eps)
        self.Mixed_4e = Mixed(512, [112, 144, 288, 32, 64, 64], eps)
        self.Mixed_4f = Mixed(528, [256, 160, 320, 32, 128, 128], eps)
        self.MaxPool3d_5a_2x2 = PoolSame([2, 2, 2], [2, 2, 2])
        self.Mixed_5b = Mixed(832, [256, 160, 320, 32, 128, 128], eps)
        self.Mixed_5c = Mixed(832, [384, 192, 384, 48, 128, 128], eps)

    def forward(self, x: torch.Tensor, rescale: bool = False, resize: bool = False,
                return_features: bool = False) -> torch.Tensor:
        # StyleGAN-V's call convention; here rescale maps [0,255] to [-1,1] and resize
        # goes to 224x224 (the test always passes False, False, True).
        if rescale:
            x = x / 127.5 - 1.0
        if resize:
            x = F.interpolate(x, size=[x.shape[2], 224, 224], mode="trilinear", align_corners=False)
        x = self.Conv3d_1a_7x7(x)
        x = self.MaxPool3d_2a_3x3(x)
        x = self.Conv3d_2b_1x1(x)
        x = self.Conv3d_2c_3x3(x)
        x = self.MaxPool3d_3a_3x3(x)
        x = self.Mixed_3b(x)
        x = self.Mixed_3c(x)
        x = self.MaxPool3d_4a_3x3(x)
        x = self.Mixed_4b(x)
        x = self.Mixed_4c(x)
        x = self.Mixed_4d(x)
        x = self.Mixed_4e(x)
        x = self.Mixed_4f(x)
        x = self.MaxPool3d_5a_2x2(x)
        x = self.Mixed_5b(x)
        x = self.Mixed_5c(x)
        x = F.avg_pool3d(x, self.pool, [1, 1, 1])
        logits = self.logits(x).squeeze(4).squeeze(3).mean(2)  # [B,400]
        if return_features:
            return logits
        return F.softmax(logits, dim=1)


def read_safetensors(path):
    """Minimal reader (F32 only): 8-byte LE header length, JSON header, data."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    data = blob[8 + n:]
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        if e["dtype"] != "F32":
            raise ValueError(f"{path}: {name} has dtype {e['dtype']}, expected F32")
        b, end = e["data_offsets"]
        arr = np.frombuffer(data[b:end], dtype="<f4").reshape(e["shape"]).copy()
        out[name] = torch.from_numpy(arr)
    return out


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("weights")
    ap.add_argument("out_dir")
    ap.add_argument("--bn-eps", type=float, default=1e-5)
    ap.add_argument("--pool", type=int, nargs=3, default=[2, 7, 7])
    a = ap.parse_args(argv[1:])

    sd = read_safetensors(a.weights)
    net = I3D(a.bn_eps, list(a.pool)).eval()
    res = net.load_state_dict(sd, strict=False)
    missing = [k for k in res.missing_keys if not k.endswith("num_batches_tracked")]
    if missing or res.unexpected_keys:
        print(f"{a.weights}: missing {missing}, unexpected {res.unexpected_keys}", file=sys.stderr)
        return 2

    os.makedirs(a.out_dir, exist_ok=True)
    torch.jit.save(torch.jit.script(net), os.path.join(a.out_dir, "i3d_torchscript.pt"))
    # VideoGPT's converted checkpoint: a plain dict, no num_batches_tracked.
    plain = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(plain, os.path.join(a.out_dir, "i3d_state_dict.pt"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
