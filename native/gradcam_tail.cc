// The fused Grad-CAM tail on CPU threads, so a batch crosses into C++ once:
// weights = channelMean(g); lowresRaw = sum_k weights_k A_k; lowres = normalize(relu(lowresRaw));
// map = normalize(resize(lowres)). Each step is the kernel of the same name (same numbers).
#include "kernels.h"
#include "thread_pool.h"

namespace gradcam {
namespace cpu {

void gradcamTail(const float* a, const float* g, const FeatureShape& s, const TailOptions& o,
                 const TailOutputs& out) {
  const size_t hw = s.hw();
  channelMean(g, s, out.weights);
  weightedChannelSum(out.weights, a, s, false, out.lowresRaw);
  const size_t total = s.n * hw;
  for (size_t p = 0; p < total; p++) {
    const float v = out.lowresRaw[p];
    out.lowres[p] = o.relu && v < 0 ? 0.0f : v;
  }
  minMaxNormalize(out.lowres, s.n, hw, out.lowres);
  resizeBilinear(out.lowres, s.n, s.h, s.w, o.outH, o.outW, o.alignCorners, out.map);
  minMaxNormalize(out.map, s.n, o.outH * o.outW, out.map);
}

}  // namespace cpu
}  // namespace gradcam
