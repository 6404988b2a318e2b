// Bilinear resize on CUDA: one thread per output value, the source index math of
// resize_index.h (shared with the CPU kernel), the same float64 blend, rounded once.
#include "cuda_common.cuh"
#include "resize_index.h"

namespace gradcam {
namespace cuda {
namespace {

__global__ void resizeKernel(const float* __restrict__ x, int64_t h, int64_t w, int64_t outH, int64_t outW,
                             bool alignCorners, int64_t total, float* __restrict__ out) {
  for (int64_t q = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; q < total; q += (int64_t)gridDim.x * blockDim.x) {
    const int64_t c = q % outW, r = (q / outW) % outH, img = q / (outW * outH);
    const SourceIndex sy = sourceIndex(r, h, outH, alignCorners);
    const SourceIndex sx = sourceIndex(c, w, outW, alignCorners);
    const float* r0 = x + (img * h + sy.i0) * w;
    const float* r1 = x + (img * h + sy.i1) * w;
    const double wx = sx.lambda, wx0 = 1 - sx.lambda, wy = sy.lambda, wy0 = 1 - sy.lambda;
    const double top = wx0 * (double)r0[sx.i0] + wx * (double)r0[sx.i1];
    const double bottom = wx0 * (double)r1[sx.i0] + wx * (double)r1[sx.i1];
    out[q] = (float)(wy0 * top + wy * bottom);
  }
}

}  // namespace

namespace launch {
void resizeBilinear(const float* x, size_t n, size_t h, size_t w, size_t outH, size_t outW, bool alignCorners,
                    float* out) {
  const int64_t total = (int64_t)(n * outH * outW);
  resizeKernel<<<blocksFor(total), kThreads>>>(x, (int64_t)h, (int64_t)w, (int64_t)outH, (int64_t)outW,
                                               alignCorners, total, out);
  checkLaunch();
}
}  // namespace launch

void resizeBilinear(const float* x, size_t n, size_t h, size_t w, size_t outH, size_t outW, bool alignCorners,
                    float* out) {
  requireDevice();
  DeviceBuffer<float> dx(x, n * h * w), dout(n * outH * outW);
  launch::resizeBilinear(dx.get(), n, h, w, outH, outW, alignCorners, dout.get());
  dout.download(out);
}

}  // namespace cuda
}  // namespace gradcam
