// What the CUDA kernels share: error checks that throw (the addon turns them into JS errors),
// a device buffer that frees itself, grid sizes, and the device-pointer launchers each family
// defines, so the fused tail chains them without leaving the device.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "kernels.h"

namespace gradcam {
namespace cuda {

#define GRADCAM_CUDA_CHECK(expr)                                                                   \
  do {                                                                                             \
    cudaError_t err_ = (expr);                                                                     \
    if (err_ != cudaSuccess)                                                                       \
      throw std::runtime_error(std::string("CUDA error in ") + #expr + ": " + cudaGetErrorString(err_)); \
  } while (0)

/** Throws unless a CUDA device is usable (the reason is in the message). */
void requireDevice();

template <typename T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t count) : count_(count) {
    if (count) GRADCAM_CUDA_CHECK(cudaMalloc((void**)&ptr_, count * sizeof(T)));
  }
  DeviceBuffer(const T* host, size_t count) : DeviceBuffer(count) { upload(host); }
  ~DeviceBuffer() {
    if (ptr_) cudaFree(ptr_);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void upload(const T* host) {
    if (count_) GRADCAM_CUDA_CHECK(cudaMemcpy(ptr_, host, count_ * sizeof(T), cudaMemcpyHostToDevice));
  }
  void download(T* host) const {
    if (count_) GRADCAM_CUDA_CHECK(cudaMemcpy(host, ptr_, count_ * sizeof(T), cudaMemcpyDeviceToHost));
  }
  T* get() const { return ptr_; }

 private:
  T* ptr_ = nullptr;
  size_t count_;
};

constexpr int kThreads = 256;

inline unsigned blocksFor(int64_t items) {
  int64_t b = (items + kThreads - 1) / kThreads;
  if (b < 1) b = 1;
  if (b > (1 << 20)) b = 1 << 20;  // grid-stride loops cover the rest
  return (unsigned)b;
}

inline void checkLaunch() { GRADCAM_CUDA_CHECK(cudaGetLastError()); }

// Device-pointer launchers (default stream), defined next to their kernels.
namespace launch {
void channelMean(const float* x, const FeatureShape& s, float* out);
void channelSums(const float* g, const float* a, const FeatureShape& s, float* sg, float* sg2, float* sg3,
                 float* sa, float* sga);
// out [n,k]: the channel weights of `w` from g (and a), as cpu::channelWeights
void channelWeights(const float* g, const float* a, const FeatureShape& s, ChannelWeighting w, double eps,
                    float* out);
// weights != nullptr: f = w*A; else f = op(g, A)
void channelSum(const float* weights, const float* g, const float* a, const FeatureShape& s, ElementwiseOp op,
                bool relu, float* out);
void resizeBilinear(const float* x, size_t n, size_t h, size_t w, size_t outH, size_t outW, bool alignCorners,
                    float* out);
void minMaxNormalize(const float* x, size_t n, size_t size, float* out);
void guidedProduct(const float* guided, const float* cam, size_t n, size_t c, size_t H, size_t W, Layout layout,
                   float* out);
}  // namespace launch

}  // namespace cuda
}  // namespace gradcam
