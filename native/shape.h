// The shapes and options every kernel takes: one vocabulary with lib/kernels/types.ts
// (n batch, k channels, h x w feature map, H x W output; layout nchw or nhwc).
#pragma once
#include <cstddef>

namespace gradcam {

enum class Layout { NCHW, NHWC };

// HiResCAM: f = g*A; LayerCAM: f = max(g,0)*A.
enum class ElementwiseOp { GradTimesAct, ReluGradTimesAct };

struct FeatureShape {
  size_t n, k, h, w;
  Layout layout;
  size_t hw() const { return h * w; }
  size_t count() const { return n * k * h * w; }
};

struct TailOptions {
  size_t outH, outW;
  bool relu;          // ReLU on the low-resolution map (default true)
  bool alignCorners;  // resize convention (default false: half-pixel centres)
};

// Caller-owned outputs of gradcamTail: weights [n,k], lowresRaw/lowres [n,h,w], map [n,outH,outW].
struct TailOutputs {
  float* weights;
  float* lowresRaw;
  float* lowres;
  float* map;
};

}  // namespace gradcam
