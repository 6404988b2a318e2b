// Every CAM kernel, twice: on CPU threads (gradcam::cpu, the *.cc files) and on CUDA
// (gradcam::cuda, the *.cu files). Same signatures, same numbers: the rules are those of
// lib/kernels/reference.ts (float64 accumulation in a fixed order, one rounding to float32).
// Pointers are host memory, already checked (native/check.h): lengths match the shapes.
#pragma once
#include <string>

#include "shape.h"

namespace gradcam {

#define GRADCAM_KERNEL_DECLARATIONS                                                                 \
  /* out [n,k]: spatial mean per channel */                                                          \
  void channelMean(const float* x, const FeatureShape& s, float* out);                               \
  /* five [n,k] sums over i,j: g, g^2, g^3, A, g*A */                                                \
  void channelSums(const float* g, const float* a, const FeatureShape& s, float* sg, float* sg2,     \
                   float* sg3, float* sa, float* sga);                                               \
  /* out [n,h,w] = sum_k weights[n,k] * A, then max(.,0) when relu */                                \
  void weightedChannelSum(const float* weights, const float* a, const FeatureShape& s, bool relu,    \
                          float* out);                                                               \
  /* out [n,h,w] = sum_k f(g,A), then max(.,0) when relu */                                          \
  void elementwiseChannelSum(const float* g, const float* a, const FeatureShape& s,                  \
                             ElementwiseOp op, bool relu, float* out);                               \
  /* out [n,outH,outW]: bilinear resize of n maps [n,h,w] */                                         \
  void resizeBilinear(const float* x, size_t n, size_t h, size_t w, size_t outH, size_t outW,        \
                      bool alignCorners, float* out);                                                \
  /* per image of `size` values: y = x - min; out = y / (max(y) + 1e-7). x may equal out. */         \
  void minMaxNormalize(const float* x, size_t n, size_t size, float* out);                           \
  /* out = guided * cam, cam [n,H,W] broadcast over the c channels of guided (in `layout`) */        \
  void guidedProduct(const float* guided, const float* cam, size_t n, size_t c, size_t H, size_t W,  \
                     Layout layout, float* out);                                                     \
  /* the whole Grad-CAM tail (camTail with one round of GradMean weights) */                         \
  void gradcamTail(const float* a, const float* g, const FeatureShape& s, const TailOptions& o,      \
                   const TailOutputs& out);                                                          \
  /* the generalized CAM tail over r.count rounds, A read in place once for all */                    \
  void camTail(const float* a, const FeatureShape& s, const CamCombine& c, const CamRounds& r,       \
               const TailOptions& o, const CamTailOutputs& out);

namespace cpu {
GRADCAM_KERNEL_DECLARATIONS
/** threads of the pool (the caller included) */
unsigned threadCount();
}  // namespace cpu

namespace cuda {
GRADCAM_KERNEL_DECLARATIONS

struct Info {
  bool available;
  std::string reason;      // why not, or what was found
  std::string deviceName;  // empty when not available
};
/** Detected once (thread-safe) and cached. Never throws. */
const Info& info();
/** Whether this binary was compiled with CUDA kernels. */
bool compiled();
}  // namespace cuda

#undef GRADCAM_KERNEL_DECLARATIONS

}  // namespace gradcam
