// Per-image min-max normalization on CUDA: one block per image; min, then y = x - min and
// max(y), then y / float32(1e-7 + max). Same float operations as normalize.cc.
#include "cuda_common.cuh"

namespace gradcam {
namespace cuda {
namespace {

__global__ void normalizeKernel(const float* x, int64_t size, float* out) {
  __shared__ float red[kThreads];
  const float* xi = x + blockIdx.x * size;
  float* oi = out + blockIdx.x * size;
  const float inf = __int_as_float(0x7f800000);
  float mn = inf;
  for (int64_t p = threadIdx.x; p < size; p += blockDim.x)
    if (xi[p] < mn) mn = xi[p];  // NaN never wins, as in the reference
  red[threadIdx.x] = mn;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s && red[threadIdx.x + s] < red[threadIdx.x]) red[threadIdx.x] = red[threadIdx.x + s];
    __syncthreads();
  }
  mn = red[0];
  __syncthreads();
  float mx = -inf;
  for (int64_t p = threadIdx.x; p < size; p += blockDim.x) {
    const float y = xi[p] - mn;  // each thread rewrites only the values it read: x may be out
    oi[p] = y;
    if (y > mx) mx = y;
  }
  red[threadIdx.x] = mx;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s && red[threadIdx.x + s] > red[threadIdx.x]) red[threadIdx.x] = red[threadIdx.x + s];
    __syncthreads();
  }
  const float d = (float)(1e-7 + (double)red[0]);
  for (int64_t p = threadIdx.x; p < size; p += blockDim.x) oi[p] = oi[p] / d;
}

}  // namespace

namespace launch {
void minMaxNormalize(const float* x, size_t n, size_t size, float* out) {
  // one block per image; batches beyond the grid limit go in slices
  const size_t maxGrid = 65535;
  for (size_t b = 0; b < n; b += maxGrid) {
    const size_t count = n - b < maxGrid ? n - b : maxGrid;
    normalizeKernel<<<(unsigned)count, kThreads>>>(x + b * size, (int64_t)size, out + b * size);
    checkLaunch();
  }
}
}  // namespace launch

void minMaxNormalize(const float* x, size_t n, size_t size, float* out) {
  requireDevice();
  DeviceBuffer<float> d(x, n * size);
  launch::minMaxNormalize(d.get(), n, size, d.get());
  d.download(out);
}

}  // namespace cuda
}  // namespace gradcam
