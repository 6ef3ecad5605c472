import * as tf from '@tensorflow/tfjs-core';
import { isSoftwareAdapterName, packageVersion } from './backend-sysinfo';

/**
 * WebGPU in Node through Dawn (npm `webgpu`) and @tensorflow/tfjs-backend-webgpu. Both are optional
 * packages, loaded at run time only; nothing here touches them at import.
 */

export const WEBGPU_PKG = 'webgpu';
export const TFJS_WEBGPU_PKG = '@tensorflow/tfjs-backend-webgpu';
export const WEBGPU_INSTALL = `npm install ${WEBGPU_PKG} ${TFJS_WEBGPU_PKG}@4.22.0`;

interface AdapterInfo { vendor?: string; architecture?: string; device?: string; description?: string; isFallbackAdapter?: boolean }
interface Adapter {
  info?: AdapterInfo;
  isFallbackAdapter?: boolean;
  features: { has(f: string): boolean };
  limits: Record<string, number>;
  requestDevice(desc?: unknown): Promise<unknown>;
}
interface Gpu { requestAdapter(opts?: { powerPreference?: string; forceFallbackAdapter?: boolean }): Promise<Adapter | null> }
interface DawnModule { create(flags: string[]): Gpu; globals: Record<string, unknown> }

export type DawnLoad = { ok: true; dawn: DawnModule; version: string } | { ok: false; installed: boolean; error: string };

let dawnLoad: Promise<DawnLoad> | undefined;

/** Loads the `webgpu` package (ESM-only, so import() rather than require). */
export function loadDawn(): Promise<DawnLoad> {
  dawnLoad ??= (async (): Promise<DawnLoad> => {
    const version = packageVersion(WEBGPU_PKG);
    if (!version) return { ok: false, installed: false, error: `${WEBGPU_PKG} is not installed` };
    try {
      const spec = WEBGPU_PKG; // a variable keeps bundlers and tsc from resolving it at build time
      const mod = (await import(spec)) as Partial<DawnModule> & { default?: Partial<DawnModule> };
      const dawn = (mod.create ? mod : mod.default) as DawnModule | undefined;
      if (!dawn?.create) return { ok: false, installed: true, error: `${WEBGPU_PKG} ${version} does not export create()` };
      return { ok: true, dawn, version };
    } catch (e) {
      return { ok: false, installed: true, error: (e as Error).message.split('\n')[0] };
    }
  })();
  return dawnLoad;
}

export interface AdapterReport {
  /** "llvmpipe: Mesa 25.0.7 (LLVM 15.0.6)", else "vendor device". */
  label: string;
  software: boolean;
  /** Short name of the software rasteriser ("llvmpipe", "SwiftShader") when software. */
  softwareName?: string;
  info: AdapterInfo;
}

export function describeAdapter(a: Adapter): AdapterReport {
  const info = a.info ?? {};
  const software = Boolean(info.isFallbackAdapter ?? a.isFallbackAdapter) ||
    isSoftwareAdapterName(info.architecture, info.device, info.description, info.vendor);
  const label = info.description?.replace(/\s+0\.0\.1$/, '') || [info.vendor, info.device || info.architecture].filter(Boolean).join(' ') || 'unnamed adapter';
  const named = /llvmpipe|lavapipe|swiftshader|softpipe/i.exec(`${info.description} ${info.device}`)?.[0];
  return { label, software, softwareName: software ? named ?? 'a CPU rasteriser' : undefined, info: { ...info } };
}

/**
 * Asks Dawn for the high-performance adapter in a throwaway instance: references to a Dawn GPU
 * object keep Node from exiting, so none outlive the probe.
 */
export async function probeAdapter(dawn: DawnModule): Promise<AdapterReport | null> {
  const gpu = dawn.create([]);
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  return adapter ? describeAdapter(adapter) : null;
}

type Globals = typeof globalThis & { navigator?: { gpu?: unknown } };

let active: { adapter: AdapterReport } | undefined;

/**
 * Makes 'webgpu' the tfjs backend on Dawn's high-performance adapter. Refuses a software adapter
 * unless allowed (tests). Returns the adapter used.
 */
export async function activateWebGpu(allowSoftwareAdapter: boolean): Promise<AdapterReport> {
  if (active && tf.engine().registry['webgpu']) {
    if (active.adapter.software && !allowSoftwareAdapter) throw new Error(`only a software adapter (${active.adapter.label})`);
    if (!(await tf.setBackend('webgpu'))) throw new Error('tf.setBackend("webgpu") failed');
    return active.adapter;
  }
  const load = await loadDawn();
  if (!load.ok) throw new Error(load.error);
  const g = globalThis as Globals;
  // tfjs-backend-webgpu reads the WebGPU constants (GPUBufferUsage, …) as globals.
  for (const [k, v] of Object.entries(load.dawn.globals)) if (!(k in g)) (g as unknown as Record<string, unknown>)[k] = v;
  const gpu = load.dawn.create([]);
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new Error('Dawn found no WebGPU adapter');
  const report = describeAdapter(adapter);
  if (report.software && !allowSoftwareAdapter) throw new Error(`only a software adapter (${report.label})`);

  // The package registers its own factory only when navigator.gpu exists at import time.
  if (g.navigator == null) Object.defineProperty(g, 'navigator', { value: {}, configurable: true, writable: true });
  Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true, writable: true });
  const spec = TFJS_WEBGPU_PKG;
  const mod = require(spec) as { WebGPUBackend: new (device: unknown, info?: unknown) => tf.KernelBackend };

  // Our own factory, so tfjs uses exactly the adapter checked above.
  if (tf.engine().registryFactory['webgpu']) tf.removeBackend('webgpu');
  tf.registerBackend('webgpu', async () => {
    const limits = adapter.limits;
    const device = await adapter.requestDevice({
      requiredFeatures: adapter.features.has('timestamp-query') ? ['timestamp-query'] : [],
      requiredLimits: Object.fromEntries([
        'maxComputeWorkgroupStorageSize', 'maxComputeWorkgroupsPerDimension', 'maxStorageBufferBindingSize',
        'maxBufferSize', 'maxComputeWorkgroupSizeX', 'maxComputeInvocationsPerWorkgroup',
      ].map((k) => [k, limits[k]])),
    });
    return new mod.WebGPUBackend(device, adapter.info);
  }, 3);
  if (!(await tf.setBackend('webgpu'))) {
    releaseWebGpu();
    throw new Error('the WebGPU device failed to start (see the warnings above)');
  }
  active = { adapter: report };
  return report;
}

/**
 * Drops the WebGPU backend and Dawn instance so Node can exit (Dawn keeps the event loop alive
 * while its GPU object is reachable). Switch to another backend first if tensors are still needed.
 */
export function releaseWebGpu(): void {
  if (tf.engine().registryFactory['webgpu']) tf.removeBackend('webgpu');
  const nav = (globalThis as Globals).navigator;
  if (nav && 'gpu' in nav) Reflect.deleteProperty(nav, 'gpu');
  active = undefined;
}
