#!/usr/bin/env python3
"""Tiny expression-coefficient model for the `hallo eval` E-FID test (needs torch).

  make_tiny_expression.py OUT.onnx
      writes a seeded 3x224x224 -> 70 network (strided convs + linear, the shape of
      computation of a Deep3DFaceRecon-style regressor) as ONNX; input RGB in [0, 1].
"""
import sys

import torch


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    torch.manual_seed(20241207)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 5, stride=4, padding=2), torch.nn.ReLU(),
        torch.nn.Conv2d(8, 16, 3, stride=4, padding=1), torch.nn.ReLU(),
        torch.nn.AvgPool2d(2), torch.nn.Flatten(), torch.nn.Linear(16 * 7 * 7, 70),
    ).eval()
    with torch.no_grad():
        torch.onnx.export(net, torch.zeros(1, 3, 224, 224), argv[1], opset_version=11,
                          input_names=["image"], output_names=["coeffs"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
