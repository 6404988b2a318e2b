/**
 * ONNX protobuf I/O with protobufjs: the schema of onnx.proto (IR version 10) as text, parsed once.
 * Models decode to plain objects (int64 as number, bytes as Uint8Array) and encode back without
 * losing fields that the schema knows. Helpers read tensors in either `raw_data` or typed fields.
 */
import * as fs from 'fs';
import * as protobuf from 'protobufjs';
import { GradcamError, invalidType } from '../errors';

const ONNX_PROTO = `
syntax = "proto2";
package onnx;
message AttributeProto {
  optional string name = 1; optional string ref_attr_name = 21; optional string doc_string = 13;
  optional int32 type = 20; optional float f = 2; optional int64 i = 3; optional bytes s = 4;
  optional TensorProto t = 5; optional GraphProto g = 6; optional SparseTensorProto sparse_tensor = 22;
  optional TypeProto tp = 14; repeated float floats = 7; repeated int64 ints = 8; repeated bytes strings = 9;
  repeated TensorProto tensors = 10; repeated GraphProto graphs = 11;
  repeated SparseTensorProto sparse_tensors = 23; repeated TypeProto type_protos = 15;
}
message ValueInfoProto {
  optional string name = 1; optional TypeProto type = 2; optional string doc_string = 3;
  repeated StringStringEntryProto metadata_props = 4;
}
message NodeProto {
  repeated string input = 1; repeated string output = 2; optional string name = 3; optional string op_type = 4;
  optional string domain = 7; optional string overload = 8; repeated AttributeProto attribute = 5;
  optional string doc_string = 6; repeated StringStringEntryProto metadata_props = 9;
}
message TrainingInfoProto {
  optional GraphProto initialization = 1; optional GraphProto algorithm = 2;
  repeated StringStringEntryProto initialization_binding = 3; repeated StringStringEntryProto update_binding = 4;
}
message ModelProto {
  optional int64 ir_version = 1; repeated OperatorSetIdProto opset_import = 8; optional string producer_name = 2;
  optional string producer_version = 3; optional string domain = 4; optional int64 model_version = 5;
  optional string doc_string = 6; optional GraphProto graph = 7; repeated StringStringEntryProto metadata_props = 14;
  repeated TrainingInfoProto training_info = 20; repeated FunctionProto functions = 25;
}
message StringStringEntryProto { optional string key = 1; optional string value = 2; }
message TensorAnnotation { optional string tensor_name = 1; repeated StringStringEntryProto quant_parameter_tensor_names = 2; }
message GraphProto {
  repeated NodeProto node = 1; optional string name = 2; repeated TensorProto initializer = 5;
  repeated SparseTensorProto sparse_initializer = 15; optional string doc_string = 10;
  repeated ValueInfoProto input = 11; repeated ValueInfoProto output = 12; repeated ValueInfoProto value_info = 13;
  repeated TensorAnnotation quantization_annotation = 14; repeated StringStringEntryProto metadata_props = 16;
}
message TensorProto {
  repeated int64 dims = 1; optional int32 data_type = 2;
  message Segment { optional int64 begin = 1; optional int64 end = 2; }
  optional Segment segment = 3;
  repeated float float_data = 4 [packed = true]; repeated int32 int32_data = 5 [packed = true];
  repeated bytes string_data = 6; repeated int64 int64_data = 7 [packed = true];
  optional string name = 8; optional string doc_string = 12; optional bytes raw_data = 9;
  repeated StringStringEntryProto external_data = 13; optional int32 data_location = 14;
  repeated double double_data = 10 [packed = true]; repeated uint64 uint64_data = 11 [packed = true];
  repeated StringStringEntryProto metadata_props = 16;
}
message SparseTensorProto { optional TensorProto values = 1; optional TensorProto indices = 2; repeated int64 dims = 3; }
message TensorShapeProto {
  message Dimension { oneof value { int64 dim_value = 1; string dim_param = 2; } optional string denotation = 3; }
  repeated Dimension dim = 1;
}
message TypeProto {
  message Tensor { optional int32 elem_type = 1; optional TensorShapeProto shape = 2; }
  message Sequence { optional TypeProto elem_type = 1; }
  message Map { optional int32 key_type = 1; optional TypeProto value_type = 2; }
  message Optional { optional TypeProto elem_type = 1; }
  message SparseTensor { optional int32 elem_type = 1; optional TensorShapeProto shape = 2; }
  oneof value {
    Tensor tensor_type = 1; Sequence sequence_type = 4; Map map_type = 5;
    Optional optional_type = 9; SparseTensor sparse_tensor_type = 8;
  }
  optional string denotation = 6;
}
message OperatorSetIdProto { optional string domain = 1; optional int64 version = 2; }
message FunctionProto {
  optional string name = 1; repeated string input = 4; repeated string output = 5; repeated string attribute = 6;
  repeated AttributeProto attribute_proto = 11; repeated NodeProto node = 7; optional string doc_string = 8;
  repeated OperatorSetIdProto opset_import = 9; optional string domain = 10; optional string overload = 13;
  repeated ValueInfoProto value_info = 12; repeated StringStringEntryProto metadata_props = 14;
}
`;

/** ONNX TensorProto.DataType values used here. */
export const DataType = {
  FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7, BOOL: 9, FLOAT16: 10, DOUBLE: 11,
} as const;

/** AttributeProto.AttributeType values. */
export const AttrType = {
  FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, GRAPH: 5, FLOATS: 6, INTS: 7, STRINGS: 8,
} as const;

// ---- plain-object views of the messages (fields absent when unset) ----
export interface TensorProto {
  name?: string;
  dims?: number[];
  dataType?: number;
  rawData?: Uint8Array;
  floatData?: number[];
  int32Data?: number[];
  int64Data?: number[];
  doubleData?: number[];
  dataLocation?: number;
  externalData?: Array<{ key?: string; value?: string }>;
  [extra: string]: unknown;
}
export interface AttributeProto {
  name?: string;
  type?: number;
  f?: number;
  i?: number;
  s?: Uint8Array;
  t?: TensorProto;
  g?: GraphProto;
  floats?: number[];
  ints?: number[];
  strings?: Uint8Array[];
  [extra: string]: unknown;
}
export interface NodeProto {
  name?: string;
  opType?: string;
  domain?: string;
  input?: string[];
  output?: string[];
  attribute?: AttributeProto[];
  [extra: string]: unknown;
}
export interface DimProto { dimValue?: number; dimParam?: string; value?: string }
export interface ValueInfoProto {
  name?: string;
  type?: { tensorType?: { elemType?: number; shape?: { dim?: DimProto[] } } };
  [extra: string]: unknown;
}
export interface GraphProto {
  name?: string;
  node?: NodeProto[];
  initializer?: TensorProto[];
  input?: ValueInfoProto[];
  output?: ValueInfoProto[];
  valueInfo?: ValueInfoProto[];
  [extra: string]: unknown;
}
export interface ModelProto {
  irVersion?: number;
  opsetImport?: Array<{ domain?: string; version?: number }>;
  producerName?: string;
  graph?: GraphProto;
  [extra: string]: unknown;
}

let root: protobuf.Root | undefined;
function modelType(): protobuf.Type {
  root ??= protobuf.parse(ONNX_PROTO, { keepCase: false }).root;
  return root.lookupType('onnx.ModelProto');
}

/** Decode an ONNX model from bytes or a file path. */
export function loadModel(source: string | Uint8Array): ModelProto {
  let bytes: Uint8Array;
  if (typeof source === 'string') {
    try {
      bytes = fs.readFileSync(source);
    } catch (e) {
      throw new GradcamError(`Cannot read ONNX model ${source}: ${(e as Error).message}`, 'ENOENT');
    }
  } else if (source instanceof Uint8Array) {
    bytes = source;
  } else {
    throw invalidType('model', 'ONNX file path or Uint8Array', source);
  }
  const T = modelType();
  let msg: protobuf.Message;
  try {
    msg = T.decode(bytes);
  } catch (e) {
    const what = typeof source === 'string' ? `${source} is not an ONNX model (truncated or corrupt)` : 'Not an ONNX model';
    throw new GradcamError(`${what}: ${(e as Error).message}`, 'EBADMODEL');
  }
  const obj = T.toObject(msg, { longs: Number, enums: Number, bytes: Uint8Array as unknown as typeof String, defaults: false, arrays: false, oneofs: false }) as ModelProto;
  if (!obj.graph || !obj.graph.node) {
    throw new GradcamError(`${typeof source === 'string' ? `${source} is not an ONNX model` : 'Not an ONNX model'}: it has no graph`, 'EBADMODEL');
  }
  return obj;
}

/** Encode a (possibly edited) model back to bytes. */
export function saveModel(model: ModelProto): Uint8Array {
  const T = modelType();
  return T.encode(T.fromObject(model)).finish();
}

/** The opset version of the default ('' or 'ai.onnx') domain. */
export function opsetVersion(model: ModelProto): number {
  const e = (model.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx');
  return e?.version ?? 0;
}

function rawView(t: TensorProto): DataView | undefined {
  const r = t.rawData;
  if (!r || r.length === 0) return undefined;
  return new DataView(r.buffer, r.byteOffset, r.byteLength);
}

function elementCount(t: TensorProto): number {
  return (t.dims ?? []).reduce((a, b) => a * b, 1);
}

/** A float tensor (FLOAT, DOUBLE, FLOAT16 read as float32) as Float32Array. */
export function tensorToFloat32(t: TensorProto): Float32Array {
  if (t.dataLocation === 1) throw new GradcamError(`Tensor ${t.name}: external data is not supported; save the model with all tensors inside`, 'EEXTERNAL');
  const n = elementCount(t);
  const v = rawView(t);
  const dt = t.dataType ?? DataType.FLOAT;
  const out = new Float32Array(n);
  if (v) {
    if (dt === DataType.FLOAT) for (let i = 0; i < n; i++) out[i] = v.getFloat32(4 * i, true);
    else if (dt === DataType.DOUBLE) for (let i = 0; i < n; i++) out[i] = v.getFloat64(8 * i, true);
    else if (dt === DataType.FLOAT16) for (let i = 0; i < n; i++) out[i] = halfToFloat(v.getUint16(2 * i, true));
    else return Float32Array.from(tensorToNumbers(t));
    return out;
  }
  if (dt === DataType.FLOAT && t.floatData) out.set(t.floatData);
  else if (dt === DataType.DOUBLE && t.doubleData) out.set(t.doubleData);
  else if (dt === DataType.FLOAT16 && t.int32Data) t.int32Data.forEach((h, i) => { out[i] = halfToFloat(h); });
  else return Float32Array.from(tensorToNumbers(t));
  return out;
}

/** Any numeric tensor as plain numbers (int64 beyond 2^53 saturates, as in Slice's INT64_MAX ends). */
export function tensorToNumbers(t: TensorProto): number[] {
  const n = elementCount(t);
  const v = rawView(t);
  const dt = t.dataType ?? DataType.FLOAT;
  const out: number[] = new Array(n);
  if (v) {
    for (let i = 0; i < n; i++) {
      switch (dt) {
        case DataType.FLOAT: out[i] = v.getFloat32(4 * i, true); break;
        case DataType.DOUBLE: out[i] = v.getFloat64(8 * i, true); break;
        case DataType.INT64: out[i] = Number(v.getBigInt64(8 * i, true)); break;
        case DataType.INT32: out[i] = v.getInt32(4 * i, true); break;
        case DataType.INT8: out[i] = v.getInt8(i); break;
        case DataType.UINT8: case DataType.BOOL: out[i] = v.getUint8(i); break;
        case DataType.FLOAT16: out[i] = halfToFloat(v.getUint16(2 * i, true)); break;
        default: throw new GradcamError(`Tensor ${t.name}: data type ${dt} is not supported`, 'EDTYPE');
      }
    }
    return out;
  }
  const src = t.floatData ?? t.int64Data ?? t.int32Data ?? t.doubleData ?? [];
  if (src.length !== n) {
    if (n === 0 || src.length === 0) return [];
    throw new GradcamError(`Tensor ${t.name}: holds ${src.length} values for shape [${t.dims}]`, 'EBADMODEL');
  }
  return src.map(Number);
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

// ---- builders ----

export function floatTensor(name: string, dims: number[], data: ArrayLike<number>): TensorProto {
  const f = Float32Array.from(data);
  return { name, dims, dataType: DataType.FLOAT, rawData: new Uint8Array(f.buffer, f.byteOffset, f.byteLength) };
}

export function int64Tensor(name: string, dims: number[], data: ArrayLike<number>): TensorProto {
  const b = new BigInt64Array(data.length);
  // Saturate like protobufjs's Long.fromNumber: 2**63 (what Number(INT64_MAX) rounds to) must not wrap to INT64_MIN.
  const max = 2n ** 63n - 1n, min = -(2n ** 63n);
  for (let i = 0; i < data.length; i++) {
    const v = BigInt(Math.trunc(data[i]));
    b[i] = v > max ? max : v < min ? min : v;
  }
  return { name, dims, dataType: DataType.INT64, rawData: new Uint8Array(b.buffer) };
}

export type AttrValue = number | string | number[] | TensorProto | { floats: number[] } | { float: number };

/** Build an attribute; integers become INT/INTS, use {float}/{floats} for float attributes. */
export function attr(name: string, value: AttrValue): AttributeProto {
  if (typeof value === 'number') return { name, type: AttrType.INT, i: value };
  if (typeof value === 'string') return { name, type: AttrType.STRING, s: new TextEncoder().encode(value) };
  if (Array.isArray(value)) return { name, type: AttrType.INTS, ints: value };
  if ('floats' in value) return { name, type: AttrType.FLOATS, floats: value.floats as number[] };
  if ('float' in value) return { name, type: AttrType.FLOAT, f: value.float as number };
  return { name, type: AttrType.TENSOR, t: value as TensorProto };
}

export function node(opType: string, inputs: string[], outputs: string[], name: string, attrs: Record<string, AttrValue> = {}): NodeProto {
  return {
    opType, input: inputs, output: outputs, name,
    attribute: Object.entries(attrs).map(([k, v]) => attr(k, v)),
  };
}

/** Read an attribute of a node: ints/floats as arrays, i/f as numbers, s as string, t as tensor. */
export function getAttr(n: NodeProto, name: string): number | number[] | string | TensorProto | undefined {
  const a = (n.attribute ?? []).find((x) => x.name === name);
  if (!a) return undefined;
  switch (a.type) {
    case AttrType.FLOAT: return a.f ?? 0;
    case AttrType.INT: return a.i ?? 0;
    case AttrType.STRING: return new TextDecoder().decode(a.s ?? new Uint8Array());
    case AttrType.TENSOR: return a.t;
    case AttrType.FLOATS: return a.floats ?? [];
    case AttrType.INTS: return a.ints ?? [];
    default:
      if (a.ints) return a.ints;
      if (a.floats) return a.floats;
      if (a.i !== undefined) return a.i;
      if (a.f !== undefined) return a.f;
      return undefined;
  }
}

/** Static shape of a value info ([-1] for symbolic dims), or undefined. */
export function valueInfoShape(v: ValueInfoProto): number[] | undefined {
  const dims = v.type?.tensorType?.shape?.dim;
  if (!dims) return undefined;
  return dims.map((d) => (typeof d.dimValue === 'number' && d.dimValue > 0 ? d.dimValue : -1));
}
