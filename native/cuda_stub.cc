// The CUDA half when the addon is built without CUDA (GRADCAM_CUDA=OFF, or AUTO without nvcc):
// info() says so and every kernel throws, so callers fall back to the CPU kernels.
#include <stdexcept>

#include "kernels.h"
#include "pictures.h"

namespace gradcam {
namespace cuda {

static const char* kReason = "the native addon was built without CUDA (GRADCAM_CUDA=OFF or nvcc not found)";

bool compiled() { return false; }

const Info& info() {
  static const Info result{false, kReason, ""};
  return result;
}

[[noreturn]] static void unavailable() { throw std::runtime_error(std::string("CUDA is not available: ") + kReason); }

void channelMean(const float*, const FeatureShape&, float*) { unavailable(); }
void channelSums(const float*, const float*, const FeatureShape&, float*, float*, float*, float*, float*) {
  unavailable();
}
void weightedChannelSum(const float*, const float*, const FeatureShape&, bool, float*) { unavailable(); }
void elementwiseChannelSum(const float*, const float*, const FeatureShape&, ElementwiseOp, bool, float*) {
  unavailable();
}
void resizeBilinear(const float*, size_t, size_t, size_t, size_t, size_t, bool, float*) { unavailable(); }
void minMaxNormalize(const float*, size_t, size_t, float*) { unavailable(); }
void guidedProduct(const float*, const float*, size_t, size_t, size_t, size_t, Layout, float*) { unavailable(); }
void gradcamTail(const float*, const float*, const FeatureShape&, const TailOptions&, const TailOutputs&) {
  unavailable();
}
void camTail(const float*, const FeatureShape&, const CamCombine&, const CamRounds&, const TailOptions&,
             const CamTailOutputs&) {
  unavailable();
}

void applyColormap(const float*, size_t, size_t, size_t, Colormap, uint8_t*) { unavailable(); }
void showCamOnImage(const float*, const float*, size_t, size_t, size_t, const OverlayOptions&, uint8_t*) {
  unavailable();
}
void deprocessImage(const float*, size_t, size_t, size_t, size_t, Layout, uint8_t*) { unavailable(); }
void greyToRgb(const uint8_t*, size_t, size_t, size_t, uint8_t*) { unavailable(); }

}  // namespace cuda
}  // namespace gradcam
