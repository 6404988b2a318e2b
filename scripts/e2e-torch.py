#!/usr/bin/env python3
"""The PyTorch side of bench/e2e.bench.ts: a folder of pictures to written PNGs the way
pytorch-grad-cam's README does it (own code, not pytorch-grad-cam itself):

    rgb_img = cv2.imread(path, 1)[:, :, ::-1]; rgb_img = np.float32(rgb_img) / 255
    input_tensor = preprocess_image(rgb_img, mean, std)
    grayscale_cam = GradCAM(model, target_layers)(input_tensor)      # argmax class
    visualization = show_cam_on_image(rgb_img, grayscale_cam, use_rgb=True)
    cv2.imwrite(...)

per batch of --batch pictures, torchvision resnet18 with random weights (torch.manual_seed(0), as
scripts/bench_models.py exports bench/models/resnet18.onnx). It writes what `gradcam explain`
writes: per picture the overlay and the colormapped map (heatmap) and, for guided-gradcam, the
deprocessed guided backprop and Guided Grad-CAM. Prints one JSON line of its own split (ms).

    /usr/bin/python3 scripts/e2e-torch.py --input DIR --out DIR [--method gradcam|guided-gradcam] [--batch 8]
"""
import argparse
import copy
import json
import os
import sys
import time

T0 = time.perf_counter()

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_models import build, target_layer  # noqa: E402
from guided_relu import GuidedReLU  # noqa: E402

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]


def preprocess_image(img):
    """pytorch-grad-cam's preprocess_image: normalize, HWC -> 1CHW tensor"""
    x = (img - np.array(MEAN, dtype=np.float32)) / np.array(STD, dtype=np.float32)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]


def show_cam_on_image(img, mask):
    """pytorch-grad-cam's show_cam_on_image(use_rgb=True, image_weight=0.5)"""
    heatmap = cv2.applyColorMap(np.uint8(255 * mask), cv2.COLORMAP_JET)
    heatmap = cv2.cvtColor(heatmap, cv2.COLOR_BGR2RGB)
    heatmap = np.float32(heatmap) / 255
    cam = 0.5 * heatmap + 0.5 * img
    cam = cam / np.max(cam)
    return np.uint8(255 * cam), np.uint8(255 * heatmap)


def deprocess_image(img):
    """pytorch-grad-cam's deprocess_image"""
    img = img - np.mean(img)
    img = img / (np.std(img) + 1e-5)
    img = img * 0.1
    img = img + 0.5
    img = np.clip(img, 0, 1)
    return np.uint8(img * 255)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--input', required=True)
    ap.add_argument('--out', required=True)
    ap.add_argument('--method', default='gradcam', choices=['gradcam', 'guided-gradcam'])
    ap.add_argument('--batch', type=int, default=8)
    ap.add_argument('--size', type=int, default=224)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    t = dict(load=0.0, decode=0.0, gradients=0.0, kernels=0.0, pictures=0.0, writing=0.0)

    t0 = time.perf_counter()
    model = build('resnet18')
    layer = target_layer('resnet18', model)
    guided = None
    if args.method == 'guided-gradcam':
        guided = copy.deepcopy(model)
        for name, m in list(guided.named_modules()):
            for cname, c in list(m.named_children()):
                if isinstance(c, nn.ReLU):
                    setattr(m, cname, GuidedReLU())
    store = {}
    def hook(module, inputs, output):
        store['a'] = output
        output.register_hook(lambda g: store.__setitem__('g', g))

    layer.register_forward_hook(hook)
    t['load'] = (time.perf_counter() - T0) * 1000

    files = sorted(f for f in os.listdir(args.input) if f.lower().endswith(('.jpg', '.jpeg', '.png')))
    S = args.size
    for s in range(0, len(files), args.batch):
        names = files[s:s + args.batch]
        t0 = time.perf_counter()
        rgbs = []
        for f in names:
            img = cv2.imread(os.path.join(args.input, f), 1)[:, :, ::-1]
            img = cv2.resize(img, (S, S), interpolation=cv2.INTER_LINEAR)
            rgbs.append(np.float32(img) / 255)
        x = torch.cat([preprocess_image(r) for r in rgbs])
        t['decode'] += (time.perf_counter() - t0) * 1000

        t0 = time.perf_counter()
        logits = model(x)
        classes = logits.argmax(1)
        model.zero_grad()
        logits.gather(1, classes[:, None]).sum().backward()
        a, g = store['a'].detach(), store['g'].detach()
        gb = None
        if guided is not None:
            xg = x.clone().requires_grad_(True)
            lg = guided(xg)
            lg.gather(1, classes[:, None]).sum().backward()
            gb = xg.grad.detach().numpy()
        t['gradients'] += (time.perf_counter() - t0) * 1000

        t0 = time.perf_counter()
        w = g.mean(dim=(2, 3), keepdim=True)
        cam = F.relu((w * a).sum(1)).numpy()
        maps = []
        for c in cam:
            c = c - c.min()
            c = c / (1e-7 + c.max())
            c = cv2.resize(c, (S, S))
            c = c - c.min()
            c = c / (1e-7 + c.max())
            maps.append(np.float32(c))
        t['kernels'] += (time.perf_counter() - t0) * 1000

        for i, f in enumerate(names):
            t0 = time.perf_counter()
            stem = os.path.splitext(f)[0]
            cls = int(classes[i])
            overlay, heatmap = show_cam_on_image(rgbs[i], maps[i])
            out = {f'{stem}.c{cls}.overlay.png': overlay, f'{stem}.c{cls}.heatmap.png': heatmap}
            if gb is not None:
                g_hwc = gb[i].transpose(1, 2, 0)
                out[f'{stem}.c{cls}.guided-backprop.png'] = deprocess_image(g_hwc)
                out[f'{stem}.c{cls}.guided-gradcam.png'] = deprocess_image(maps[i][:, :, None] * g_hwc)
            t['pictures'] += (time.perf_counter() - t0) * 1000
            t0 = time.perf_counter()
            for name, rgb in out.items():
                cv2.imwrite(os.path.join(args.out, name), np.ascontiguousarray(rgb[:, :, ::-1]))
            t['writing'] += (time.perf_counter() - t0) * 1000
    t['total'] = (time.perf_counter() - T0) * 1000
    print(json.dumps({k: round(v, 1) for k, v in t.items()}))


if __name__ == '__main__':
    main()
