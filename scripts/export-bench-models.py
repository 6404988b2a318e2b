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
import statistics
import time
import warnings

import torch
import torch.nn as nn

from guided_relu import GuidedReLU  # noqa: E402  (scripts/ is on sys.path: it holds this script)
import torch.nn.functional as F
import torchvision

warnings.filterwarnings('ignore')
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'bench', 'models')


def replace_relu(m):
    for name, child in m.named_children():
        if isinstance(child, nn.ReLU):
            setattr(m, name, GuidedReLU())
        else:
            replace_relu(child)


def build(name):
    torch.manual_seed(0)
    return getattr(torchvision.models, name)(weights=None).eval()


def export(name, model, opset):
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, f'{name}.onnx')
    x = torch.randn(1, 3, 224, 224)
    torch.onnx.export(model, x, path, opset_version=opset, input_names=['input'], output_names=['logits'],
                      dynamic_axes={'input': {0: 'n'}, 'logits': {0: 'n'}})
    print(f'wrote {path} ({os.path.getsize(path) / 1e6:.1f} MB)')


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


def median_rate(fn, batch, runs, threads=2):
    """images/s from the median wall time, and the CPU-time estimate batch / (process CPU time / threads),
    which is what `threads` idle cores would give on a busy machine (as bench/onnx.bench.ts reports it)."""
    fn()
    times, cpu = [], []
    for _ in range(runs):
        t, c = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return batch / statistics.median(times), batch * threads / statistics.median(cpu)


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
