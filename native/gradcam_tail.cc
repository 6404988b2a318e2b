// The fused Grad-CAM tail on CPU threads, so a batch crosses into C++ once:
// weights = channelMean(g); lowresRaw = sum_k weights_k A_k; lowres = normalize(relu(lowresRaw));
// map = normalize(resize(lowres)). Each step is the kernel of the same name (same numbers).
#include "cpu_internal.h"
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
  const size_t mapSize = o.outH * o.outW;
  if (s.n < threadCount()) {
    // too few images to split by image: split each step by rows
    resizeBilinear(out.lowres, s.n, s.h, s.w, o.outH, o.outW, o.alignCorners, out.map);
    minMaxNormalize(out.map, s.n, mapSize, out.map);
    return;
  }
  // one image per task: resize, then min/max and normalize while the map is still in cache
  const ResizeColumns cols(s.w, o.outW, o.alignCorners);
  parallelFor(s.n, 1, [&](size_t b, size_t e) {
    for (size_t img = b; img < e; img++) {
      resizeRows(out.lowres, s.h, s.w, o.outH, o.outW, o.alignCorners, cols, img * o.outH, (img + 1) * o.outH, out.map);
      float* map = out.map + img * mapSize;
      float mn, mx;
      minMaxOf(map, mapSize, mn, mx);
      normalizeWithMinMax(map, mapSize, mn, mx, map);
    }
  });
}

}  // namespace cpu
}  // namespace gradcam
