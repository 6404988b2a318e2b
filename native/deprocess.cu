// deprocess_image on CUDA: numpy's pairwise sums with one thread per block of 8192 values (the
// same recursion as deprocess.cc, so the same float32 sums), one thread per image to add the
// block sums in order, then one thread per value for the bytes. Numbers: lib/kernels/pictures.ts.
#include "cuda_common.cuh"
#include "pictures.h"

namespace gradcam {
namespace cuda {
namespace {

struct Values {
  const float* x;
  __device__ float operator()(size_t i) const { return x[i]; }
};

struct SquaredDeviations {
  const float* x;
  float mean;
  __device__ float operator()(size_t i) const {
    const float d = x[i] - mean;
    return d * d;
  }
};

// partial[t] = pairwise sum of block t (image t / blocks) of the values, or of the squared deviations from mean
__global__ void blockSumKernel(const float* __restrict__ data, int64_t size, int64_t blocks, int64_t tasks,
                               const float* __restrict__ mean, float* __restrict__ partial) {
  for (int64_t t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; t < tasks; t += (int64_t)gridDim.x * blockDim.x) {
    const int64_t img = t / blocks, k = t % blocks;
    const size_t start = (size_t)(img * size + k * (int64_t)kNumpyBlock);
    const size_t len = k + 1 < blocks ? kNumpyBlock : (size_t)(size - k * (int64_t)kNumpyBlock);
    partial[t] = mean ? pairwiseSum(SquaredDeviations{data, mean[img]}, start, len) : pairwiseSum(Values{data}, start, len);
  }
}

// per image: the block sums added in order from 0; then the mean (squares: false) or std + 1e-5 (squares: true)
__global__ void finishKernel(const float* __restrict__ partial, int64_t n, int64_t blocks, int64_t size, bool squares,
                             float* __restrict__ out) {
  for (int64_t img = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; img < n; img += (int64_t)gridDim.x * blockDim.x) {
    float s = 0.0f;
    for (int64_t k = 0; k < blocks; k++) s = s + partial[img * blocks + k];
    out[img] = squares ? deprocessDenominator(s, (size_t)size) : meanOf(s, (size_t)size);
  }
}

__global__ void bytesKernel(const float* __restrict__ data, int64_t total, int64_t size, int64_t hw, int64_t c,
                            bool nchw, const float* __restrict__ mean, const float* __restrict__ denom,
                            uint8_t* __restrict__ out) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t img = i / size;
    const uint8_t v = deprocessByte(data[i], mean[img], denom[img]);
    if (nchw) {
      const int64_t j = i - img * size;
      out[img * size + (j % hw) * c + j / hw] = v;
    } else {
      out[i] = v;
    }
  }
}

}  // namespace

void deprocessImage(const float* data, size_t n, size_t c, size_t H, size_t W, Layout layout, uint8_t* out) {
  requireDevice();
  const size_t hw = H * W, size = c * hw, total = n * size;
  const size_t blocks = (size + kNumpyBlock - 1) / kNumpyBlock, tasks = n * blocks;
  DeviceBuffer<float> dd(data, total), partial(tasks), mean(n), denom(n);
  DeviceBuffer<uint8_t> dout(total);
  blockSumKernel<<<blocksFor((int64_t)tasks), kThreads>>>(dd.get(), (int64_t)size, (int64_t)blocks, (int64_t)tasks,
                                                          nullptr, partial.get());
  checkLaunch();
  finishKernel<<<blocksFor((int64_t)n), kThreads>>>(partial.get(), (int64_t)n, (int64_t)blocks, (int64_t)size, false,
                                                    mean.get());
  checkLaunch();
  blockSumKernel<<<blocksFor((int64_t)tasks), kThreads>>>(dd.get(), (int64_t)size, (int64_t)blocks, (int64_t)tasks,
                                                          mean.get(), partial.get());
  checkLaunch();
  finishKernel<<<blocksFor((int64_t)n), kThreads>>>(partial.get(), (int64_t)n, (int64_t)blocks, (int64_t)size, true,
                                                    denom.get());
  checkLaunch();
  bytesKernel<<<blocksFor((int64_t)total), kThreads>>>(dd.get(), (int64_t)total, (int64_t)size, (int64_t)hw,
                                                       (int64_t)c, layout == Layout::NCHW && c > 1, mean.get(),
                                                       denom.get(), dout.get());
  checkLaunch();
  dout.download(out);
}

}  // namespace cuda
}  // namespace gradcam
