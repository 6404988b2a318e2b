// The shapes and options every kernel takes: one vocabulary with lib/kernels/types.ts
// (n batch, k channels, h x w feature map, H x W output; layout nchw or nhwc).
#pragma once
#include <cstddef>

namespace gradcam {

enum class Layout { NCHW, NHWC };

// f(g, A) of the element-wise channel sum: g*A (HiResCAM), max(g,0)*A (LayerCAM),
// max(g*A,0) (Grad-CAM element-wise).
enum class ElementwiseOp { GradTimesAct, ReluGradTimesAct, ReluOfGradTimesAct };

// Channel weights from G (S_A = sum_ij A; see lib/kernels/types.ts ChannelWeighting):
// mean_ij G; sum_ij max(G,0)*a_ij with a_ij = G^2/(2G^2 + S_A*G^3 + eps) (0 where G == 0);
// the same divided by sum_ij a_ij (where not 0); sum_ij G*A / (S_A + eps).
enum class ChannelWeighting { GradMean, GradPP, GradPPNormalized, GradActRatio };

// How camTail forms a round's low-resolution map (lib/kernels/types.ts CamCombine).
enum class CombineKind { Weights, GivenWeights, Elementwise, GivenLowres };

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

struct CamCombine {
  CombineKind kind;
  ChannelWeighting weighting;  // kind Weights
  double eps;                  // kind Weights (default 1e-7)
  ElementwiseOp op;            // kind Elementwise
};

// The per-round inputs of camTail: `count` rounds, each array one pointer per round or nullptr.
struct CamRounds {
  size_t count;
  const float* const* grads;       // [n,k,h,w] G (kinds Weights and Elementwise)
  const float* const* given;       // [n,k] weights (GivenWeights) or [n,h,w] raw maps (GivenLowres)
  const float* const* inputGrads;  // [n,c,outH,outW] in guideLayout, or nullptr: no guided product
  size_t guideC;
  Layout guideLayout;
};

// Caller-owned outputs of camTail, all rounds back to back: weights [R,n,k] (nullptr for kinds
// Elementwise and GivenLowres), lowresRaw/lowres [R,n,h,w], map [R,n,outH,outW],
// guided [R,n,c,outH,outW] (nullptr without inputGrads).
struct CamTailOutputs {
  float* weights;
  float* lowresRaw;
  float* lowres;
  float* map;
  float* guided;
};

}  // namespace gradcam
