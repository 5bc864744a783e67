#!/usr/bin/env python3
"""Tiny ArcFace stand-in for the hallo_face tests (needs torch; no onnx package).

  make_tiny_arcface.py export OUT.onnx
      writes a seeded 3x112x112 -> 512 network (strided convs + flatten + linear,
      the same shape of computation as insightface's ResNets) as ONNX.
  make_tiny_arcface.py run CROP.rgb SIZE OUT.f32
      rebuilds the same network from the seed and runs it on a raw SIZExSIZEx3
      uint8 RGB crop with ArcFace preprocessing ((x - 127.5) / 127.5, NCHW),
      writing the raw float32 output. This is the reference cv::dnn must match.
"""
import sys

import numpy as np
import torch


def build(size):
    torch.manual_seed(20240612)
    side = size // 16  # three stride-2 convs and a 2x2 average pool
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, stride=2, padding=1),
        torch.nn.BatchNorm2d(8),
        torch.nn.PReLU(8),
        torch.nn.Conv2d(8, 16, 3, stride=2, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(16, 16, 3, stride=2, padding=1),
        torch.nn.ReLU(),
        torch.nn.AvgPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(16 * side * side, 512),
    )
    # Non-trivial BatchNorm statistics so the folded constants are exercised.
    bn = net[1]
    bn.running_mean.uniform_(-0.2, 0.2)
    bn.running_var.uniform_(0.5, 1.5)
    return net.eval()


def main(argv):
    if len(argv) == 3 and argv[1] == "export":
        net = build(112)
        with torch.no_grad():
            torch.onnx.export(net, torch.zeros(1, 3, 112, 112), argv[2], opset_version=11,
                              input_names=["data"], output_names=["fc1"])
        return 0
    if len(argv) == 5 and argv[1] == "run":
        size = int(argv[3])
        crop = np.fromfile(argv[2], dtype=np.uint8)
        if crop.size != size * size * 3:
            print(f"{argv[2]}: expected {size * size * 3} bytes, got {crop.size}", file=sys.stderr)
            return 2
        x = (crop.reshape(size, size, 3).astype(np.float32) - 127.5) / 127.5
        x = torch.from_numpy(x).permute(2, 0, 1).unsqueeze(0).contiguous()
        with torch.no_grad():
            y = build(size)(x)
        y.numpy().astype("<f4").tofile(argv[4])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
