// CUDA detection, once: the runtime is linked statically, so on a machine without a driver
// or a GPU the addon still loads and this says why CUDA is not available.
#include <mutex>

#include "cuda_common.cuh"

namespace gradcam {
namespace cuda {

bool compiled() { return true; }

const Info& info() {
  static Info result;
  static std::once_flag once;
  std::call_once(once, [] {
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
      result = Info{false, std::string("cudaGetDeviceCount failed: ") + cudaGetErrorString(err), ""};
      cudaGetLastError();  // clear the sticky error
      return;
    }
    if (count == 0) {
      result = Info{false, "no CUDA device found", ""};
      return;
    }
    cudaDeviceProp prop;
    err = cudaGetDeviceProperties(&prop, 0);
    if (err != cudaSuccess) {
      result = Info{false, std::string("cudaGetDeviceProperties failed: ") + cudaGetErrorString(err), ""};
      return;
    }
    result = Info{true,
                  "CUDA device 0 of " + std::to_string(count) + ": " + prop.name + " (compute capability " +
                      std::to_string(prop.major) + "." + std::to_string(prop.minor) + ")",
                  prop.name};
  });
  return result;
}

void requireDevice() {
  const Info& i = info();
  if (!i.available) throw std::runtime_error("CUDA is not available: " + i.reason);
}

}  // namespace cuda
}  // namespace gradcam
