// Guided Grad-CAM's product on CUDA: one thread per element of G.
#include "cuda_common.cuh"

namespace gradcam {
namespace cuda {
namespace {

__global__ void guidedProductKernel(const float* __restrict__ guided, const float* __restrict__ cam, int64_t c,
                                    int64_t hw, bool nchw, int64_t total, float* __restrict__ out) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t m = nchw ? (i / (c * hw)) * hw + i % hw : i / c;
    out[i] = guided[i] * cam[m];
  }
}

}  // namespace

namespace launch {
void guidedProduct(const float* guided, const float* cam, size_t n, size_t c, size_t H, size_t W, Layout layout,
                   float* out) {
  const int64_t total = (int64_t)(n * c * H * W);
  guidedProductKernel<<<blocksFor(total), kThreads>>>(guided, cam, (int64_t)c, (int64_t)(H * W),
                                                      layout == Layout::NCHW, total, out);
  checkLaunch();
}
}  // namespace launch

void guidedProduct(const float* guided, const float* cam, size_t n, size_t c, size_t H, size_t W, Layout layout,
                   float* out) {
  requireDevice();
  const size_t total = n * c * H * W;
  DeviceBuffer<float> dg(guided, total), dc(cam, n * H * W), dout(total);
  launch::guidedProduct(dg.get(), dc.get(), n, c, H, W, layout, dout.get());
  dout.download(out);
}

}  // namespace cuda
}  // namespace gradcam
