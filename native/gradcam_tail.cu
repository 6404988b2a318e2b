// The fused CAM tails on CUDA: A goes up once for all rounds, each round's gradients (or given
// weights / maps) and input gradients go up once, every result comes down once; each step in
// between is the device launcher of the kernel of the same name (the steps of gradcam_tail.cc).
#include <vector>

#include "cuda_common.cuh"

namespace gradcam {
namespace cuda {
namespace {

__global__ void reluCopyKernel(const float* __restrict__ x, int64_t total, bool relu, float* __restrict__ out) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    const float v = x[i];
    out[i] = relu && v < 0 ? 0.0f : v;
  }
}

}  // namespace

void camTail(const float* a, const FeatureShape& s, const CamCombine& c, const CamRounds& rd, const TailOptions& o,
             const CamTailOutputs& out) {
  requireDevice();
  const size_t R = rd.count, nk = s.n * s.k, nhw = s.n * s.hw(), mapSize = o.outH * o.outW;
  const size_t maps = R * s.n, guideLen = rd.inputGrads ? s.n * rd.guideC * mapSize : 0;
  const bool readsA = c.kind != CombineKind::GivenLowres;
  const bool readsGrads = c.kind == CombineKind::Weights || c.kind == CombineKind::Elementwise;
  const bool hasWeights = c.kind == CombineKind::Weights || c.kind == CombineKind::GivenWeights;
  DeviceBuffer<float> da(readsA ? s.count() : 0), dg(readsGrads ? s.count() : 0);
  DeviceBuffer<float> weights(hasWeights ? R * nk : 0), raw(R * nhw), low(R * nhw), map(maps * mapSize);
  DeviceBuffer<float> dguide(guideLen), guided(R * guideLen);
  if (readsA) da.upload(a);
  for (size_t r = 0; r < R; r++) {
    float* rawR = raw.get() + r * nhw;
    float* wR = hasWeights ? weights.get() + r * nk : nullptr;
    switch (c.kind) {
      case CombineKind::Weights:
        dg.upload(rd.grads[r]);
        launch::channelWeights(dg.get(), da.get(), s, c.weighting, c.eps, wR);
        launch::channelSum(wR, nullptr, da.get(), s, ElementwiseOp::GradTimesAct, false, rawR);
        break;
      case CombineKind::GivenWeights:
        GRADCAM_CUDA_CHECK(cudaMemcpy(wR, rd.given[r], nk * sizeof(float), cudaMemcpyHostToDevice));
        launch::channelSum(wR, nullptr, da.get(), s, ElementwiseOp::GradTimesAct, false, rawR);
        break;
      case CombineKind::Elementwise:
        dg.upload(rd.grads[r]);
        launch::channelSum(nullptr, dg.get(), da.get(), s, c.op, false, rawR);
        break;
      case CombineKind::GivenLowres:
        GRADCAM_CUDA_CHECK(cudaMemcpy(rawR, rd.given[r], nhw * sizeof(float), cudaMemcpyHostToDevice));
        break;
    }
  }
  reluCopyKernel<<<blocksFor((int64_t)(R * nhw)), kThreads>>>(raw.get(), (int64_t)(R * nhw), o.relu, low.get());
  checkLaunch();
  launch::minMaxNormalize(low.get(), maps, s.hw(), low.get());
  launch::resizeBilinear(low.get(), maps, s.h, s.w, o.outH, o.outW, o.alignCorners, map.get());
  launch::minMaxNormalize(map.get(), maps, mapSize, map.get());
  if (rd.inputGrads) {
    for (size_t r = 0; r < R; r++) {
      dguide.upload(rd.inputGrads[r]);
      launch::guidedProduct(dguide.get(), map.get() + r * s.n * mapSize, s.n, rd.guideC, o.outH, o.outW,
                            rd.guideLayout, guided.get() + r * guideLen);
    }
  }
  if (out.weights) weights.download(out.weights);
  raw.download(out.lowresRaw);
  low.download(out.lowres);
  map.download(out.map);
  if (out.guided) guided.download(out.guided);
}

void gradcamTail(const float* a, const float* g, const FeatureShape& s, const TailOptions& o,
                 const TailOutputs& out) {
  const CamCombine c{CombineKind::Weights, ChannelWeighting::GradMean, 1e-7, ElementwiseOp::GradTimesAct};
  const float* grads[1] = {g};
  const CamRounds rd{1, grads, nullptr, nullptr, 0, Layout::NCHW};
  camTail(a, s, c, rd, o, CamTailOutputs{out.weights, out.lowresRaw, out.lowres, out.map, nullptr});
}

}  // namespace cuda
}  // namespace gradcam
