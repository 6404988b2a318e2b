// Sums over channels on CUDA: one thread per output position, channels k ascending with a
// float64 accumulator (the order of channel_sum.cc and the reference).
#include "cuda_common.cuh"

namespace gradcam {
namespace cuda {
namespace {

// op 0: w[n,k]*A; 1: g*A; 2: max(g,0)*A; 3: max(g*A,0)
template <int Op>
__global__ void channelSumKernel(const float* __restrict__ weights, const float* __restrict__ g,
                                 const float* __restrict__ a, int64_t k, int64_t hw, bool nchw, bool relu,
                                 int64_t total, float* __restrict__ out) {
  for (int64_t q = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; q < total; q += (int64_t)gridDim.x * blockDim.x) {
    const int64_t img = q / hw, p = q % hw;
    const int64_t base = nchw ? img * k * hw + p : q * k;
    const int64_t step = nchw ? hw : 1;
    double s = 0;
    for (int64_t ch = 0; ch < k; ch++) {
      const int64_t i = base + ch * step;
      double f;
      if (Op == 0) {
        f = (double)weights[img * k + ch] * (double)a[i];
      } else if (Op == 3) {
        f = (double)g[i] * (double)a[i];
        if (f < 0) f = 0.0;
      } else {
        float gv = g[i];
        if (Op == 2 && gv < 0) gv = 0.0f;
        f = (double)gv * (double)a[i];
      }
      s += f;
    }
    const float v = (float)s;
    out[q] = relu && v < 0 ? 0.0f : v;
  }
}

}  // namespace

namespace launch {

void channelSum(const float* weights, const float* g, const float* a, const FeatureShape& s, ElementwiseOp op,
                bool relu, float* out) {
  const int64_t hw = (int64_t)s.hw(), k = (int64_t)s.k, total = (int64_t)s.n * hw;
  const bool nchw = s.layout == Layout::NCHW;
  const unsigned blocks = blocksFor(total);
  if (weights)
    channelSumKernel<0><<<blocks, kThreads>>>(weights, g, a, k, hw, nchw, relu, total, out);
  else if (op == ElementwiseOp::GradTimesAct)
    channelSumKernel<1><<<blocks, kThreads>>>(weights, g, a, k, hw, nchw, relu, total, out);
  else if (op == ElementwiseOp::ReluGradTimesAct)
    channelSumKernel<2><<<blocks, kThreads>>>(weights, g, a, k, hw, nchw, relu, total, out);
  else
    channelSumKernel<3><<<blocks, kThreads>>>(weights, g, a, k, hw, nchw, relu, total, out);
  checkLaunch();
}

}  // namespace launch

void weightedChannelSum(const float* weights, const float* a, const FeatureShape& s, bool relu, float* out) {
  requireDevice();
  DeviceBuffer<float> dw(weights, s.n * s.k), da(a, s.count()), dout(s.n * s.hw());
  launch::channelSum(dw.get(), nullptr, da.get(), s, ElementwiseOp::GradTimesAct, relu, dout.get());
  dout.download(out);
}

void elementwiseChannelSum(const float* g, const float* a, const FeatureShape& s, ElementwiseOp op, bool relu,
                           float* out) {
  requireDevice();
  DeviceBuffer<float> dg(g, s.count()), da(a, s.count()), dout(s.n * s.hw());
  launch::channelSum(nullptr, dg.get(), da.get(), s, op, relu, dout.get());
  dout.download(out);
}

}  // namespace cuda
}  // namespace gradcam
