export { gradCam, gradCamTarget, gradCamOverlayPng, gradCamOverlayRgb, patchPng, patchRgb, type GradCamOptions, type GradCamTarget } from './gradcam';
export { slideMap, renderSlideRgb, SLIDE_COLOURS, SLIDE_LAYERS, type SlideTile, type SlideLayer, type SlideMapOptions, type SlideMap, type SlideRaster, type TileRect } from './slidemap';
export { VIRIDIS } from './colormap';
