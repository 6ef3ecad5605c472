export { buildCache, FAILURE_HINT, type BuildCacheOptions, type CacheInfo } from './build';
export { openCache, readCacheManifest, epochOrder, MEMORY_LIMIT, type CacheReader, type CacheBatch, type BatchOptions, type OpenCacheOptions } from './reader';
export { CACHE_FILE, CACHE_VERSION, splitHash, describeCacheFailure, type CacheManifest, type CacheFailure, type EdgeSkip, type SplitCacheMeta } from './format';
export { PATCH_BYTES, type EdgeMode } from './pixels';
