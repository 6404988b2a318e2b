"""pytorch-grad-cam's guided ReLU (GuidedBackpropReLU), shared by the fixture and benchmark scripts:
grad_in = grad_out * (x > 0) * (grad_out > 0)."""
import torch
import torch.nn as nn


class GuidedReLUFn(torch.autograd.Function):
    """pytorch-grad-cam's GuidedBackpropReLU: grad_in = grad_out * (x>0) * (grad_out>0)."""
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        return g * (x > 0).type_as(g) * (g > 0).type_as(g)


class GuidedReLU(nn.Module):
    def forward(self, x):
        return GuidedReLUFn.apply(x)


class DeconvReLUFn(torch.autograd.Function):
    """DeconvNet's ReLU (Zeiler & Fergus; Captum's Deconvolution): forward ReLU, grad_in = max(grad_out, 0),
    whatever the sign of the forward input."""
    @staticmethod
    def forward(ctx, x):
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, g):
        return g.clamp(min=0)


class DeconvReLU(nn.Module):
    def forward(self, x):
        return DeconvReLUFn.apply(x)


def replace_relu(module, factory):
    """Replace every nn.ReLU module below `module` (in place) by factory(): pytorch-grad-cam's way, which
    leaves ReLU6, F.relu and the other activations alone."""
    for name, child in module.named_children():
        if isinstance(child, nn.ReLU):
            setattr(module, name, factory())
        else:
            replace_relu(child, factory)
