#!/usr/bin/env python3
"""Export the ONNX benchmark models and time PyTorch's Grad-CAM family on them, for context.

    /usr/bin/python3 scripts/export-bench-models.py             # export bench/models/resnet{18,50}.onnx
    /usr/bin/python3 scripts/export-bench-models.py --time      # also time torch (2 threads), JSON lines

torchvision resnet18 / resnet50 with random weights (torch.manual_seed(0)), eval mode, opset 17,
dynamic batch axis, BN folded into the convolutions as torch.onnx.export does by default.
bench/models/ is gitignored; bench/onnx.bench.ts reads it.

The timing mirrors pytorch-grad-cam 1.5.5 (../shared/reference/README.md table): Grad-CAM = forward
with hooks on layer4[-1], backward of sum_n logit[n, argmax_n], channel means, weighted sum, ReLU,
min-max normalization, bilinear upsampling (align_corners=False), normalization; Guided Backprop =
nn.ReLU modules replaced by grad*(x>0)*(grad>0), backward to the input; Guided Grad-CAM = both.
Batched (one backward per batch), torch.set_num_threads(2), median of --runs runs after one warm-up.
"""
import argparse
import copy
import json
import os
import warnings

import torch
import torch.nn as nn

from guided_relu import GuidedReLU  # noqa: E402  (scripts/ is on sys.path: it holds this script)
from bench_models import build, export, median_rate  # noqa: E402
import torch.nn.functional as F

warnings.filterwarnings('ignore')


def replace_relu(m):
    for name, child in m.named_children():
        if isinstance(child, nn.ReLU):
            setattr(m, name, GuidedReLU())
        else:
            replace_relu(child)


def gradcam(model, layer, x):
    store = {}
    h = layer.register_forward_hook(lambda _m, _i, out: store.__setitem__('a', out))
    logits = model(x)
    h.remove()
    a = store['a']
    cls = logits.argmax(1)
    g, = torch.autograd.grad(logits[torch.arange(x.shape[0]), cls].sum(), a)
    w = g.mean((2, 3), keepdim=True)
    cam = F.relu((w * a).sum(1, keepdim=True)).detach()
    cam = cam - cam.amin((2, 3), keepdim=True)
    cam = cam / (cam.amax((2, 3), keepdim=True) + 1e-7)
    cam = F.interpolate(cam, size=x.shape[2:], mode='bilinear', align_corners=False)
    cam = cam - cam.amin((2, 3), keepdim=True)
    return cam / (cam.amax((2, 3), keepdim=True) + 1e-7), cls


def guided_backprop(guided_model, x, cls=None):
    x = x.clone().requires_grad_(True)
    logits = guided_model(x)
    if cls is None:
        cls = logits.argmax(1)
    g, = torch.autograd.grad(logits[torch.arange(x.shape[0]), cls].sum(), x)
    return g


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--time', action='store_true', help='time torch Grad-CAM / Guided Backprop / Guided Grad-CAM')
    ap.add_argument('--runs', type=int, default=5)
    ap.add_argument('--opset', type=int, default=17)
    ap.add_argument('--models', default='resnet18,resnet50')
    ap.add_argument('--batches', default='1,8')
    ap.add_argument('--no-export', action='store_true', help='time only, keep the existing ONNX files')
    args = ap.parse_args()
    torch.set_num_threads(2)
    for name in args.models.split(','):
        model = build(name)
        if not args.no_export:
            export(name, model, args.opset)
        if not args.time:
            continue
        guided = copy.deepcopy(model)
        replace_relu(guided)
        layer = model.layer4[-1]
        for b in map(int, args.batches.split(',')):
            x = torch.randn(b, 3, 224, 224)

            def fwd():
                with torch.no_grad():
                    model(x)

            def gc():
                gradcam(model, layer, x)

            def gb():
                guided_backprop(guided, x)

            def ggc():
                cam, cls = gradcam(model, layer, x)
                return guided_backprop(guided, x, cls) * cam

            row = {'engine': 'torch-cpu-2threads', 'model': name, 'batch': b, 'loadavg1': round(os.getloadavg()[0], 1)}
            for key, fn in (('forward', fwd), ('gradcam', gc), ('guided-backprop', gb), ('guided-gradcam', ggc)):
                wall, cpu = median_rate(fn, b, args.runs)
                row[key] = round(wall, 2)
                row[key + ':cpuEstimate'] = round(cpu, 2)
            print(json.dumps(row), flush=True)


if __name__ == '__main__':
    main()
