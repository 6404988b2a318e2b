#!/usr/bin/env python3
"""Small ONNX fixtures with PyTorch reference gradients for the ONNX backward-graph generator.

Run with Debian's Python (torch 1.13, torchvision 0.14, onnx 1.12), CPU only:

    /usr/bin/python3 scripts/onnx-fixtures.py            # writes test/fixtures/onnx/

Each fixture is a tiny CNN that, exported by torch.onnx.export at opset 11, 13 or 17, emits a
part of the op set the generator must differentiate (see `ops` in manifest.json). For each:

  model.onnx            the exported model (input "input", output "logits")
  input.bin             float32 [n,c,h,w]
  logits.bin            [n, classes]
  activations.bin       A, the output of the target module (ONNX tensor `target` in the manifest)
  <mode>/grads.bin      dY/dA, Y = sum_n logits[n, class_n]; mode = argmax (per image) or fixed (one class
                        for every image, not an argmax class: manifest fixedClass)
  <mode>/input_grad.bin plain dY/dx (argmax only)
  <mode>/guided.bin     guided-backprop dY/dx computed pytorch-grad-cam's way: only nn.ReLU modules
                        get grad*(x>0)*(grad>0); ReLU6, F.relu, LeakyReLU... keep their true backward
  argmax/guided_cf.bin  the same for the counterfactual score Y = -sum_n logits[n, class_n]
  argmax/guided_relu6.bin  (ReLU6 models) guided with nn.ReLU6 guided too: grad*(0<x<6)*(grad>0)

`unguided_nodes` lists the ONNX Relu nodes that come from F.relu (not guided by the Python
libraries): pass them as OnnxGradientSession's unguidedNodes.
"""
import copy
import hashlib
import json
import os
import sys
import warnings

import onnx
import torch
import torch.nn as nn

from guided_relu import GuidedReLU  # noqa: E402  (scripts/ is on sys.path: it holds this script)
import torch.nn.functional as F

warnings.filterwarnings('ignore')
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'onnx')
NUM_CLASSES = 10


# ---------------------------------------------------------------- models

class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu2 = nn.ReLU(inplace=True)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        idt = x if self.down is None else self.down(x)
        y = self.relu1(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu2(y + idt)


class MiniResNet(nn.Module):
    """Conv+BN (kept as BatchNormalization nodes), ReLU, MaxPool 3x3/2 pad 1, residual Add, GAP, Flatten, Gemm."""
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = BasicBlock(16, 16, 1)
        self.layer2 = BasicBlock(16, 32, 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, NUM_CLASSES)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer2(self.layer1(x))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class SqueezeExcite(nn.Module):
    def __init__(self, c, r):
        super().__init__()
        self.fc1 = nn.Conv2d(c, r, 1)
        self.relu = nn.ReLU()
        self.fc2 = nn.Conv2d(r, c, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x):
        s = F.adaptive_avg_pool2d(x, 1)
        return x * self.gate(self.fc2(self.relu(self.fc1(s))))


def cbn(cin, cout, k, s, groups=1, act=None, dilation=1):
    layers = [nn.Conv2d(cin, cout, k, s, (k - 1) // 2 * dilation, dilation=dilation, groups=groups, bias=False),
              nn.BatchNorm2d(cout)]
    if act is not None:
        layers.append(act)
    return nn.Sequential(*layers)


class MiniMobileNetV3(nn.Module):
    """Depthwise and grouped convs, Hardswish, Hardsigmoid, SE Mul with broadcast, ReLU6 (Clip), stride 2 on odd
    and even sizes (30 -> 15 -> 8 -> 4) so ConvTranspose output_padding is 1, 0 and 1."""
    def __init__(self):
        super().__init__()
        self.stem = cbn(3, 16, 3, 2, act=nn.Hardswish())                       # 30 -> 15
        self.b1_dw = cbn(16, 16, 3, 1, groups=16, act=nn.ReLU())
        self.b1_se = SqueezeExcite(16, 8)
        self.b1_pw = cbn(16, 16, 1, 1)
        self.b2_exp = cbn(16, 32, 1, 1, act=nn.Hardswish())
        self.b2_dw = cbn(32, 32, 5, 2, groups=32, act=nn.Hardswish())           # 15 -> 8 (k5)
        self.b2_pw = cbn(32, 24, 1, 1)
        self.b3_exp = cbn(24, 48, 1, 1, groups=2, act=nn.ReLU6())               # grouped, not depthwise
        self.b3_dw = cbn(48, 48, 3, 2, groups=48, act=nn.ReLU6())               # 8 -> 4
        self.b3_pw = cbn(48, 24, 1, 1)
        self.b4_exp = cbn(24, 48, 1, 1, act=nn.ReLU6())
        self.b4_dw = cbn(48, 48, 3, 1, groups=48, act=nn.ReLU6())
        self.b4_pw = cbn(48, 24, 1, 1)
        self.last = cbn(24, 64, 1, 1, act=nn.Hardswish())                       # target
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Linear(64, 32)
        self.act = nn.Hardswish()
        self.fc2 = nn.Linear(32, NUM_CLASSES)

    def forward(self, x):
        x = self.stem(x)
        x = x + self.b1_pw(self.b1_se(self.b1_dw(x)))
        x = self.b2_pw(self.b2_dw(self.b2_exp(x)))
        x = self.b3_pw(self.b3_dw(self.b3_exp(x)))
        x = x + self.b4_pw(self.b4_dw(self.b4_exp(x)))
        x = self.last(x)
        return self.fc2(self.act(self.fc1(torch.flatten(self.pool(x), 1))))


class DenseLayer(nn.Module):
    def __init__(self, cin, growth):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(cin)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(cin, 2 * growth, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(2 * growth)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(2 * growth, growth, 3, 1, 1, bias=False)

    def forward(self, feats):
        x = torch.cat(feats, 1)
        return self.conv2(self.relu2(self.norm2(self.conv1(self.relu1(self.norm1(x))))))


class DenseBlock(nn.Module):
    def __init__(self, n, cin, growth):
        super().__init__()
        self.layers = nn.ModuleList([DenseLayer(cin + i * growth, growth) for i in range(n)])

    def forward(self, x):
        feats = [x]
        for layer in self.layers:
            feats.append(layer(feats))
        return torch.cat(feats, 1)


class MiniDenseNet(nn.Module):
    """torchvision DenseNet's structure: Concat, pre-activation BN (stays BatchNormalization: it follows a Concat),
    transition AveragePool, norm5 as target, then F.relu (not guided by pytorch-grad-cam / Captum)."""
    def __init__(self):
        super().__init__()
        g = 8
        self.features = nn.Sequential()
        self.features.add_module('conv0', nn.Conv2d(3, 16, 3, 1, 1, bias=False))
        self.features.add_module('norm0', nn.BatchNorm2d(16))
        self.features.add_module('relu0', nn.ReLU(inplace=True))
        self.features.add_module('pool0', nn.MaxPool2d(3, 2, 1))                       # 32 -> 16
        self.features.add_module('denseblock1', DenseBlock(3, 16, g))                  # 40 ch
        trans = nn.Sequential()
        trans.add_module('norm', nn.BatchNorm2d(40))
        trans.add_module('relu', nn.ReLU(inplace=True))
        trans.add_module('conv', nn.Conv2d(40, 20, 1, bias=False))
        trans.add_module('pool', nn.AvgPool2d(2, 2))                                   # 16 -> 8
        self.features.add_module('transition1', trans)
        self.features.add_module('denseblock2', DenseBlock(2, 20, g))                  # 36 ch
        self.features.add_module('norm5', nn.BatchNorm2d(36))
        self.classifier = nn.Linear(36, NUM_CLASSES)

    def forward(self, x):
        f = self.features(x)
        out = F.relu(f)   # torchvision has inplace=True, which would also overwrite the hooked norm5 output
        out = F.adaptive_avg_pool2d(out, (1, 1)).squeeze(3).squeeze(2)    # Squeeze with axes attribute (opset 11)
        return self.classifier(out)


class Fire(nn.Module):
    def __init__(self, cin, s, e):
        super().__init__()
        self.squeeze = nn.Conv2d(cin, s, 1)
        self.squeeze_act = nn.ReLU(inplace=True)
        self.e1 = nn.Conv2d(s, e, 1)
        self.e1_act = nn.ReLU(inplace=True)
        self.e3 = nn.Conv2d(s, e, 3, padding=1)
        self.e3_act = nn.ReLU(inplace=True)

    def forward(self, x):
        x = self.squeeze_act(self.squeeze(x))
        return torch.cat([self.e1_act(self.e1(x)), self.e3_act(self.e3(x))], 1)


class MiniSqueezeNet(nn.Module):
    """Fire modules (Concat of 1x1 and 3x3 branches, the target is a Concat output), ceil_mode MaxPool on even
    sizes (16 -> 8 -> 4, where floor mode would give 7 and 3), conv classifier + ReLU + GAP."""
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, 2), nn.ReLU(inplace=True),                  # 33 -> 16
            nn.MaxPool2d(3, 2, ceil_mode=True),                             # 16 -> 8
            Fire(16, 8, 16), Fire(32, 8, 16),
            nn.MaxPool2d(3, 2, ceil_mode=True),                             # 8 -> 4
            Fire(32, 12, 24))                                               # target: its Concat
        self.classifier = nn.Sequential(nn.Dropout(0.5), nn.Conv2d(48, NUM_CLASSES, 1), nn.ReLU(inplace=True),
                                        nn.AdaptiveAvgPool2d(1))

    def forward(self, x):
        return torch.flatten(self.classifier(self.features(x)), 1)


class MBConv(nn.Module):
    def __init__(self, cin, cout, expand, stride):
        super().__init__()
        mid = cin * expand
        self.expand = cbn(cin, mid, 1, 1, act=nn.SiLU())
        self.dw = cbn(mid, mid, 3, stride, groups=mid, act=nn.SiLU())
        self.se_reduce = nn.Conv2d(mid, max(1, cin // 4), 1)
        self.se_act = nn.SiLU()
        self.se_expand = nn.Conv2d(max(1, cin // 4), mid, 1)
        self.project = cbn(mid, cout, 1, 1)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.dw(self.expand(x))
        s = y.mean((2, 3), keepdim=True)                                    # ReduceMean keepdims=1
        s = torch.sigmoid(self.se_expand(self.se_act(self.se_reduce(s))))
        y = self.project(y * s)
        return x + y if self.residual else y


class MiniEfficientNet(nn.Module):
    """SiLU exported as x*Sigmoid(x), SE with ReduceMean keepdims + Sigmoid gate, residual, head SiLU as target,
    Squeeze of the pooled features; a Dropout and an Identity node are inserted into the ONNX graph after export
    (torch drops eval-mode dropout), both identities for the reference."""
    def __init__(self):
        super().__init__()
        self.stem = cbn(3, 16, 3, 2, act=nn.SiLU())                         # 32 -> 16
        self.block1 = MBConv(16, 16, 2, 1)
        self.block2 = MBConv(16, 24, 2, 2)                                  # 16 -> 8
        self.block3 = MBConv(24, 24, 2, 1)
        self.head = cbn(24, 48, 1, 1, act=nn.SiLU())                        # target
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(48, NUM_CLASSES)

    def forward(self, x):
        x = self.head(self.block3(self.block2(self.block1(self.stem(x)))))
        return self.fc(self.pool(x).squeeze(-1).squeeze(-1))


class MiniMisc(nn.Module):
    """In-graph normalization (Sub, Div), LeakyRelu, asymmetric F.pad, dilated conv, bilinear and nearest
    Upsample (Resize) inside the net, Div by an activation, Transpose + MatMul (Linear on channels),
    x.view(x.size(0), c, -1) (Shape/Gather/Unsqueeze/Concat/Reshape), spatial Softmax attention with a
    MatMul of two activations, Squeeze/Unsqueeze, ReduceMean without keepdims, Concat, Gemm.
    nn.ReLU modules sit after the target layer, so guided rules must not leak into dY/dA."""
    def __init__(self):
        super().__init__()
        self.register_buffer('mean', torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer('std', torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        self.conv0 = nn.Conv2d(3, 12, 3, 1, 1)                              # exported with auto_pad SAME_UPPER
        self.lrelu = nn.LeakyReLU(0.1)
        self.conv1 = nn.Conv2d(12, 16, 3, 2, 0)                             # after F.pad(0,1,0,1): 32 -> 16
        self.relu1 = nn.ReLU()
        self.dil = nn.Conv2d(16, 16, 3, 1, padding=2, dilation=2)
        self.relu2 = nn.ReLU()
        self.down = nn.Conv2d(16, 16, 3, 2, 1)                              # 16 -> 8
        self.relu3 = nn.ReLU()
        self.up_bilinear = nn.Upsample(scale_factor=2, mode='bilinear', align_corners=False)
        self.up_nearest = nn.Upsample(scale_factor=2, mode='nearest')
        self.pool = nn.AvgPool2d(2, 2)
        self.gate = nn.Conv2d(16, 16, 1)
        self.asym = nn.Conv2d(16, 24, 3, 1, 0)                              # after F.pad(1,2,0,1): 16 -> 15x16
        self.relu4 = nn.ReLU()                                              # target = relu4 output [n,24,15,16]
        self.chan = nn.Linear(24, 24)                                       # on NHWC: Transpose + MatMul + Add
        self.relu5 = nn.ReLU()
        self.score = nn.Conv2d(24, 1, 1)
        self.fc = nn.Linear(48, NUM_CLASSES)

    def forward(self, x):
        x = (x - self.mean) / self.std
        x = self.lrelu(self.conv0(x))
        x = self.relu1(self.conv1(F.pad(x, (0, 1, 0, 1))))
        x = self.relu2(self.dil(x))
        d = self.relu3(self.down(x))
        x = x + self.up_bilinear(d)
        x = x - self.up_nearest(self.pool(x)) * 0.5
        x = x / (1.0 + torch.sigmoid(self.gate(x)))
        x = F.relu(x)                                                       # an F.relu before the target: unguided
        a = self.relu4(self.asym(F.pad(x, (1, 2, 0, 1))))
        y = self.relu5(self.chan(a.permute(0, 2, 3, 1))).permute(0, 3, 1, 2)
        n, c = y.size(0), y.size(1)
        w = torch.softmax(self.score(y).view(n, 1, -1), dim=-1)            # [n,1,hw]
        att = torch.matmul(y.view(n, c, -1), w.transpose(1, 2)).flatten(1)  # [n,c]
        gap = y.mean((2, 3))                                                # ReduceMean keepdims=0
        gap = (gap.unsqueeze(-1) * att.unsqueeze(1)).mean(-1)               # Unsqueeze, broadcast Mul
        return self.fc(torch.cat([att, gap], 1))


# ---------------------------------------------------------------- export helpers

def export(model, x, opset, path, preserve_bn=False, dynamic_batch=False):
    kwargs = dict(opset_version=opset, input_names=['input'], output_names=['logits'])
    if preserve_bn:
        # keep BatchNormalization nodes: TrainingMode.EVAL folds them into the Convs
        kwargs.update(training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
    if dynamic_batch:
        kwargs['dynamic_axes'] = {'input': {0: 'n'}, 'logits': {0: 'n'}}
    torch.onnx.export(model, x, path, **kwargs)
    m = onnx.load(path)
    onnx.checker.check_model(m)
    return m


def target_node_name(model, module, x, opset):
    """Export once more with the target module's output as a second graph output and return the name of the
    node that produces it: torch names nodes by module scope, so the same node in the real export carries
    the same name, and its output is the target tensor."""
    import io
    store = {}
    h = module.register_forward_hook(lambda _m, _i, out: store.__setitem__('a', out))
    orig = model.forward
    model.forward = lambda inp: (orig(inp), store['a'])
    try:
        buf = io.BytesIO()
        torch.onnx.export(model, x, buf, opset_version=opset, input_names=['input'], output_names=['logits', 'A'])
    finally:
        del model.forward
        h.remove()
    m = onnx.load_from_string(buf.getvalue())
    names = [n.name for n in m.graph.node if 'A' in n.output]
    assert len(names) == 1, names
    return names[0]


def target_tensor(m, node_name):
    nodes = [n for n in m.graph.node if n.name == node_name]
    if len(nodes) != 1:
        raise SystemExit(f'node {node_name} not found once in the export')
    return nodes[0].output[0]


def unguided_relus(m, model):
    """Relu nodes not produced by an nn.ReLU module (F.relu): pytorch-grad-cam leaves them unguided.
    torch names a node by its module scopes, each component ending with the module's qualified name relative
    to an ancestor ("/layer2/down/down.0/Conv"); F.relu inside module X lands in X's scope."""
    modules = dict(model.named_modules())
    out = []
    for n in m.graph.node:
        if n.op_type != 'Relu':
            continue
        comps = n.name.split('/')[1:-1]
        is_module_relu = False
        if comps:
            cands = [q for q in modules if q == comps[-1] or q.endswith('.' + comps[-1])]
            cands = [q for q in cands if all(c.split('.')[-1] in q.split('.') for c in comps)]
            kinds = {type(modules[q]) is nn.ReLU for q in cands}
            assert len(kinds) == 1, f'cannot tell which module made {n.name}: {cands}'
            is_module_relu = kinds.pop()
        if not is_module_relu:
            out.append(n.name)
    return out


def rename_nodes_unique(m):
    seen = set()
    for i, n in enumerate(m.graph.node):
        if not n.name or n.name in seen:
            n.name = f'{n.op_type}_fix{i}'
        seen.add(n.name)


def insert_after(m, tensor, op_type, name, **attrs):
    """Insert `op_type(tensor)` and make every consumer of `tensor` read its output."""
    new_out = f'{tensor}_{op_type.lower()}'
    for n in m.graph.node:
        for i, inp in enumerate(n.input):
            if inp == tensor:
                n.input[i] = new_out
    node = onnx.helper.make_node(op_type, [tensor], [new_out], name=name, **attrs)
    idx = max(i for i, n in enumerate(m.graph.node) if tensor in n.output) + 1
    m.graph.node.insert(idx, node)


def conv_to_auto_pad(m, node_name):
    """pads [1,1,1,1] 3x3 stride 1 == auto_pad SAME_UPPER: exercise the auto_pad path with the same numbers."""
    for n in m.graph.node:
        if n.name == node_name:
            pads = [a for a in n.attribute if a.name == 'pads']
            assert pads and list(pads[0].ints) == [1, 1, 1, 1], list(pads[0].ints)
            n.attribute.remove(pads[0])
            n.attribute.append(onnx.helper.make_attribute('auto_pad', 'SAME_UPPER'))
            return
    raise SystemExit(f'no node {node_name}')


# ---------------------------------------------------------------- references

class GuidedReLU6Fn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(0, 6)

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        return g * ((x > 0) & (x < 6)).type_as(g) * (g > 0).type_as(g)


class GuidedReLU6(nn.Module):
    def forward(self, x):
        return GuidedReLU6Fn.apply(x)


def replace_modules(model, cls, factory):
    for name, child in model.named_children():
        if type(child) is cls:
            setattr(model, name, factory())
        else:
            replace_modules(child, cls, factory)


def input_grad(model, x, classes, sign=1.0):
    x = x.clone().requires_grad_(True)
    logits = model(x)
    y = sign * logits[torch.arange(x.shape[0]), classes].sum()
    g, = torch.autograd.grad(y, x)
    return g


def layer_grad(model, module, x, classes):
    store = {}

    def hook(_m, _i, out):
        out.retain_grad()
        store['a'] = out
    h = module.register_forward_hook(hook)
    logits = model(x)
    h.remove()
    y = logits[torch.arange(x.shape[0]), classes].sum()
    g, = torch.autograd.grad(y, store['a'])
    return logits.detach(), store['a'].detach(), g


def save(folder, rel, t, files):
    arr = t.detach().contiguous().float().numpy()
    path = os.path.join(folder, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    arr.astype('<f4').tofile(path)
    files[rel] = {'shape': list(arr.shape), 'dtype': 'float32',
                  'sha256': hashlib.sha256(arr.astype('<f4').tobytes()).hexdigest()[:16]}


def init_weights(model, gen):
    """He-normal weights: the signal keeps its scale through the tiny nets, so logits depend on the image."""
    for mod in model.modules():
        if isinstance(mod, (nn.Conv2d, nn.Linear)):
            fan_in = mod.weight[0].numel()
            mod.weight.data.copy_(torch.randn(mod.weight.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
            if mod.bias is not None:
                mod.bias.data.copy_(torch.randn(mod.bias.shape, generator=gen) * 0.05)


def randomize_bn(model, gen):
    """Non-trivial BN statistics, so a BN rule that ignores them is caught."""
    for mod in model.modules():
        if isinstance(mod, nn.BatchNorm2d):
            c = mod.num_features
            mod.running_mean.copy_(torch.randn(c, generator=gen) * 0.1)
            mod.running_var.copy_(torch.rand(c, generator=gen) * 0.5 + 0.75)
            mod.weight.data.copy_(torch.rand(c, generator=gen) * 0.5 + 0.75)
            mod.bias.data.copy_(torch.randn(c, generator=gen) * 0.1)


def make_fixture(name, model, shape, opset, target, preserve_bn=False, dynamic_batch=False, post=None,
                 relu6=False, note=''):
    gen = torch.Generator().manual_seed(1234)
    init_weights(model, gen)
    randomize_bn(model, gen)
    model.eval()
    last = [mod for mod in model.modules() if isinstance(mod, (nn.Linear, nn.Conv2d))][-1]
    with torch.no_grad():
        last.bias.zero_()   # random weights: let the logits depend on the image rather than on the bias
    pool = []
    for _ in range(64):
        # noise + a random low-frequency pattern + a colour shift: iid noise alone averages out in GAP
        low = F.interpolate(torch.randn(1, shape[1], 4, 4, generator=gen) * 1.5, size=shape[2:], mode='bilinear',
                            align_corners=False)
        pool.append(torch.randn(1, *shape[1:], generator=gen) * 0.5 + low
                    + torch.randn(1, shape[1], 1, 1, generator=gen))
    pool = torch.cat(pool, 0)
    with torch.no_grad():
        logits = model(pool)
        if len(set(logits.argmax(1).tolist())) < shape[0] and isinstance(last, nn.Linear):
            last.bias.copy_(-logits.mean(0))     # centre the classes so that different images win different ones
            logits = model(pool)
    images, seen = [], set()
    for xi, c in zip(pool, logits.argmax(1).tolist()):   # images with different argmax classes
        if c not in seen and len(images) < shape[0]:
            seen.add(c)
            images.append(xi[None])
    if len(images) < shape[0]:
        raise SystemExit(f'{name}: no input with distinct argmax classes')
    x = torch.cat(images, 0)
    folder = os.path.join(OUT, name)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, 'model.onnx')
    module = model.get_submodule(target)
    m = export(model, x, opset, path, preserve_bn, dynamic_batch)
    tname = target_tensor(m, target_node_name(model, module, x, opset))
    unguided = unguided_relus(m, model)
    if post is not None:
        post(m)
    rename_nodes_unique(m)
    onnx.checker.check_model(m)
    onnx.save(m, path)
    inferred = onnx.shape_inference.infer_shapes(m)

    files = {}
    with torch.no_grad():
        logits = model(x)
    argmax = logits.argmax(1)
    fixed_class = min(set(range(NUM_CLASSES)) - set(argmax.tolist()))
    fixed = torch.full((shape[0],), fixed_class, dtype=torch.long)
    save(folder, 'input.bin', x, files)
    save(folder, 'logits.bin', logits, files)
    guided = copy.deepcopy(model)
    replace_modules(guided, nn.ReLU, GuidedReLU)
    modes = {}
    for mode, classes in (('argmax', argmax), ('fixed', fixed)):
        _, a, g = layer_grad(model, module, x, classes)
        if mode == 'argmax':
            save(folder, 'activations.bin', a, files)
            save(folder, f'{mode}/input_grad.bin', input_grad(model, x, classes), files)
            save(folder, f'{mode}/guided_cf.bin', input_grad(guided, x, classes, -1.0), files)
            if relu6:
                g6 = copy.deepcopy(guided)
                replace_modules(g6, nn.ReLU6, GuidedReLU6)
                save(folder, f'{mode}/guided_relu6.bin', input_grad(g6, x, classes), files)
        save(folder, f'{mode}/grads.bin', g, files)
        save(folder, f'{mode}/guided.bin', input_grad(guided, x, classes), files)
        modes[mode] = [int(c) for c in classes]

    vi = {v.name: v for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
    if tname in vi:
        dims = [d.dim_value if d.HasField('dim_value') else -1 for d in vi[tname].type.tensor_type.shape.dim]
        a_shape = files['activations.bin']['shape']
        assert all(d in (-1, s) for d, s in zip(dims, a_shape)) and len(dims) == len(a_shape), (tname, dims, a_shape)
    ops = sorted({n.op_type for n in m.graph.node})
    size = os.path.getsize(path)
    assert size < 300_000, (name, size)
    print(f'{name}: opset {opset}, {size // 1024} KB, target {tname} {files["activations.bin"]["shape"]}, '
          f'unguided {unguided}, ops {ops}')
    return {
        'name': name, 'description': (model.__doc__ or '').strip().replace('\n    ', ' '), 'note': note,
        'opset': opset, 'model': f'{name}/model.onnx', 'input': 'input', 'output': 'logits',
        'inputShape': list(shape), 'numClasses': NUM_CLASSES, 'target': tname, 'targetModule': target,
        'targetShape': files['activations.bin']['shape'], 'unguidedNodes': unguided,
        'guidedRelu6': relu6, 'dynamicBatch': dynamic_batch, 'bnPreserved': preserve_bn,
        'classes': modes, 'fixedClass': fixed_class, 'ops': ops,
        'files': files,
    }


def main():
    torch.manual_seed(0)
    torch.set_num_threads(2)
    fixtures = []

    def efficientnet_post(m):
        flat = [n for n in m.graph.node if n.op_type == 'Squeeze'][-1].output[0]
        insert_after(m, flat, 'Dropout', 'inserted_dropout')
        head = [n for n in m.graph.node if n.op_type == 'GlobalAveragePool'][-1].input[0]
        insert_after(m, head, 'Identity', 'inserted_identity')

    def misc_post(m):
        conv_to_auto_pad(m, '/conv0/Conv')

    specs = [
        ('resnet_o13', MiniResNet, (2, 3, 32, 32), 13, 'layer2.relu2', dict(preserve_bn=True)),
        ('mobilenetv3_o17', MiniMobileNetV3, (2, 3, 30, 30), 17, 'last.2', dict(relu6=True)),
        ('mobilenetv3_o13', MiniMobileNetV3, (2, 3, 30, 30), 13, 'last.2', dict(relu6=True)),
        ('densenet_o11', MiniDenseNet, (2, 3, 32, 32), 11, 'features.norm5', {}),
        ('squeezenet_o13', MiniSqueezeNet, (2, 3, 33, 33), 13, 'features.6', {}),
        ('efficientnet_o17', MiniEfficientNet, (2, 3, 32, 32), 17, 'head.2', dict(post=efficientnet_post)),
        ('misc_o11', MiniMisc, (2, 3, 32, 32), 11, 'relu4', dict(dynamic_batch=True, post=misc_post)),
        ('misc_o17', MiniMisc, (2, 3, 32, 32), 17, 'relu4', dict(dynamic_batch=True, post=misc_post)),
    ]
    only = set(sys.argv[1:])
    for name, cls, shape, opset, target, kw in specs:
        if only and name not in only:
            continue
        torch.manual_seed(0)
        fixtures.append(make_fixture(name, cls(), shape, opset, target, **kw))
    if only and os.path.exists(os.path.join(OUT, 'manifest.json')):   # a partial run keeps the other fixtures
        with open(os.path.join(OUT, 'manifest.json')) as f:
            old = json.load(f)['fixtures']
        done = {f['name'] for f in fixtures}
        fixtures = [f if f['name'] not in done else next(g for g in fixtures if g['name'] == f['name'])
                    for f in old] + [f for f in fixtures if f['name'] not in {o['name'] for o in old}]
    all_ops = sorted({o for f in fixtures for o in f['ops']})
    manifest = {
        'generator': 'scripts/onnx-fixtures.py',
        'torch': torch.__version__, 'onnx': onnx.__version__,
        'semantics': 'Y = sum_n logits[n, class_n] (raw logits); grads = dY/dA at target; guided = pytorch-grad-cam '
                     'GuidedBackpropReLU on nn.ReLU modules only (unguidedNodes are F.relu); guided_cf uses -Y; '
                     'guided_relu6 also guides nn.ReLU6 (Clip). All float32 little-endian C order.',
        'allOps': all_ops,
        'fixtures': fixtures,
    }
    with open(os.path.join(OUT, 'manifest.json'), 'w') as f:
        json.dump(manifest, f, indent=1)
    print('ops covered:', all_ops)


if __name__ == '__main__':
    main()
