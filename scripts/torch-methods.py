#!/usr/bin/env python3
"""PyTorch timing of the CAM method family, for bench/methods.bench.ts: images/second per model and method.

    /usr/bin/python3 scripts/torch-methods.py --quick                      # both models, every method
    /usr/bin/python3 scripts/torch-methods.py --models resnet18 --methods gradcam,layercam --mode lean
    /usr/bin/python3 scripts/torch-methods.py --export-only                # just write bench/models/*.onnx

Models: torchvision resnet18 and mobilenet_v2, random weights (torch.manual_seed(0)), eval mode
(scripts/bench_models.py, shared with export-bench-models.py). Each is exported to
bench/models/<name>.onnx first when that file is missing (opset 17, dynamic batch). Input: batch 8
(--batch) of seeded N(0,1) 224x224 images; torch.set_num_threads(2) (--threads). Target layer A:
ResNet layer4[-1], MobileNetV2 features[-1]. Class: each image's argmax, score = the raw logit.

This is an independent implementation of the maths pytorch-grad-cam 1.5.5 computes (pytorch-grad-cam is
not installed here), in two timing modes (--mode):

  pgc   "pytorch-grad-cam-like": its structure. A forward hook copies A to numpy and a tensor hook
        copies dY/dA; Y = sum_n logit[n, argmax_n] and Y.backward(retain_graph=True) (a full backward,
        filter gradients included, as BaseCAM does); per-method numpy maths; np.maximum(cam, 0);
        scale_cam_image (per image min-max, cv2.resize INTER_LINEAR, or torch bilinear
        align_corners=False without cv2), then the multi-layer aggregation (max 0, mean, min-max again).
        eigencam runs the same forward (autograd on) without a backward. get_2d_projection: one numpy
        SVD per image (full_matrices=True). aug_smooth: 6 separate whole calls (hflip x multiply
        0.9/1/1.1), de-augmented and averaged. Input-gradient methods follow GuidedBackpropReLUModel:
        one image per call (it explains image 0 only), a loop over the batch, nn.ReLU modules replaced
        (ReLU6 is left alone, so MobileNetV2's guided backprop is its plain gradient), backward of
        that image's logit, the gradient transposed to HWC. saliency and deconvnet are not in
        pytorch-grad-cam: they are timed with the same per-image structure. guided-gradcam is the
        documented usage: a batched GradCAM call, then the per-image guided loop, multiplied.
  lean  "lean batched": what a careful PyTorch user would write: one batched forward, gradients by
        torch.autograd.grad to A only (CAM methods) or to the input only (no filter gradients), the
        maths in torch, batched SVD (full_matrices=False), F.interpolate. guided-gradcam takes dY/dA
        and the guided dY/dx from ONE backward of the guided model: both models have no ReLU module
        between A and the logits (avgpool, flatten, linear), so dY/dA is the plain one.
  both  the two; the lean figures are the keys "lean:<method>".

Output (stdout, one JSON object): {model: {method: img_per_s}} from the median wall time of --runs runs,
plus, with --cpu-estimate, "<method>:cpuEstimate" keys: batch / (process CPU time / threads), what
`threads` idle cores would give on a busy machine. Progress goes to stderr.

Methods (the names bench/methods.bench.ts uses): gradcam gradcam++ xgradcam hirescam layercam
gradcam-elementwise eigencam eigengradcam saliency deconvnet guided-backprop guided-gradcam
gradcam+augSmooth gradcam+eigenSmooth.
"""
import argparse
import copy
import json
import os
import sys
import warnings

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_models import build, export, median_rate, model_path, target_layer  # noqa: E402
from guided_relu import DeconvReLU, GuidedReLU, replace_relu  # noqa: E402

try:
    import cv2  # noqa: E402
except ImportError:  # scale_cam_image falls back to torch's bilinear (align_corners=False), the same sampling
    cv2 = None

warnings.filterwarnings('ignore')

CAM_METHODS = ['gradcam', 'gradcam++', 'xgradcam', 'hirescam', 'layercam', 'gradcam-elementwise', 'eigencam', 'eigengradcam']
INPUT_METHODS = ['saliency', 'deconvnet', 'guided-backprop', 'guided-gradcam']
VARIANTS = ['gradcam+augSmooth', 'gradcam+eigenSmooth']
METHODS = CAM_METHODS + INPUT_METHODS + VARIANTS
MODELS = ['resnet18', 'mobilenet_v2']
AUGMENTATIONS = [(flip, factor) for flip in (False, True) for factor in (0.9, 1.0, 1.1)]


# ------------------------------------------------------------------------------------------------
# pytorch-grad-cam-like (numpy maths)

def np_projection(act):
    """first principal component of each image's [HW, K] activations (centred), as get_2d_projection"""
    act = act.copy()
    act[np.isnan(act)] = 0
    out = []
    for a in act:
        m = a.reshape(a.shape[0], -1).T
        m = m - m.mean(axis=0)
        _, _, vt = np.linalg.svd(m, full_matrices=True)
        out.append((m @ vt[0, :]).reshape(a.shape[1:]))
    return np.float32(out)


def np_cam(method, a, g, eigen_smooth):
    """the [N,h,w] map before ReLU, per method (get_cam_weights / get_cam_image)"""
    if method == 'eigencam':
        return np_projection(a)
    if method == 'eigengradcam':
        return np_projection(g * a)
    if method == 'hirescam':
        weighted = g * a
    elif method == 'layercam':
        weighted = np.maximum(g, 0) * a
    elif method == 'gradcam-elementwise':
        weighted = np.maximum(g * a, 0)
    else:
        if method == 'gradcam':
            w = np.mean(g, axis=(2, 3))
        elif method == 'gradcam++':
            g2 = g ** 2
            g3 = g2 * g
            sum_a = np.sum(a, axis=(2, 3))
            aij = g2 / (2 * g2 + sum_a[:, :, None, None] * g3 + 1e-6)
            aij = np.where(g != 0, aij, 0)
            w = np.sum(np.maximum(g, 0) * aij, axis=(2, 3))
        elif method == 'xgradcam':
            sum_a = np.sum(a, axis=(2, 3))
            w = np.sum(g * a / (sum_a[:, :, None, None] + 1e-7), axis=(2, 3))
        else:
            raise ValueError(method)
        weighted = w[:, :, None, None] * a
    return np_projection(weighted) if eigen_smooth else weighted.sum(axis=1)


def np_scale(cam, size=None):
    """scale_cam_image: per image x - min, / (max + 1e-7), then resize to size = (W, H)"""
    out = []
    for img in cam:
        img = img - np.min(img)
        img = img / (1e-7 + np.max(img))
        if size is not None and cv2 is not None:
            img = cv2.resize(np.float32(img), size)
        out.append(img)
    out = np.float32(out)
    if size is not None and cv2 is None:
        out = F.interpolate(torch.from_numpy(out)[:, None], size=(size[1], size[0]), mode='bilinear',
                            align_corners=False)[:, 0].numpy()
    return out


class PgcCam:
    """BaseCAM's flow with ActivationsAndGradients' hooks, registered once on the target layer."""

    def __init__(self, model, layer, method):
        self.model, self.method = model, method
        self.uses_gradients = method != 'eigencam'
        self.activations, self.gradients = [], []
        self.handle = layer.register_forward_hook(self._hook)

    def _hook(self, _module, _inp, out):
        self.activations.append(out.cpu().detach())
        if out.requires_grad:
            def store(grad):
                self.gradients = [grad.cpu().detach()] + self.gradients
            out.register_hook(store)

    def forward(self, x, eigen_smooth=False):
        self.activations, self.gradients = [], []
        outputs = self.model(x)
        self.categories = np.argmax(outputs.cpu().data.numpy(), axis=-1)
        if self.uses_gradients:
            self.model.zero_grad()
            loss = sum(out[c] for c, out in zip(self.categories, outputs))  # ClassifierOutputTarget per image
            loss.backward(retain_graph=True)
        a = self.activations[0].numpy()
        g = self.gradients[0].numpy() if self.gradients else None
        cam = np.maximum(np_cam(self.method, a, g, eigen_smooth), 0)
        scaled = np_scale(cam, (x.shape[-1], x.shape[-2]))[:, None]
        # aggregate_multi_layers (one layer): max 0, mean over layers, min-max again
        return np_scale(np.mean(np.maximum(scaled, 0), axis=1))

    def __call__(self, x, aug_smooth=False, eigen_smooth=False):
        if not aug_smooth:
            return self.forward(x, eigen_smooth)
        cams = []
        for flip, factor in AUGMENTATIONS:
            xa = x.flip(3) if flip else x
            xa = xa * factor
            cam = torch.from_numpy(self.forward(xa, eigen_smooth)[:, None])
            if flip:
                cam = cam.flip(3)
            cams.append(cam.numpy()[:, 0])
        return np.mean(np.float32(cams), axis=0)


def pgc_input_gradient(variant, x, categories=None):
    """GuidedBackpropReLUModel.__call__ per image (it explains image 0 of what it is given): HWC numpy"""
    out = []
    for i in range(x.shape[0]):
        xi = x[i:i + 1].clone().requires_grad_(True)
        logits = variant(xi)
        c = np.argmax(logits.cpu().data.numpy()) if categories is None else categories[i]
        logits[0, c].backward(retain_graph=True)
        out.append(xi.grad.cpu().data.numpy()[0].transpose((1, 2, 0)))
    return np.float32(out)


# ------------------------------------------------------------------------------------------------
# lean batched (torch maths)

def t_projection(act):
    n, k, h, w = act.shape
    m = act.reshape(n, k, h * w).transpose(1, 2)
    m = torch.nan_to_num(m - m.mean(1, keepdim=True))
    _, _, vh = torch.linalg.svd(m, full_matrices=False)
    return (m @ vh[:, 0, :, None]).reshape(n, h, w)


def t_cam(method, a, g, eigen_smooth):
    if method == 'eigencam':
        return t_projection(a)
    if method == 'eigengradcam':
        return t_projection(g * a)
    if method == 'hirescam':
        weighted = g * a
    elif method == 'layercam':
        weighted = g.clamp(min=0) * a
    elif method == 'gradcam-elementwise':
        weighted = (g * a).clamp(min=0)
    else:
        if method == 'gradcam':
            w = g.mean((2, 3))
        elif method == 'gradcam++':
            g2 = g * g
            g3 = g2 * g
            aij = g2 / (2 * g2 + a.sum((2, 3), keepdim=True) * g3 + 1e-6)
            aij = torch.where(g != 0, aij, torch.zeros_like(aij))
            w = (g.clamp(min=0) * aij).sum((2, 3))
        elif method == 'xgradcam':
            w = (g * a / (a.sum((2, 3), keepdim=True) + 1e-7)).sum((2, 3))
        else:
            raise ValueError(method)
        weighted = w[:, :, None, None] * a
    return t_projection(weighted) if eigen_smooth else weighted.sum(1)


def t_norm(cam):
    cam = cam - cam.amin((-2, -1), keepdim=True)
    return cam / (cam.amax((-2, -1), keepdim=True) + 1e-7)


def t_final(cam, size):
    """ReLU, min-max, bilinear (align_corners=False) to the input size, min-max: [N,H,W]"""
    cam = t_norm(cam.clamp(min=0))[:, None]
    return t_norm(F.interpolate(cam, size=size, mode='bilinear', align_corners=False)[:, 0])


def lean_cam(model, layer, x, method, eigen_smooth=False):
    store = {}
    h = layer.register_forward_hook(lambda _m, _i, out: store.__setitem__('a', out))
    try:
        with torch.set_grad_enabled(method != 'eigencam'):
            logits = model(x)
    finally:
        h.remove()
    a = store['a']
    g = None
    if method != 'eigencam':
        cls = logits.argmax(1, keepdim=True)
        g, = torch.autograd.grad(logits.gather(1, cls).sum(), a)
    with torch.no_grad():
        return t_final(t_cam(method, a.detach(), g, eigen_smooth), x.shape[2:])


def lean_aug_smooth(model, layer, x):
    cams = []
    for flip, factor in AUGMENTATIONS:
        xa = (x.flip(3) if flip else x) * factor
        cam = lean_cam(model, layer, xa, 'gradcam')
        cams.append(cam.flip(2) if flip else cam)
    return torch.stack(cams).mean(0)


def lean_input_gradient(variant, x):
    x = x.clone().requires_grad_(True)
    logits = variant(x)
    g, = torch.autograd.grad(logits.gather(1, logits.argmax(1, keepdim=True)).sum(), x)
    return g


def lean_guided_gradcam(guided, layer, x):
    store = {}
    h = layer.register_forward_hook(lambda _m, _i, out: store.__setitem__('a', out))
    x = x.clone().requires_grad_(True)
    try:
        logits = guided(x)
    finally:
        h.remove()
    a = store['a']
    ga, gx = torch.autograd.grad(logits.gather(1, logits.argmax(1, keepdim=True)).sum(), [a, x])
    with torch.no_grad():
        return t_final(t_cam('gradcam', a.detach(), ga, False), x.shape[2:])[:, None] * gx


# ------------------------------------------------------------------------------------------------

def variants_of(model):
    guided = copy.deepcopy(model)
    replace_relu(guided, GuidedReLU)
    deconv = copy.deepcopy(model)
    replace_relu(deconv, DeconvReLU)
    return {'saliency': model, 'guided-backprop': guided, 'deconvnet': deconv}


def pgc_fn(name, model, method, x, variants):
    layer = target_layer(name, model)
    if method in CAM_METHODS or method in VARIANTS:
        cam = PgcCam(model, layer, 'gradcam' if method in VARIANTS else method)
        aug, eigen = method == 'gradcam+augSmooth', method == 'gradcam+eigenSmooth'
        return (lambda: cam(x, aug_smooth=aug, eigen_smooth=eigen)), cam.handle.remove
    if method == 'guided-gradcam':
        cam = PgcCam(model, layer, 'gradcam')

        def ggc():
            m = cam(x)
            gb = pgc_input_gradient(variants['guided-backprop'], x, cam.categories)
            return m[..., None] * gb
        return ggc, cam.handle.remove
    return (lambda: pgc_input_gradient(variants[method], x)), (lambda: None)


def lean_fn(name, model, method, x, variants):
    layer = target_layer(name, model)
    if method == 'gradcam+augSmooth':
        return lambda: lean_aug_smooth(model, layer, x)
    if method == 'gradcam+eigenSmooth':
        return lambda: lean_cam(model, layer, x, 'gradcam', eigen_smooth=True)
    if method in CAM_METHODS:
        return lambda: lean_cam(model, layer, x, method)
    if method == 'guided-gradcam':
        return lambda: lean_guided_gradcam(variants['guided-backprop'], target_layer(name, variants['guided-backprop']), x)
    return lambda: lean_input_gradient(variants[method], x)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--models', default=','.join(MODELS))
    ap.add_argument('--methods', default=','.join(METHODS))
    ap.add_argument('--mode', choices=['pgc', 'lean', 'both'], default='pgc')
    ap.add_argument('--batch', type=int, default=8)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--runs', type=int, default=3, help='timed runs per method (median); --quick: 1')
    ap.add_argument('--warmup', type=int, default=1, help='untimed runs per method first; --quick: 0 (one warm-up per model)')
    ap.add_argument('--quick', action='store_true', help='--runs 1 --warmup 0, after one gradcam warm-up per model')
    ap.add_argument('--cpu-estimate', action='store_true', help='add "<method>:cpuEstimate" keys')
    ap.add_argument('--export-only', action='store_true', help='write the missing bench/models/<model>.onnx and stop')
    ap.add_argument('--opset', type=int, default=17)
    args = ap.parse_args()
    if args.quick:
        args.runs, args.warmup = 1, 0
    models = [m for m in args.models.split(',') if m]
    methods = [m for m in args.methods.split(',') if m]
    bad = [m for m in methods if m not in METHODS]
    if bad:
        ap.error(f'unknown method(s) {bad}; known: {METHODS}')
    torch.set_num_threads(args.threads)
    result = {}
    for name in models:
        model = build(name)
        if not os.path.exists(model_path(name)):
            print(f'exporting {model_path(name)}', file=sys.stderr)
            export(name, model, args.opset, quiet=True)
        if args.export_only:
            continue
        variants = variants_of(model)
        gen = torch.Generator().manual_seed(1)
        x = torch.randn(args.batch, 3, 224, 224, generator=gen)
        row = result.setdefault(name, {})
        modes = ['pgc', 'lean'] if args.mode == 'both' else [args.mode]
        # one untimed pass per model and mode, so that --quick's single runs do not pay the first-call costs
        for mode in modes:
            if mode == 'pgc':
                fn, done = pgc_fn(name, model, 'gradcam', x, variants)
                fn()
                done()
            else:
                lean_fn(name, model, 'gradcam', x, variants)()
        for method in methods:
            for mode in modes:
                key = method if mode == 'pgc' or args.mode != 'both' else f'lean:{method}'
                if mode == 'pgc':
                    fn, done = pgc_fn(name, model, method, x, variants)
                else:
                    fn, done = lean_fn(name, model, method, x, variants), (lambda: None)
                try:
                    wall, cpu = median_rate(fn, args.batch, args.runs, args.threads, args.warmup)
                finally:
                    done()
                row[key] = round(wall, 3)
                if args.cpu_estimate:
                    row[key + ':cpuEstimate'] = round(cpu, 3)
                print(f'{name} {mode} {method}: {wall:.2f} img/s (CPU-time estimate {cpu:.2f}), '
                      f'load {os.getloadavg()[0]:.1f}', file=sys.stderr, flush=True)
    if not args.export_only:
        print(json.dumps(result), flush=True)


if __name__ == '__main__':
    main()
