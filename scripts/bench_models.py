"""The benchmark models, shared by export-bench-models.py and torch-methods.py: torchvision models with
random weights (torch.manual_seed(0) before construction), eval mode, and their ONNX export (input
"input" [n,3,224,224], output "logits" [n,1000], dynamic batch axis "n", BN folded into the convolutions
as torch.onnx.export does by default). bench/models/ is gitignored."""
import os
import warnings

import torch
import torchvision

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'bench', 'models')

# the target layer of each model, as pytorch-grad-cam users pick it, and the ONNX tensor it exports to
# (torch 1.13's exporter names; bench/methods.bench.ts checks the name against the model)
TARGET = {
    'resnet18': ('layer4[-1]', '/layer4/layer4.1/relu_1/Relu_output_0'),
    'resnet50': ('layer4[-1]', '/layer4/layer4.2/relu_2/Relu_output_0'),
    'mobilenet_v2': ('features[-1]', '/features/features.18/features.18.2/Clip_output_0'),
}


def build(name):
    torch.manual_seed(0)
    return getattr(torchvision.models, name)(weights=None).eval()


def target_layer(name, model):
    """the module whose output is A: ResNet layer4[-1], MobileNetV2 features[-1]"""
    if name.startswith('resnet'):
        return model.layer4[-1]
    if name.startswith('mobilenet'):
        return model.features[-1]
    raise ValueError(f'no target layer known for {name}')


def model_path(name):
    return os.path.join(OUT, f'{name}.onnx')


def export(name, model, opset=17, quiet=False):
    os.makedirs(OUT, exist_ok=True)
    path = model_path(name)
    x = torch.randn(1, 3, 224, 224)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.onnx.export(model, x, path, opset_version=opset, input_names=['input'], output_names=['logits'],
                          dynamic_axes={'input': {0: 'n'}, 'logits': {0: 'n'}})
    if not quiet:
        print(f'wrote {path} ({os.path.getsize(path) / 1e6:.1f} MB)')
    return path


def median_rate(fn, batch, runs, threads=2, warmup=1):
    """images/s from the median wall time, and the CPU-time estimate batch / (process CPU time / threads),
    which is what `threads` idle cores would give on a busy machine (as bench/onnx.bench.ts reports it)."""
    import statistics
    import time
    for _ in range(warmup):
        fn()
    times, cpu = [], []
    for _ in range(runs):
        t, c = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return batch / statistics.median(times), batch * threads / statistics.median(cpu)
