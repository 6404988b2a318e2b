// Argument checks of the addon, in one place: the same checks, in the same order and with the
// same messages as lib/kernels/validate.ts (message shape of lib/errors.ts), because the addon
// can be called directly:  Expected ${expected} for ${name} but received ${describe(value)}
// TypeError for a value of the wrong kind, RangeError for the right kind out of range.
#pragma once
#include <napi.h>

#include <cmath>
#include <initializer_list>
#include <string>
#include <vector>

#include "pictures.h"
#include "shape.h"

namespace gradcam {

/** Largest element count of one array (as MAX_ELEMENTS in validate.ts). */
constexpr double kMaxElements = 2147483647.0;

/** String(value), as JavaScript writes it. */
inline std::string jsString(Napi::Value v) {
  Napi::Env env = v.Env();
  return env.Global().Get("String").As<Napi::Function>().Call({v}).As<Napi::String>().Utf8Value();
}

inline std::string constructorName(Napi::Object o) {
  Napi::Value ctor = o.Get("constructor");
  if (ctor.IsNull() || ctor.IsUndefined()) return "Object";
  Napi::Value name = ctor.As<Napi::Object>().Get("name");
  if (name.IsNull() || name.IsUndefined()) return "Object";
  return jsString(name);
}

inline const char* typeOf(Napi::Value v) {
  switch (v.Type()) {
    case napi_undefined: return "undefined";
    case napi_null: return "object";
    case napi_boolean: return "boolean";
    case napi_number: return "number";
    case napi_string: return "string";
    case napi_symbol: return "symbol";
    case napi_function: return "function";
    case napi_bigint: return "bigint";
    default: return "object";
  }
}

/** describe() of lib/errors.ts. */
inline std::string describe(Napi::Value v) {
  if (v.IsNull()) return "null";
  if (v.IsUndefined()) return "undefined";
  if (v.IsTypedArray() || v.IsDataView()) {
    Napi::Object o = v.As<Napi::Object>();
    std::string name = jsString(o.Get("constructor").As<Napi::Object>().Get("name"));
    Napi::Value len = o.Get("length");
    return len.IsUndefined() ? name : name + "(" + jsString(len) + ")";
  }
  if (v.IsArray()) {
    // short arrays of numbers or booleans are shown by value: [1,2,3]
    Napi::Array arr = v.As<Napi::Array>();
    const uint32_t length = arr.Length();
    bool shortList = length <= 8;
    for (uint32_t i = 0; shortList && i < length; i++) {
      Napi::Value e = arr.Get(i);
      shortList = e.IsNumber() || e.IsBoolean();
    }
    if (!shortList) return "array of length " + std::to_string(length);
    std::string out = "[";
    for (uint32_t i = 0; i < length; i++) out += (i ? "," : "") + jsString(arr.Get(i));
    return out + "]";
  }
  if (v.IsString()) {
    std::u16string s = v.As<Napi::String>().Utf16Value();
    if (s.size() > 60) s = s.substr(0, 57) + u"...";
    return "'" + Napi::String::New(v.Env(), s).Utf8Value() + "' of type string";
  }
  if (v.Type() == napi_object) return "object " + constructorName(v.As<Napi::Object>());
  return jsString(v) + " of type " + typeOf(v);
}

inline std::string expectedMessage(const std::string& name, const std::string& expected, Napi::Value v) {
  return "Expected " + expected + " for " + name + " but received " + describe(v);
}

// The error macros: TypeError for the wrong kind of value, RangeError for a value out of range.
#define GRADCAM_THROW_TYPE(name, expected, value) \
  throw Napi::TypeError::New((value).Env(), ::gradcam::expectedMessage((name), (expected), (value)))
#define GRADCAM_THROW_RANGE(name, expected, value) \
  throw Napi::RangeError::New((value).Env(), ::gradcam::expectedMessage((name), (expected), (value)))

/** A positive integer: not a number -> TypeError; NaN, 0, negative, fractional -> RangeError. */
/** Returned as a double: every size goes through checkCount before it becomes a size_t. */
inline double checkPositiveInteger(const std::string& name, Napi::Value v) {
  if (!v.IsNumber()) GRADCAM_THROW_TYPE(name, "positive integer", v);
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || std::floor(d) != d || d <= 0) GRADCAM_THROW_RANGE(name, "positive integer", v);
  return d;
}

inline Napi::Float32Array checkFloat32Array(const std::string& name, Napi::Value v, size_t length) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    GRADCAM_THROW_TYPE(name, "Float32Array", v);
  Napi::Float32Array a = v.As<Napi::Float32Array>();
  if (a.ElementLength() != length) GRADCAM_THROW_RANGE(name, "Float32Array of length " + std::to_string(length), v);
  return a;
}

/** An output array `o` (the value `out`) must share no memory with the input `in`. */
inline void checkNotOverlapping(Napi::Value out, Napi::Float32Array o, const std::string& inName, Napi::Float32Array in) {
  const char* po = reinterpret_cast<const char*>(o.Data());
  const char* pi = reinterpret_cast<const char*>(in.Data());
  if (po < pi + in.ByteLength() && pi < po + o.ByteLength())
    GRADCAM_THROW_RANGE("out", "Float32Array not overlapping " + inName, out);
}

/**
 * A failed allocation of `bytes` for the array `name`: a RangeError with code 'ALLOCATION_FAILED'
 * (the error of lib/errors.ts allocationFailed), never a V8 fatal error.
 */
inline Napi::Error allocationError(Napi::Env env, const std::string& name, size_t bytes, const std::string& reason) {
  Napi::Error e = Napi::RangeError::New(
      env, "gradcam-node: could not allocate " + std::to_string(bytes) + " bytes for " + name + ": " + reason);
  e.Set("code", Napi::String::New(env, "ALLOCATION_FAILED"));
  return e;
}

inline std::string checkOneOf(const std::string& name, Napi::Value v, std::initializer_list<const char*> allowed) {
  std::string list;
  for (const char* a : allowed) list += std::string(list.empty() ? "" : ", ") + "'" + a + "'";
  if (!v.IsString()) GRADCAM_THROW_TYPE(name, "one of " + list, v);
  std::string s = v.As<Napi::String>().Utf8Value();
  for (const char* a : allowed)
    if (s == a) return s;
  GRADCAM_THROW_RANGE(name, "one of " + list, v);
}

inline bool checkBoolean(const std::string& name, Napi::Value v) {
  if (!v.IsBoolean()) GRADCAM_THROW_TYPE(name, "boolean", v);
  return v.As<Napi::Boolean>().Value();
}

/** undefined -> fallback; else a boolean. */
inline bool checkOptionalBoolean(const std::string& name, Napi::Value v, bool fallback) {
  return v.IsUndefined() ? fallback : checkBoolean(name, v);
}

/** A plain object: not null, not an array, not a typed array or DataView. */
inline Napi::Object checkObject(const std::string& name, Napi::Value v) {
  if (v.Type() != napi_object || v.IsArray() || v.IsTypedArray() || v.IsDataView())
    GRADCAM_THROW_TYPE(name, "object", v);
  return v.As<Napi::Object>();
}

/** The product of sizes (in float64, as in JavaScript) must not exceed kMaxElements. */
inline size_t checkCount(Napi::Env env, const std::string& name, std::initializer_list<double> sizes) {
  double count = 1;
  for (double s : sizes) count *= s;
  if (count > kMaxElements) {
    Napi::Value c = Napi::Number::New(env, count);
    GRADCAM_THROW_RANGE(name, "at most 2147483647 elements", c);
  }
  return (size_t)count;
}

/** A non-empty JS array (of per-round Float32Arrays, checked later with checkRoundArrays). */
inline Napi::Array checkRoundArray(const std::string& name, Napi::Value v) {
  if (!v.IsArray()) GRADCAM_THROW_TYPE(name, "array of Float32Array", v);
  Napi::Array a = v.As<Napi::Array>();
  if (a.Length() == 0) GRADCAM_THROW_RANGE(name, "non-empty array of Float32Array", v);
  return a;
}

/** An array with one entry per round. */
inline void checkRoundCount(const std::string& name, Napi::Array v, size_t rounds) {
  if (v.Length() != rounds)
    GRADCAM_THROW_RANGE(name, "array of length " + std::to_string(rounds) + " (one per round)", v);
}

/** A finite number >= 0 (eps). */
inline double checkNonNegativeFinite(const std::string& name, Napi::Value v) {
  if (!v.IsNumber()) GRADCAM_THROW_TYPE(name, "finite number >= 0", v);
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || d < 0) GRADCAM_THROW_RANGE(name, "finite number >= 0", v);
  return d;
}

inline Layout checkLayout(const std::string& name, Napi::Value v) {
  return checkOneOf(name, v, {"nchw", "nhwc"}) == "nchw" ? Layout::NCHW : Layout::NHWC;
}

/** shape: n, k, h, w positive integers, a known layout, n*k*h*w elements at most 2^31 - 1. */
inline FeatureShape checkFeatureShape(Napi::Value v, const std::string& arrayName, const std::string& name = "shape") {
  Napi::Object o = checkObject(name, v);
  const double n = checkPositiveInteger(name + ".n", o.Get("n"));
  const double k = checkPositiveInteger(name + ".k", o.Get("k"));
  const double h = checkPositiveInteger(name + ".h", o.Get("h"));
  const double w = checkPositiveInteger(name + ".w", o.Get("w"));
  const Layout layout = checkLayout(name + ".layout", o.Get("layout"));
  checkCount(v.Env(), arrayName, {n, k, h, w});
  return FeatureShape{(size_t)n, (size_t)k, (size_t)h, (size_t)w, layout};
}

inline Napi::Uint8Array checkUint8Array(const std::string& name, Napi::Value v, size_t length) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    GRADCAM_THROW_TYPE(name, "Uint8Array", v);
  Napi::Uint8Array a = v.As<Napi::Uint8Array>();
  if (a.ElementLength() != length) GRADCAM_THROW_RANGE(name, "Uint8Array of length " + std::to_string(length), v);
  return a;
}

inline Colormap checkColormap(const std::string& name, Napi::Value v) {
  const std::string s = checkOneOf(name, v, {"jet", "turbo", "viridis"});
  return s == "jet" ? Colormap::Jet : s == "turbo" ? Colormap::Turbo : Colormap::Viridis;
}

/** n, H, W of a picture batch; the largest array [n,H,W,channels] named `arrayName`. */
inline void checkPictureSize(Napi::Env env, Napi::Value n, Napi::Value H, Napi::Value W, const char* arrayName,
                             double channels, size_t& dn, size_t& dH, size_t& dW) {
  const double a = checkPositiveInteger("n", n);
  const double b = checkPositiveInteger("H", H);
  const double c = checkPositiveInteger("W", W);
  checkCount(env, arrayName, {a, b, c, channels});
  dn = (size_t)a;
  dH = (size_t)b;
  dW = (size_t)c;
}

/** options?: { colormap?, imageWeight?, channels? } of showCamOnImage (defaults jet, 0.5, 3). */
inline OverlayOptions checkOverlayOptions(const std::string& name, Napi::Value v) {
  OverlayOptions o{Colormap::Jet, 0.5, 3};
  if (v.IsUndefined()) return o;
  Napi::Object obj = checkObject(name, v);
  Napi::Value cm = obj.Get("colormap");
  if (!cm.IsUndefined()) o.colormap = checkColormap(name + ".colormap", cm);
  Napi::Value w = obj.Get("imageWeight");
  if (!w.IsUndefined()) {
    if (!w.IsNumber()) GRADCAM_THROW_TYPE(name + ".imageWeight", "number between 0 and 1", w);
    o.imageWeight = w.As<Napi::Number>().DoubleValue();
    if (!(o.imageWeight >= 0 && o.imageWeight <= 1)) GRADCAM_THROW_RANGE(name + ".imageWeight", "number between 0 and 1", w);
  }
  Napi::Value ch = obj.Get("channels");
  if (!ch.IsUndefined()) {
    if (!ch.IsNumber()) GRADCAM_THROW_TYPE(name + ".channels", "3 or 4", ch);
    const double c = ch.As<Napi::Number>().DoubleValue();
    if (c != 3 && c != 4) GRADCAM_THROW_RANGE(name + ".channels", "3 or 4", ch);
    o.channels = (unsigned)c;
  }
  return o;
}

}  // namespace gradcam
