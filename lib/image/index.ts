/**
 * Pictures in and out: preprocessing (sharp), colormaps, show_cam_on_image overlays, deprocess_image,
 * PNG encoding, .npy files and the HTML report. Independent of any model format.
 */
export { COLORMAPS, applyColormap, colormapLut, toUint8Index } from './colormap';
export type { ColormapName } from './colormap';
export { showCamOnImage, rgbToRgba, resolveImageWeight } from './overlay';
export type { OverlayOptions } from './overlay';
export { deprocessImage, numpyMeanStdF32, numpySumF32 } from './deprocess';
export { decodeImage, toInputBatch, preprocessImages, batchImageToRgb, checkPreprocessSpec } from './preprocess';
export type { PreprocessSpec, DecodedImage } from './preprocess';
export { parseNpy, readNpy, encodeNpy, encodeNpyHeader, writeNpy, writeNpyChunks, NpyAppender } from './npy';
export type { NpyArray } from './npy';
export { DEFAULT_PNG_COMPRESSION, encodePng, encodePngs, rgbFloatToBytes, renderHeatmap, renderOverlay, renderOverlays, renderGuided } from './png';
export type { PixelFormat, PngOptions, RenderedPicture } from './png';
export { renderReport } from './report';
export type { ReportImage, ReportPanel, ReportMeta } from './report';
