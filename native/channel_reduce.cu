// Channel reductions on CUDA: one thread per (image, channel), float64 accumulators over the
// spatial positions in row-major order, like the CPU kernels (channel_reduce.cc), so the two
// give the same float32 results.
#include "cuda_common.cuh"

namespace gradcam {
namespace cuda {
namespace {

// channel (img, ch) starts at img*imgStride + ch*chStride, positions step by posStride
struct Walk {
  int64_t k, hw, imgStride, chStride, posStride;
};

__host__ Walk walkOf(const FeatureShape& s) {
  const int64_t hw = (int64_t)s.hw(), k = (int64_t)s.k;
  if (s.layout == Layout::NCHW) return Walk{k, hw, k * hw, hw, 1};
  return Walk{k, hw, k * hw, 1, k};
}

__global__ void channelMeanKernel(const float* __restrict__ x, Walk wk, int64_t rows, float* __restrict__ out) {
  for (int64_t r = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; r < rows; r += (int64_t)gridDim.x * blockDim.x) {
    const int64_t img = r / wk.k, ch = r % wk.k;
    const float* p = x + img * wk.imgStride + ch * wk.chStride;
    double s = 0;
    for (int64_t q = 0; q < wk.hw; q++) s += (double)p[q * wk.posStride];
    out[r] = (float)(s / (double)wk.hw);
  }
}

__global__ void channelSumsKernel(const float* __restrict__ g, const float* __restrict__ a, Walk wk, int64_t rows,
                                  float* sg, float* sg2, float* sg3, float* sa, float* sga) {
  for (int64_t r = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; r < rows; r += (int64_t)gridDim.x * blockDim.x) {
    const int64_t img = r / wk.k, ch = r % wk.k;
    const int64_t o = img * wk.imgStride + ch * wk.chStride;
    double s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0;
    for (int64_t q = 0; q < wk.hw; q++) {
      const double gv = g[o + q * wk.posStride], av = a[o + q * wk.posStride];
      const double g2 = gv * gv;
      s1 += gv;
      s2 += g2;
      s3 += g2 * gv;
      s4 += av;
      s5 += gv * av;
    }
    sg[r] = (float)s1;
    sg2[r] = (float)s2;
    sg3[r] = (float)s3;
    sa[r] = (float)s4;
    sga[r] = (float)s5;
  }
}

// one thread per channel; the loops of cpu::channelWeights (weightOf), in the same order
__global__ void channelWeightsKernel(const float* __restrict__ g, const float* __restrict__ a, Walk wk, int64_t rows,
                                     ChannelWeighting wt, double eps, float* __restrict__ out) {
  for (int64_t r = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; r < rows; r += (int64_t)gridDim.x * blockDim.x) {
    const int64_t img = r / wk.k, ch = r % wk.k;
    const int64_t o = img * wk.imgStride + ch * wk.chStride;
    double sA = 0;
    for (int64_t q = 0; q < wk.hw; q++) sA += (double)a[o + q * wk.posStride];
    if (wt == ChannelWeighting::GradActRatio) {
      double sGA = 0;
      for (int64_t q = 0; q < wk.hw; q++) sGA += (double)g[o + q * wk.posStride] * (double)a[o + q * wk.posStride];
      out[r] = (float)(sGA / (sA + eps));
      continue;
    }
    double num = 0, den = 0;
    for (int64_t q = 0; q < wk.hw; q++) {
      const double gv = g[o + q * wk.posStride];
      if (gv == 0) continue;  // a_ij = 0 where G == 0
      const double g2 = gv * gv;
      const double g3 = g2 * gv;
      const double ap = g2 / (2 * g2 + sA * g3 + eps);
      num += (gv < 0 ? 0.0 : gv) * ap;
      den += ap;
    }
    out[r] = (float)(wt == ChannelWeighting::GradPPNormalized && den != 0 ? num / den : num);
  }
}

}  // namespace

namespace launch {

void channelWeights(const float* g, const float* a, const FeatureShape& s, ChannelWeighting wt, double eps,
                    float* out) {
  if (wt == ChannelWeighting::GradMean) {
    channelMean(g, s, out);
    return;
  }
  const int64_t rows = (int64_t)(s.n * s.k);
  channelWeightsKernel<<<blocksFor(rows), kThreads>>>(g, a, walkOf(s), rows, wt, eps, out);
  checkLaunch();
}

void channelMean(const float* x, const FeatureShape& s, float* out) {
  const int64_t rows = (int64_t)(s.n * s.k);
  channelMeanKernel<<<blocksFor(rows), kThreads>>>(x, walkOf(s), rows, out);
  checkLaunch();
}

void channelSums(const float* g, const float* a, const FeatureShape& s, float* sg, float* sg2, float* sg3,
                 float* sa, float* sga) {
  const int64_t rows = (int64_t)(s.n * s.k);
  channelSumsKernel<<<blocksFor(rows), kThreads>>>(g, a, walkOf(s), rows, sg, sg2, sg3, sa, sga);
  checkLaunch();
}

}  // namespace launch

void channelMean(const float* x, const FeatureShape& s, float* out) {
  requireDevice();
  DeviceBuffer<float> dx(x, s.count()), dout(s.n * s.k);
  launch::channelMean(dx.get(), s, dout.get());
  dout.download(out);
}

void channelSums(const float* g, const float* a, const FeatureShape& s, float* sg, float* sg2, float* sg3,
                 float* sa, float* sga) {
  requireDevice();
  const size_t nk = s.n * s.k;
  DeviceBuffer<float> dg(g, s.count()), da(a, s.count()), d(5 * nk);
  float* o = d.get();
  launch::channelSums(dg.get(), da.get(), s, o, o + nk, o + 2 * nk, o + 3 * nk, o + 4 * nk);
  float* outs[5] = {sg, sg2, sg3, sa, sga};
  for (int i = 0; i < 5; i++)
    GRADCAM_CUDA_CHECK(cudaMemcpy(outs[i], o + i * nk, nk * sizeof(float), cudaMemcpyDeviceToHost));
}

}  // namespace cuda
}  // namespace gradcam
