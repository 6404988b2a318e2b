// The fused Grad-CAM tail on CUDA: A and g go up once, the four results come down once;
// every step in between is the device launcher of the kernel of the same name.
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

void gradcamTail(const float* a, const float* g, const FeatureShape& s, const TailOptions& o,
                 const TailOutputs& out) {
  requireDevice();
  const size_t nk = s.n * s.k, nhw = s.n * s.hw(), nmap = s.n * o.outH * o.outW;
  DeviceBuffer<float> da(a, s.count()), dg(g, s.count());
  DeviceBuffer<float> weights(nk), raw(nhw), low(nhw), map(nmap);
  launch::channelMean(dg.get(), s, weights.get());
  launch::channelSum(weights.get(), nullptr, da.get(), s, false, false, raw.get());
  reluCopyKernel<<<blocksFor((int64_t)nhw), kThreads>>>(raw.get(), (int64_t)nhw, o.relu, low.get());
  checkLaunch();
  launch::minMaxNormalize(low.get(), s.n, s.hw(), low.get());
  launch::resizeBilinear(low.get(), s.n, s.h, s.w, o.outH, o.outW, o.alignCorners, map.get());
  launch::minMaxNormalize(map.get(), s.n, o.outH * o.outW, map.get());
  weights.download(out.weights);
  raw.download(out.lowresRaw);
  low.download(out.lowres);
  map.download(out.map);
}

}  // namespace cuda
}  // namespace gradcam
