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
