#!/usr/bin/env python3
"""Tiny stand-ins for an MDX-Net vocal separator (needs torch; no onnx package).

  make_tiny_separator.py OUT_DIR DIM_F DIM_T

writes, for a [1, 4, DIM_F, DIM_T] input block (channels L.re, L.im, R.re, R.im):
  identity.onnx     1x1 conv with weight eye(4): the "vocals" are the whole mix
  half.onnx         1x1 conv with 0.5 * eye(4): half amplitude
  left_only.onnx    1x1 conv with diag(1, 1, 0, 0): the right channel is silenced
  wrong_shape.onnx  1x1 conv 4 -> 2 channels: an output the separator must reject
A 1x1 conv is shape-agnostic, so the same files serve any DIM_F / DIM_T.
"""
import os
import sys

import torch


def conv(weight):
    c = torch.nn.Conv2d(4, weight.shape[0], 1, bias=False)
    with torch.no_grad():
        c.weight.copy_(weight.reshape(weight.shape[0], 4, 1, 1))
    return c.eval()


def main(argv):
    out_dir, dim_f, dim_t = argv[1], int(argv[2]), int(argv[3])
    os.makedirs(out_dir, exist_ok=True)
    models = {
        "identity": torch.eye(4),
        "half": 0.5 * torch.eye(4),
        "left_only": torch.diag(torch.tensor([1.0, 1.0, 0.0, 0.0])),
        "wrong_shape": torch.eye(4)[:2],
    }
    dummy = torch.randn(1, 4, dim_f, dim_t)
    for name, w in models.items():
        torch.onnx.export(conv(w), dummy, os.path.join(out_dir, name + ".onnx"), opset_version=11,
                          input_names=["input"], output_names=["output"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
