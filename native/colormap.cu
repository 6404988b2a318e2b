// The colormap picture kernels on CUDA: applyColormap and greyToRgb one thread per pixel;
// showCamOnImage one block per image (the blend, a block max, then the bytes). Same float
// operations as colormap.cc (--fmad=false); the tables of colormap_lut.h.
#include "colormap_lut.h"
#include "cuda_common.cuh"
#include "pictures.h"

namespace gradcam {
namespace cuda {
namespace {

__global__ void colormapKernel(const float* __restrict__ maps, const uint8_t* __restrict__ lut, int64_t total,
                               uint8_t* __restrict__ out) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    const uint8_t* rgb = lut + 3 * toUint8Index(maps[i]);
    out[3 * i] = rgb[0];
    out[3 * i + 1] = rgb[1];
    out[3 * i + 2] = rgb[2];
  }
}

__global__ void greyKernel(const uint8_t* __restrict__ grey, int64_t total, uint8_t* __restrict__ out) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
    const uint8_t g = grey[i];
    out[3 * i] = g;
    out[3 * i + 1] = g;
    out[3 * i + 2] = g;
  }
}

// one block per image: cam = f(wh * f(lut / 255)) + f(wi * img) into `cam`, its max, then bytes
__global__ void overlayKernel(const float* __restrict__ images, const float* __restrict__ maps,
                              const uint8_t* __restrict__ lut, int64_t hw, float wh, float wi, int channels,
                              float* __restrict__ cam, uint8_t* __restrict__ out) {
  __shared__ float red[kThreads];
  const float* im = images + blockIdx.x * hw * 3;
  const float* m = maps + blockIdx.x * hw;
  float* cm = cam + blockIdx.x * hw * 3;
  uint8_t* o8 = out + blockIdx.x * hw * channels;
  float mx = -__int_as_float(0x7f800000);
  for (int64_t p = threadIdx.x; p < hw; p += blockDim.x) {
    const uint8_t* rgb = lut + 3 * toUint8Index(m[p]);
    for (int c = 0; c < 3; c++) {
      const float h = wh * ((float)rgb[c] / 255.0f);
      const float v = h + wi * im[3 * p + c];
      cm[3 * p + c] = v;
      if (v > mx) mx = v;
    }
  }
  red[threadIdx.x] = mx;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s && red[threadIdx.x + s] > red[threadIdx.x]) red[threadIdx.x] = red[threadIdx.x + s];
    __syncthreads();
  }
  mx = red[0];
  for (int64_t p = threadIdx.x; p < hw; p += blockDim.x) {
    for (int c = 0; c < 3; c++) o8[p * channels + c] = scaledByte(cm[3 * p + c], mx);
    if (channels == 4) o8[p * 4 + 3] = 255;
  }
}

}  // namespace

void applyColormap(const float* maps, size_t n, size_t H, size_t W, Colormap colormap, uint8_t* out) {
  requireDevice();
  const size_t total = n * H * W;
  DeviceBuffer<float> dm(maps, total);
  DeviceBuffer<uint8_t> dl(kColormapLut[(int)colormap], 768), dout(total * 3);
  colormapKernel<<<blocksFor((int64_t)total), kThreads>>>(dm.get(), dl.get(), (int64_t)total, dout.get());
  checkLaunch();
  dout.download(out);
}

void showCamOnImage(const float* images, const float* maps, size_t n, size_t H, size_t W, const OverlayOptions& o,
                    uint8_t* out) {
  requireDevice();
  const size_t hw = H * W;
  DeviceBuffer<float> di(images, n * hw * 3), dm(maps, n * hw), cam(n * hw * 3);
  DeviceBuffer<uint8_t> dl(kColormapLut[(int)o.colormap], 768), dout(n * hw * o.channels);
  const float wh = (float)(1.0 - o.imageWeight), wi = (float)o.imageWeight;
  const size_t maxGrid = 65535;  // batches beyond the grid limit go in slices
  for (size_t b = 0; b < n; b += maxGrid) {
    const size_t count = n - b < maxGrid ? n - b : maxGrid;
    overlayKernel<<<(unsigned)count, kThreads>>>(di.get() + b * hw * 3, dm.get() + b * hw, dl.get(), (int64_t)hw, wh,
                                                 wi, (int)o.channels, cam.get() + b * hw * 3,
                                                 dout.get() + b * hw * o.channels);
    checkLaunch();
  }
  dout.download(out);
}

void greyToRgb(const uint8_t* grey, size_t n, size_t H, size_t W, uint8_t* out) {
  requireDevice();
  const size_t total = n * H * W;
  DeviceBuffer<uint8_t> dg(grey, total), dout(total * 3);
  greyKernel<<<blocksFor((int64_t)total), kThreads>>>(dg.get(), (int64_t)total, dout.get());
  checkLaunch();
  dout.download(out);
}

}  // namespace cuda
}  // namespace gradcam
