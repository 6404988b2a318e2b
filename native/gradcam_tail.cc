// The fused CAM tails on CPU threads, so a batch crosses into C++ once:
//   camTail, per round r: lowresRaw = the map of `combine` (channel weights then the weighted
//   sum, an element-wise sum, or the caller's map); lowres = normalize(relu(lowresRaw));
//   map = normalize(resize(lowres)); guided = inputGrads[r] * map.
//   gradcamTail = camTail with one round of GradMean weights.
// Each step is the kernel of the same name (same numbers); the steps after the low-resolution
// map are per image, so the R*n maps of all rounds go through them as one batch.
#include <cstring>
#include <vector>

#include "cpu_internal.h"
#include "kernels.h"
#include "thread_pool.h"

namespace gradcam {
namespace cpu {

void camTail(const float* a, const FeatureShape& s, const CamCombine& c, const CamRounds& rd, const TailOptions& o,
             const CamTailOutputs& out) {
  const size_t hw = s.hw(), nk = s.n * s.k, nhw = s.n * hw, R = rd.count;
  for (size_t r = 0; r < R; r++) {
    float* raw = out.lowresRaw + r * nhw;
    float* w = out.weights ? out.weights + r * nk : nullptr;
    switch (c.kind) {
      case CombineKind::Weights:
        channelWeights(rd.grads[r], a, s, c.weighting, c.eps, w);
        weightedChannelSum(w, a, s, false, raw);
        break;
      case CombineKind::GivenWeights:
        std::memcpy(w, rd.given[r], nk * sizeof(float));
        weightedChannelSum(w, a, s, false, raw);
        break;
      case CombineKind::Elementwise:
        elementwiseChannelSum(rd.grads[r], a, s, c.op, false, raw);
        break;
      case CombineKind::GivenLowres:
        std::memcpy(raw, rd.given[r], nhw * sizeof(float));
        break;
    }
  }
  const size_t maps = R * s.n, total = maps * hw;
  for (size_t p = 0; p < total; p++) {
    const float v = out.lowresRaw[p];
    out.lowres[p] = o.relu && v < 0 ? 0.0f : v;
  }
  minMaxNormalize(out.lowres, maps, hw, out.lowres);
  const size_t mapSize = o.outH * o.outW;
  const size_t guideSize = rd.inputGrads ? rd.guideC * mapSize : 0;  // one image of the guided tensor
  if (maps < threadCount()) {
    // too few images to split by image: split each step by rows
    resizeBilinear(out.lowres, maps, s.h, s.w, o.outH, o.outW, o.alignCorners, out.map);
    minMaxNormalize(out.map, maps, mapSize, out.map);
    if (rd.inputGrads)
      for (size_t r = 0; r < R; r++)
        guidedProduct(rd.inputGrads[r], out.map + r * s.n * mapSize, s.n, rd.guideC, o.outH, o.outW, rd.guideLayout,
                      out.guided + r * s.n * guideSize);
    return;
  }
  // one image per task: resize, min/max, normalize and the guided product while the map is in cache
  const ResizeColumns cols(s.w, o.outW, o.alignCorners);
  parallelFor(maps, 1, [&](size_t b, size_t e) {
    for (size_t q = b; q < e; q++) {
      resizeRows(out.lowres, s.h, s.w, o.outH, o.outW, o.alignCorners, cols, q * o.outH, (q + 1) * o.outH, out.map);
      float* map = out.map + q * mapSize;
      float mn, mx;
      minMaxOf(map, mapSize, mn, mx);
      normalizeWithMinMax(map, mapSize, mn, mx, map);
      if (rd.inputGrads) {
        // one image of either layout is one contiguous block; the nested parallelFor runs serially here
        const size_t r = q / s.n, img = q % s.n;
        guidedProduct(rd.inputGrads[r] + img * guideSize, map, 1, rd.guideC, o.outH, o.outW, rd.guideLayout,
                      out.guided + q * guideSize);
      }
    }
  });
}

void gradcamTail(const float* a, const float* g, const FeatureShape& s, const TailOptions& o,
                 const TailOutputs& out) {
  const CamCombine c{CombineKind::Weights, ChannelWeighting::GradMean, 1e-7, ElementwiseOp::GradTimesAct};
  const float* grads[1] = {g};
  const CamRounds rd{1, grads, nullptr, nullptr, 0, Layout::NCHW};
  camTail(a, s, c, rd, o, CamTailOutputs{out.weights, out.lowresRaw, out.lowres, out.map, nullptr});
}

}  // namespace cpu
}  // namespace gradcam
