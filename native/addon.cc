// The Node binding: every kernel registered in one list (kKernels, at the bottom), each as a
// synchronous function and as `<name>Async` returning a Promise whose work runs on a libuv
// worker thread. Every function takes the device first ('cpu' | 'cuda'), then the arguments
// of lib/kernels/types.ts. Inputs are read in place (no copies); outputs are fresh
// Float32Arrays allocated on the main thread; both stay referenced until the work is done.
#include <napi.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "check.h"
#include "kernels.h"
#include "pictures.h"

namespace gradcam {
namespace {

enum class Device { Cpu, Cuda };

// Large outputs are fresh, untouched memory: ask Linux for transparent huge pages, so the
// kernels' first writes fault 2 MiB at a time instead of 4 KiB (a large share of the time of
// the memory-bound kernels). Only advice: ignored where unsupported.
void adviseHugePages(void* data, size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  const uintptr_t huge = uintptr_t(2) << 20;
  if (bytes < 2 * huge) return;
  const uintptr_t b = ((uintptr_t)data + huge - 1) & ~(huge - 1);
  const uintptr_t e = ((uintptr_t)data + bytes) & ~(huge - 1);
  if (e > b) madvise((void*)b, e - b, MADV_HUGEPAGE);
#else
  (void)data;
  (void)bytes;
#endif
}

// A fresh (zeroed) output array; large ones advised to use huge pages (see above).
// (Uninitialized external buffers were tried: V8 frees them only after a later GC and a
// finalizer tick, so memory balloons in a synchronous loop and every call faults in fresh pages.)
Napi::Float32Array newOutput(Napi::Env env, size_t length) {
  Napi::Float32Array a = Napi::Float32Array::New(env, length);
  adviseHugePages(a.Data(), length * sizeof(float));
  return a;
}

// One kernel call, parsed and checked on the main thread, run anywhere.
struct Job {
  std::vector<Napi::ObjectReference> keep;  // inputs and outputs
  std::vector<std::pair<std::string, size_t>> fields;  // named outputs -> keep index
  std::vector<std::pair<std::string, double>> numbers;  // named numbers of the result
  size_t single = SIZE_MAX;                  // or the one output
  std::function<void()> run;

  const float* input(Napi::Float32Array a) {
    keep.push_back(Napi::Persistent(a.As<Napi::Object>()));
    return a.Data();  // ArrayBuffer data + byte offset
  }
  float* output(Napi::Env env, size_t length, const char* field = nullptr) {
    Napi::Float32Array a = newOutput(env, length);
    keep.push_back(Napi::Persistent(a.As<Napi::Object>()));
    if (field)
      fields.emplace_back(field, keep.size() - 1);
    else
      single = keep.size() - 1;
    return a.Data();
  }
  // the caller's own output array, written in place and returned
  float* given(Napi::Value v) {
    Napi::Float32Array a = v.As<Napi::Float32Array>();
    keep.push_back(Napi::Persistent(a.As<Napi::Object>()));
    single = keep.size() - 1;
    return a.Data();
  }
  Napi::Value result(Napi::Env env) {
    if (fields.empty()) return keep[single].Value();
    Napi::Object o = Napi::Object::New(env);
    for (auto& f : numbers) o.Set(f.first, f.second);
    for (auto& f : fields) o.Set(f.first, keep[f.second].Value());
    return o;
  }
};

using Parser = std::unique_ptr<Job> (*)(const Napi::CallbackInfo&, Device);

#define GRADCAM_DISPATCH(dev, fn, ...) \
  ((dev) == Device::Cuda ? ::gradcam::cuda::fn(__VA_ARGS__) : ::gradcam::cpu::fn(__VA_ARGS__))

// info[0] is the device; the kernel's own arguments follow.
Device parseDevice(const Napi::CallbackInfo& info) {
  return checkOneOf("device", info[0], {"cpu", "cuda"}) == "cuda" ? Device::Cuda : Device::Cpu;
}

ElementwiseOp checkElementwiseOp(const std::string& name, Napi::Value v) {
  const std::string op = checkOneOf(name, v, {"grad-times-act", "relu-grad-times-act", "relu-of-grad-times-act"});
  return op == "grad-times-act"        ? ElementwiseOp::GradTimesAct
         : op == "relu-grad-times-act" ? ElementwiseOp::ReluGradTimesAct
                                       : ElementwiseOp::ReluOfGradTimesAct;
}

std::unique_ptr<Job> parseChannelMean(const Napi::CallbackInfo& info, Device dev) {
  auto job = std::make_unique<Job>();
  const FeatureShape s = checkFeatureShape(info[2], "x");
  const float* x = job->input(checkFloat32Array("x", info[1], s.count()));
  float* out = job->output(info.Env(), s.n * s.k);
  job->run = [=] { GRADCAM_DISPATCH(dev, channelMean, x, s, out); };
  return job;
}

std::unique_ptr<Job> parseChannelSums(const Napi::CallbackInfo& info, Device dev) {
  auto job = std::make_unique<Job>();
  Napi::Env env = info.Env();
  const FeatureShape s = checkFeatureShape(info[3], "g");
  const float* g = job->input(checkFloat32Array("g", info[1], s.count()));
  const float* a = job->input(checkFloat32Array("a", info[2], s.count()));
  const size_t nk = s.n * s.k;
  float* sg = job->output(env, nk, "g");
  float* sg2 = job->output(env, nk, "g2");
  float* sg3 = job->output(env, nk, "g3");
  float* sa = job->output(env, nk, "a");
  float* sga = job->output(env, nk, "ga");
  job->run = [=] { GRADCAM_DISPATCH(dev, channelSums, g, a, s, sg, sg2, sg3, sa, sga); };
  return job;
}

std::unique_ptr<Job> parseWeightedChannelSum(const Napi::CallbackInfo& info, Device dev) {
  auto job = std::make_unique<Job>();
  const FeatureShape s = checkFeatureShape(info[3], "a");
  const float* weights = job->input(checkFloat32Array("weights", info[1], s.n * s.k));
  const float* a = job->input(checkFloat32Array("a", info[2], s.count()));
  const bool relu = checkBoolean("relu", info[4]);
  float* out = job->output(info.Env(), s.n * s.hw());
  job->run = [=] { GRADCAM_DISPATCH(dev, weightedChannelSum, weights, a, s, relu, out); };
  return job;
}

std::unique_ptr<Job> parseElementwiseChannelSum(const Napi::CallbackInfo& info, Device dev) {
  auto job = std::make_unique<Job>();
  const FeatureShape s = checkFeatureShape(info[3], "g");
  const float* g = job->input(checkFloat32Array("g", info[1], s.count()));
  const float* a = job->input(checkFloat32Array("a", info[2], s.count()));
  const ElementwiseOp op = checkElementwiseOp("op", info[4]);
  const bool relu = checkBoolean("relu", info[5]);
  float* out = job->output(info.Env(), s.n * s.hw());
  job->run = [=] { GRADCAM_DISPATCH(dev, elementwiseChannelSum, g, a, s, op, relu, out); };
  return job;
}

/** options?: { alignCorners?: boolean } */
bool parseResizeOptions(Napi::Value v, const std::string& name) {
  if (v.IsUndefined()) return false;
  Napi::Object o = checkObject(name, v);
  return checkOptionalBoolean(name + ".alignCorners", o.Get("alignCorners"), false);
}

std::unique_ptr<Job> parseResizeBilinear(const Napi::CallbackInfo& info, Device dev) {
  auto job = std::make_unique<Job>();
  Napi::Env env = info.Env();
  const double dn = checkPositiveInteger("n", info[2]);
  const double dh = checkPositiveInteger("h", info[3]);
  const double dw = checkPositiveInteger("w", info[4]);
  const double dH = checkPositiveInteger("outH", info[5]);
  const double dW = checkPositiveInteger("outW", info[6]);
  const size_t len = checkCount(env, "x", {dn, dh, dw});
  const size_t outLen = checkCount(env, "out", {dn, dH, dW});
  const size_t n = (size_t)dn, h = (size_t)dh, w = (size_t)dw, outH = (size_t)dH, outW = (size_t)dW;
  Napi::Float32Array xa = checkFloat32Array("x", info[1], len);
  const float* x = job->input(xa);
  const bool ac = parseResizeOptions(info[7], "options");
  float* out = checkOptionalOut(info[8], outLen, {{"x", xa}}) ? job->given(info[8]) : job->output(env, outLen);
  job->run = [=] { GRADCAM_DISPATCH(dev, resizeBilinear, x, n, h, w, outH, outW, ac, out); };
  return job;
}

std::unique_ptr<Job> parseMinMaxNormalize(const Napi::CallbackInfo& info, Device dev) {
  auto job = std::make_unique<Job>();
  Napi::Env env = info.Env();
  const double dn = checkPositiveInteger("n", info[2]);
  const double dsize = checkPositiveInteger("size", info[3]);
  const size_t len = checkCount(env, "x", {dn, dsize});
  const size_t n = (size_t)dn, size = (size_t)dsize;
  const float* x = job->input(checkFloat32Array("x", info[1], len));
  float* out = job->output(env, len);
  job->run = [=] { GRADCAM_DISPATCH(dev, minMaxNormalize, x, n, size, out); };
  return job;
}

std::unique_ptr<Job> parseGuidedProduct(const Napi::CallbackInfo& info, Device dev) {
  auto job = std::make_unique<Job>();
  Napi::Env env = info.Env();
  const double dn = checkPositiveInteger("n", info[3]);
  const double dc = checkPositiveInteger("c", info[4]);
  const double dH = checkPositiveInteger("H", info[5]);
  const double dW = checkPositiveInteger("W", info[6]);
  const Layout layout = checkLayout("layout", info[7]);
  const size_t len = checkCount(env, "guided", {dn, dc, dH, dW});
  const size_t n = (size_t)dn, c = (size_t)dc, H = (size_t)dH, W = (size_t)dW;
  Napi::Float32Array ga = checkFloat32Array("guided", info[1], len);
  Napi::Float32Array ca = checkFloat32Array("cam", info[2], n * H * W);
  const float* guided = job->input(ga);
  const float* cam = job->input(ca);
  float* out = checkOptionalOut(info[8], len, {{"guided", ga}, {"cam", ca}}) ? job->given(info[8]) : job->output(env, len);
  job->run = [=] { GRADCAM_DISPATCH(dev, guidedProduct, guided, cam, n, c, H, W, layout, out); };
  return job;
}

std::unique_ptr<Job> parseGradcamTail(const Napi::CallbackInfo& info, Device dev) {
  auto job = std::make_unique<Job>();
  Napi::Env env = info.Env();
  const FeatureShape s = checkFeatureShape(info[3], "a");
  Napi::Object o = checkObject("options", info[4]);
  const double dH = checkPositiveInteger("options.outH", o.Get("outH"));
  const double dW = checkPositiveInteger("options.outW", o.Get("outW"));
  const size_t mapLen = checkCount(env, "map", {(double)s.n, dH, dW});
  const float* a = job->input(checkFloat32Array("a", info[1], s.count()));
  const float* g = job->input(checkFloat32Array("g", info[2], s.count()));
  TailOptions opt;
  opt.outH = (size_t)dH;
  opt.outW = (size_t)dW;
  opt.relu = checkOptionalBoolean("options.relu", o.Get("relu"), true);
  opt.alignCorners = checkOptionalBoolean("options.alignCorners", o.Get("alignCorners"), false);
  TailOutputs out;
  out.weights = job->output(env, s.n * s.k, "weights");
  out.lowresRaw = job->output(env, s.n * s.hw(), "lowresRaw");
  out.lowres = job->output(env, s.n * s.hw(), "lowres");
  out.map = job->output(env, mapLen, "map");
  job->run = [=] { GRADCAM_DISPATCH(dev, gradcamTail, a, g, s, opt, out); };
  return job;
}

// The picture kernels: byte outputs (fresh Uint8Arrays), byte inputs read in place.
uint8_t* byteOutput(Job& job, Napi::Env env, size_t length) {
  Napi::Uint8Array a = Napi::Uint8Array::New(env, length);
  adviseHugePages(a.Data(), length);
  job.keep.push_back(Napi::Persistent(a.As<Napi::Object>()));
  job.single = job.keep.size() - 1;
  return a.Data();
}

const uint8_t* byteInput(Job& job, Napi::Uint8Array a) {
  job.keep.push_back(Napi::Persistent(a.As<Napi::Object>()));
  return a.Data();
}

std::unique_ptr<Job> parseApplyColormap(const Napi::CallbackInfo& info, Device dev) {
  auto job = std::make_unique<Job>();
  size_t n, H, W;
  checkPictureSize(info.Env(), info[2], info[3], info[4], "out", 3, n, H, W);
  const float* maps = job->input(checkFloat32Array("maps", info[1], n * H * W));
  const Colormap cm = checkColormap("colormap", info[5]);
  uint8_t* out = byteOutput(*job, info.Env(), n * H * W * 3);
  job->run = [=] { GRADCAM_DISPATCH(dev, applyColormap, maps, n, H, W, cm, out); };
  return job;
}

std::unique_ptr<Job> parseShowCamOnImage(const Napi::CallbackInfo& info, Device dev) {
  auto job = std::make_unique<Job>();
  size_t n, H, W;
  checkPictureSize(info.Env(), info[3], info[4], info[5], "out", 4, n, H, W);
  Napi::Float32Array ia = checkFloat32Array("images", info[1], n * H * W * 3);
  const float* images = job->input(ia);
  const float* maps = job->input(checkFloat32Array("maps", info[2], n * H * W));
  const OverlayOptions o = checkOverlayOptions("options", info[6]);
  // show_cam_on_image raises on an image above 1 (NaN passes, as np.max(img) > 1 does)
  for (size_t i = 0, len = n * H * W * 3; i < len; i++)
    if (images[i] > 1.0f) GRADCAM_THROW_RANGE("images", "float RGB values in [0, 1]", ia);
  uint8_t* out = byteOutput(*job, info.Env(), n * H * W * o.channels);
  job->run = [=] { GRADCAM_DISPATCH(dev, showCamOnImage, images, maps, n, H, W, o, out); };
  return job;
}

std::unique_ptr<Job> parseDeprocessImage(const Napi::CallbackInfo& info, Device dev) {
  auto job = std::make_unique<Job>();
  Napi::Env env = info.Env();
  const double dn = checkPositiveInteger("n", info[2]);
  const double dc = checkPositiveInteger("c", info[3]);
  const double dH = checkPositiveInteger("H", info[4]);
  const double dW = checkPositiveInteger("W", info[5]);
  const Layout layout = checkLayout("layout", info[6]);
  const size_t len = checkCount(env, "data", {dn, dc, dH, dW});
  const size_t n = (size_t)dn, c = (size_t)dc, H = (size_t)dH, W = (size_t)dW;
  const float* data = job->input(checkFloat32Array("data", info[1], len));
  uint8_t* out = byteOutput(*job, env, len);
  job->run = [=] { GRADCAM_DISPATCH(dev, deprocessImage, data, n, c, H, W, layout, out); };
  return job;
}

std::unique_ptr<Job> parseGreyToRgb(const Napi::CallbackInfo& info, Device dev) {
  auto job = std::make_unique<Job>();
  size_t n, H, W;
  checkPictureSize(info.Env(), info[2], info[3], info[4], "out", 3, n, H, W);
  const uint8_t* grey = byteInput(*job, checkUint8Array("grey", info[1], n * H * W));
  uint8_t* out = byteOutput(*job, info.Env(), n * H * W * 3);
  job->run = [=] { GRADCAM_DISPATCH(dev, greyToRgb, grey, n, H, W, out); };
  return job;
}

// camTail(a, grads, shape, combine, options, guide?): the checks in the order of validate.ts.
std::unique_ptr<Job> parseCamTail(const Napi::CallbackInfo& info, Device dev) {
  auto job = std::make_unique<Job>();
  Napi::Env env = info.Env();
  const FeatureShape s = checkFeatureShape(info[3], "a");
  Napi::Object co = checkObject("combine", info[4]);
  const std::string kind = checkOneOf("combine.kind", co.Get("kind"), {"weights", "given-weights", "elementwise", "given-lowres"});
  CamCombine c{CombineKind::Weights, ChannelWeighting::GradMean, 1e-7, ElementwiseOp::GradTimesAct};
  Napi::Array given;
  bool hasGiven = false;
  if (kind == "weights") {
    const std::string wt = checkOneOf("combine.weighting", co.Get("weighting"),
                                      {"grad-mean", "grad-pp", "grad-pp-normalized", "grad-act-ratio"});
    c.weighting = wt == "grad-mean"   ? ChannelWeighting::GradMean
                  : wt == "grad-pp"   ? ChannelWeighting::GradPP
                  : wt == "grad-pp-normalized" ? ChannelWeighting::GradPPNormalized
                                      : ChannelWeighting::GradActRatio;
    Napi::Value eps = co.Get("eps");
    if (!eps.IsUndefined()) c.eps = checkNonNegativeFinite("combine.eps", eps);
  } else if (kind == "elementwise") {
    c.kind = CombineKind::Elementwise;
    c.op = checkElementwiseOp("combine.op", co.Get("op"));
  } else if (kind == "given-weights") {
    c.kind = CombineKind::GivenWeights;
    given = checkRoundArray("combine.weights", co.Get("weights"));
    hasGiven = true;
  } else {
    c.kind = CombineKind::GivenLowres;
    given = checkRoundArray("combine.lowres", co.Get("lowres"));
    hasGiven = true;
  }
  Napi::Object o = checkObject("options", info[5]);
  const double dH = checkPositiveInteger("options.outH", o.Get("outH"));
  const double dW = checkPositiveInteger("options.outW", o.Get("outW"));
  double dc = 0;
  Layout guideLayout = Layout::NCHW;
  Napi::Array inputGrads;
  const bool hasGuide = !info[6].IsUndefined();
  if (hasGuide) {
    Napi::Object gd = checkObject("guide", info[6]);
    dc = checkPositiveInteger("guide.c", gd.Get("c"));
    guideLayout = checkLayout("guide.layout", gd.Get("layout"));
    Napi::Value ig = gd.Get("inputGrads");
    if (!ig.IsArray()) GRADCAM_THROW_TYPE("guide.inputGrads", "array of Float32Array", ig);
    inputGrads = ig.As<Napi::Array>();
  }
  Napi::Array grads;
  if (hasGiven) {
    if (!info[2].IsNull()) GRADCAM_THROW_TYPE("grads", "null (combine.kind '" + kind + "' reads no gradients)", info[2]);
  } else {
    grads = checkRoundArray("grads", info[2]);
  }
  const size_t R = hasGiven ? given.Length() : grads.Length();
  if (hasGuide) checkRoundCount("guide.inputGrads", inputGrads, R);
  const double dR = (double)R, dn = (double)s.n;
  checkCount(env, "lowres", {dR, dn, (double)s.h, (double)s.w});
  const size_t mapLen = checkCount(env, "map", {dR, dn, dH, dW});
  const size_t guidedLen = hasGuide ? checkCount(env, "guided", {dR, dn, dc, dH, dW}) : 0;
  const float* a = job->input(checkFloat32Array("a", info[1], s.count()));
  std::vector<const float*> gradPtrs, givenPtrs, inputPtrs;
  if (!hasGiven)
    for (Napi::Float32Array x : checkRoundArrays("grads", grads, s.count())) gradPtrs.push_back(job->input(x));
  if (c.kind == CombineKind::GivenWeights)
    for (Napi::Float32Array x : checkRoundArrays("combine.weights", given, s.n * s.k)) givenPtrs.push_back(job->input(x));
  if (c.kind == CombineKind::GivenLowres)
    for (Napi::Float32Array x : checkRoundArrays("combine.lowres", given, s.n * s.hw())) givenPtrs.push_back(job->input(x));
  if (hasGuide)
    for (Napi::Float32Array x : checkRoundArrays("guide.inputGrads", inputGrads, guidedLen / R)) inputPtrs.push_back(job->input(x));
  TailOptions opt;
  opt.outH = (size_t)dH;
  opt.outW = (size_t)dW;
  opt.relu = checkOptionalBoolean("options.relu", o.Get("relu"), true);
  opt.alignCorners = checkOptionalBoolean("options.alignCorners", o.Get("alignCorners"), false);
  job->numbers.emplace_back("rounds", dR);
  CamTailOutputs out{nullptr, nullptr, nullptr, nullptr, nullptr};
  if (c.kind == CombineKind::Weights || c.kind == CombineKind::GivenWeights)
    out.weights = job->output(env, R * s.n * s.k, "weights");
  out.lowresRaw = job->output(env, R * s.n * s.hw(), "lowresRaw");
  out.lowres = job->output(env, R * s.n * s.hw(), "lowres");
  out.map = job->output(env, mapLen, "map");
  if (hasGuide) out.guided = job->output(env, guidedLen, "guided");
  const size_t guideC = (size_t)dc;
  job->run = [=] {
    const CamRounds rd{R, gradPtrs.empty() ? nullptr : gradPtrs.data(), givenPtrs.empty() ? nullptr : givenPtrs.data(),
                       inputPtrs.empty() ? nullptr : inputPtrs.data(), guideC, guideLayout};
    GRADCAM_DISPATCH(dev, camTail, a, s, c, rd, opt, out);
  };
  return job;
}

template <Parser P>
Napi::Value callSync(const Napi::CallbackInfo& info) {
  std::unique_ptr<Job> job = P(info, parseDevice(info));
  try {
    job->run();
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), e.what());
  }
  return job->result(info.Env());
}

class KernelWorker : public Napi::AsyncWorker {
 public:
  KernelWorker(Napi::Env env, std::unique_ptr<Job> job)
      : Napi::AsyncWorker(env, "gradcam:kernel"), job_(std::move(job)), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise promise() const { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      job_->run();
    } catch (const std::exception& e) {
      SetError(e.what());
    } catch (...) {
      SetError("unknown native error");
    }
  }
  void OnOK() override { deferred_.Resolve(job_->result(Env())); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  std::unique_ptr<Job> job_;
  Napi::Promise::Deferred deferred_;
};

// Argument errors reject the Promise, as an async function would.
template <Parser P>
Napi::Value callAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::unique_ptr<Job> job;
  try {
    job = P(info, parseDevice(info));
  } catch (const Napi::Error& e) {
    Napi::Promise::Deferred d = Napi::Promise::Deferred::New(env);
    d.Reject(e.Value());
    return d.Promise();
  }
  auto* worker = new KernelWorker(env, std::move(job));
  Napi::Promise p = worker->promise();
  worker->Queue();  // deletes itself when done
  return p;
}

Napi::Value cudaInfo(const Napi::CallbackInfo& info) {
  const cuda::Info& ci = cuda::info();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("available", ci.available);
  o.Set("reason", ci.reason);
  if (!ci.deviceName.empty()) o.Set("deviceName", ci.deviceName);
  o.Set("compiled", cuda::compiled());
  return o;
}

Napi::Value cpuThreads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), cpu::threadCount()); }

struct Entry {
  const char* name;
  Napi::Value (*sync)(const Napi::CallbackInfo&);
  Napi::Value (*async)(const Napi::CallbackInfo&);
};

// THE list of kernels (the names of lib/kernels/types.ts); each also exported as `<name>Async`.
#define GRADCAM_KERNEL(name, parser) Entry{#name, callSync<parser>, callAsync<parser>}
const Entry kKernels[] = {
    GRADCAM_KERNEL(channelMean, parseChannelMean),
    GRADCAM_KERNEL(channelSums, parseChannelSums),
    GRADCAM_KERNEL(weightedChannelSum, parseWeightedChannelSum),
    GRADCAM_KERNEL(elementwiseChannelSum, parseElementwiseChannelSum),
    GRADCAM_KERNEL(resizeBilinear, parseResizeBilinear),
    GRADCAM_KERNEL(minMaxNormalize, parseMinMaxNormalize),
    GRADCAM_KERNEL(guidedProduct, parseGuidedProduct),
    GRADCAM_KERNEL(gradcamTail, parseGradcamTail),
    GRADCAM_KERNEL(applyColormap, parseApplyColormap),
    GRADCAM_KERNEL(showCamOnImage, parseShowCamOnImage),
    GRADCAM_KERNEL(deprocessImage, parseDeprocessImage),
    GRADCAM_KERNEL(greyToRgb, parseGreyToRgb),
    GRADCAM_KERNEL(camTail, parseCamTail),
};

Napi::Object init(Napi::Env env, Napi::Object exports) {
  for (const Entry& e : kKernels) {
    exports.Set(e.name, Napi::Function::New(env, e.sync, e.name));
    const std::string asyncName = std::string(e.name) + "Async";
    exports.Set(asyncName, Napi::Function::New(env, e.async, asyncName));
  }
  exports.Set("cudaInfo", Napi::Function::New(env, cudaInfo, "cudaInfo"));
  exports.Set("cpuThreads", Napi::Function::New(env, cpuThreads, "cpuThreads"));
  return exports;
}

}  // namespace
}  // namespace gradcam

static Napi::Object Init(Napi::Env env, Napi::Object exports) { return gradcam::init(env, exports); }

NODE_API_MODULE(gradcam_native, Init)
