import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
// Named imports, not bare ones: the packages declare sideEffects, so bundlers drop bare imports.
import { version_cpu } from '@tensorflow/tfjs-backend-cpu';
import { version_wasm } from '@tensorflow/tfjs-backend-wasm';
import type { BackendName } from '../config';
import { IdcError } from '../errors';
import { registerCpuBatchNormKernels } from './fused-bn';
import { initWasmBackend } from './wasm-kernels';
import {
  CUDA11_LIBS, checkLibrary, libraryIndex, nvidiaInfo, packageVersion, vulkanInfo, type LibCheck,
} from './backend-sysinfo';
import { WEBGPU_INSTALL, TFJS_WEBGPU_PKG, activateWebGpu, loadDawn, probeAdapter } from './backend-webgpu';
import { defaultPython, probeTorch } from './torch-engine';

export { releaseWebGpu } from './backend-webgpu';

/**
 * Picks the tfjs backend that trains fastest on this machine and says, in plain words, why the
 * faster ones were skipped. Optional native/GPU packages are loaded at run time only.
 */

/** The TF.js backends; 'torch' trains in a Python process and is chosen only by name (initBackend). */
export type ConcreteBackend = Exclude<BackendName, 'auto' | 'torch'>;

/** Fastest first: the order 'auto' tries. */
export const BACKEND_LADDER: readonly ConcreteBackend[] = ['tensorflow-gpu', 'webgpu', 'tensorflow', 'wasm', 'cpu'];

export interface BackendProbe {
  name: ConcreteBackend;
  /** Usable for training as found (a software WebGPU adapter counts as not available). */
  available: boolean;
  /** What was found: adapter, versions, library paths. */
  detail?: string;
  /** Why it cannot be used, when unavailable. */
  reason?: string;
  /** The next step that would make it available (a command, a package, a check). */
  fix?: string;
  /** webgpu only: an adapter exists but it is a CPU rasteriser (llvmpipe, SwiftShader). */
  softwareAdapter?: boolean;
  /** webgpu only: the adapter Dawn offered, e.g. "llvmpipe: Mesa 25.0.7 (LLVM 15.0.6)". */
  adapter?: string;
}

export interface InitOptions {
  /** Lets an explicit 'webgpu' run on a software adapter (correctness tests); never used by 'auto'. */
  allowSoftwareAdapter?: boolean;
  /** Folder holding the tfjs-backend-wasm*.wasm files. */
  wasmDir?: string;
  /** torch only: the interpreter (engine.python); default python3 on PATH. */
  python?: string;
  /** Test seam: replaces the real probing / backend activation. */
  hooks?: Partial<BackendHooks>;
}

export interface BackendHooks {
  probe(name: ConcreteBackend, opts: InitOptions): Promise<BackendProbe>;
  /** Makes the backend current in tfjs; throws when it fails to start. */
  activate(name: ConcreteBackend, opts: InitOptions): Promise<void>;
}

export interface InitResult {
  name: ConcreteBackend | 'torch';
  /** The probes made, ladder order ('auto' stops probing at the first backend that starts). */
  probes: BackendProbe[];
  summary: string;
}

const DESCRIPTION: Record<ConcreteBackend, string> = {
  'tensorflow-gpu': 'TensorFlow on an NVIDIA GPU',
  webgpu: 'WebGPU',
  tensorflow: 'TensorFlow C library on the CPU',
  wasm: 'WebAssembly + IDC training kernels',
  cpu: 'plain JavaScript, the slowest',
};

const TFJS_NODE = '@tensorflow/tfjs-node';
const TFJS_NODE_GPU = '@tensorflow/tfjs-node-gpu';
const CUDA_NEEDS = 'needs CUDA 11.2 + cuDNN 8.1';

// ---------------------------------------------------------------- tfjs-node (native TensorFlow)

/** Which tfjs-node package provides the 'tensorflow' backend in this process (both register that name). */
let tfNodeLoaded: { pkg: string; version: string; tfVersion?: string; usingGpu: boolean } | undefined;

interface NodeBackend extends tf.KernelBackend { isUsingGpuDevice?: boolean; binding?: { TF_Version?: string } }

/** Requires a tfjs-node package without letting it change the current backend (it calls setBackend on load). */
async function loadTfNode(pkg: string): Promise<NonNullable<typeof tfNodeLoaded>> {
  if (tfNodeLoaded) {
    if (tfNodeLoaded.pkg !== pkg) throw new Error(`${tfNodeLoaded.pkg} is already loaded in this process`);
    return tfNodeLoaded;
  }
  const before = tf.engine().backendName as string | null;
  require(pkg); // runtime require: external to the bundle, absent on most machines
  const backend = tf.findBackend('tensorflow') as NodeBackend | null;
  if (!backend) throw new Error(`${pkg} loaded but registered no 'tensorflow' backend`);
  tfNodeLoaded = {
    pkg, version: packageVersion(pkg) ?? '?', tfVersion: backend.binding?.TF_Version, usingGpu: backend.isUsingGpuDevice === true,
  };
  if (before && before !== tf.getBackend()) await tf.setBackend(before);
  return tfNodeLoaded;
}

function firstLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split('\n')[0];
}

function missingCudaSummary(checks: LibCheck[]): string {
  const missing = checks.filter((c) => !c.found);
  const others = missing.flatMap((c) => c.others);
  const names = missing.map((c) => c.soname);
  const shown = names.length > 3 ? `${names.slice(0, 3).join(', ')} and ${names.length - 3} more` : names.join(', ');
  return `CUDA 11 libraries not found: ${shown}` + (others.length ? ` (found other versions: ${others.slice(0, 2).join(', ')})` : '');
}

async function probeTensorflowGpu(): Promise<BackendProbe> {
  const name = 'tensorflow-gpu' as const;
  const version = packageVersion(TFJS_NODE_GPU);
  if (!version) {
    return { name, available: false, reason: `${TFJS_NODE_GPU} is not installed`, fix: `npm i ${TFJS_NODE_GPU}; ${CUDA_NEEDS}` };
  }
  if (process.platform === 'darwin') return { name, available: false, reason: `${TFJS_NODE_GPU} has no GPU support on macOS`, fix: 'use webgpu instead' };
  if (process.platform === 'linux') {
    const nv = nvidiaInfo();
    if (!nv.driverLib && nv.devices.length === 0) {
      return { name, available: false, reason: 'no NVIDIA GPU visible (no /dev/nvidia0, no libcuda.so.1)', fix: 'install the NVIDIA driver; in a container, pass the GPU through, e.g. docker run --gpus all' };
    }
    if (!nv.driverLib) {
      return { name, available: false, reason: 'the NVIDIA driver library libcuda.so.1 is not found', fix: 'install the NVIDIA driver; check with: ldconfig -p | grep libcuda' };
    }
    const checks = CUDA11_LIBS.map((l) => checkLibrary(l));
    if (checks.some((c) => !c.found)) {
      return {
        name, available: false, reason: missingCudaSummary(checks),
        fix: 'install CUDA 11.2 + cuDNN 8.1 and add their lib folders to LD_LIBRARY_PATH; check with: ldconfig -p | grep -E "libcudart|libcudnn"',
      };
    }
  }
  try {
    const t = await loadTfNode(TFJS_NODE_GPU);
    const detail = `${TFJS_NODE_GPU} ${t.version}, TensorFlow ${t.tfVersion ?? '?'}`;
    if (!t.usingGpu) {
      return { name, available: false, detail, reason: 'TensorFlow started but found no usable GPU (it would run on the CPU)', fix: 'run nvidia-smi to check the driver; TensorFlow logs the libraries it failed to open above' };
    }
    return { name, available: true, detail: `${detail} on ${nvidiaInfo().gpus[0] ?? 'an NVIDIA GPU'}` };
  } catch (e) {
    return { name, available: false, reason: `${TFJS_NODE_GPU} ${version} failed to load: ${firstLine(e)}`, fix: `reinstall it: npm i ${TFJS_NODE_GPU}; ${CUDA_NEEDS}` };
  }
}

/** Package behind the CPU 'tensorflow' backend: tfjs-node, else tfjs-node-gpu (which runs on the CPU without CUDA). */
function cpuTfNodePackage(): string {
  if (tfNodeLoaded) return tfNodeLoaded.pkg;
  return packageVersion(TFJS_NODE) || !packageVersion(TFJS_NODE_GPU) ? TFJS_NODE : TFJS_NODE_GPU;
}

async function probeTensorflow(): Promise<BackendProbe> {
  const name = 'tensorflow' as const;
  const pkg = cpuTfNodePackage();
  const version = packageVersion(pkg);
  if (!version) {
    return { name, available: false, reason: `${TFJS_NODE} is not installed`, fix: `npm i ${TFJS_NODE}; its install step downloads the TensorFlow C library` };
  }
  try {
    const t = await loadTfNode(pkg);
    return { name, available: true, detail: `${pkg} ${t.version}${pkg === TFJS_NODE_GPU ? ' on the CPU' : ''}, TensorFlow ${t.tfVersion ?? '?'}` };
  } catch (e) {
    return { name, available: false, reason: `${pkg} ${version} failed to load: ${firstLine(e)}`, fix: `reinstall it: npm rebuild ${pkg}; its install step must be able to download libtensorflow` };
  }
}

// ---------------------------------------------------------------- webgpu

async function probeWebGpu(opts: InitOptions = {}): Promise<BackendProbe> {
  const name = 'webgpu' as const;
  // On Linux a GPU shows up as a device node; without one Dawn could only offer a software
  // adapter, and loading it prints native warnings. Tests that want lavapipe opt in.
  if (process.platform === 'linux' && !opts.allowSoftwareAdapter && vulkanInfo().renderNodes.length === 0 && nvidiaInfo().devices.length === 0) {
    return { name, available: false, reason: 'no GPU device is visible here (no /dev/dri render node, no /dev/nvidia*)', fix: gpuDriverFix() };
  }
  const load = await loadDawn();
  if (!load.ok) {
    return load.installed
      ? { name, available: false, reason: `the webgpu package failed to load: ${load.error}`, fix: `reinstall it: ${WEBGPU_INSTALL}` }
      : { name, available: false, reason: 'the webgpu package (Dawn) is not installed', fix: WEBGPU_INSTALL };
  }
  const tfjsVersion = packageVersion(TFJS_WEBGPU_PKG);
  if (!tfjsVersion) return { name, available: false, reason: `${TFJS_WEBGPU_PKG} is not installed`, fix: WEBGPU_INSTALL };
  let adapter;
  try {
    adapter = await probeAdapter(load.dawn);
  } catch (e) {
    return { name, available: false, reason: `Dawn failed while looking for an adapter: ${firstLine(e)}` };
  }
  if (!adapter) return { name, available: false, ...noAdapterReason() };
  const detail = `${adapter.label}; Dawn ${load.version}, tfjs-backend-webgpu ${tfjsVersion}`;
  if (adapter.software) {
    return {
      name, available: false, softwareAdapter: true, adapter: adapter.label, detail,
      reason: `only a software adapter (${adapter.softwareName}), which runs on the CPU slower than wasm`,
      fix: gpuDriverFix(),
    };
  }
  return { name, available: true, adapter: adapter.label, detail };
}

function gpuDriverFix(): string {
  if (process.platform !== 'linux') return 'update the GPU driver';
  return "install your GPU's Vulkan driver and make sure the GPU is visible here: /dev/dri or /dev/nvidia0; in a container, pass the device through";
}

function noAdapterReason(): Pick<BackendProbe, 'reason' | 'fix'> {
  if (process.platform !== 'linux') return { reason: 'Dawn found no WebGPU adapter', fix: 'update the GPU driver (WebGPU needs D3D12 on Windows, Metal on macOS)' };
  const vk = vulkanInfo();
  if (!vk.loader) return { reason: 'the Vulkan loader libvulkan.so.1 is missing', fix: 'install it, Debian/Ubuntu: apt-get install libvulkan1, plus a Vulkan driver' };
  if (vk.drivers.length === 0) return { reason: 'no Vulkan driver is installed: no ICD files in /usr/share/vulkan/icd.d', fix: gpuDriverFix() };
  return { reason: `no Vulkan driver accepted this machine's devices; installed drivers: ${vk.drivers.join(', ')}`, fix: gpuDriverFix() };
}

// ---------------------------------------------------------------- wasm, cpu

function wasmDirs(wasmDir?: string): string[] {
  if (wasmDir) return [wasmDir];
  const dirs = [__dirname];
  try {
    dirs.push(path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist'));
  } catch { /* bundled without node_modules */ }
  return dirs;
}

async function probeWasm(opts: InitOptions): Promise<BackendProbe> {
  const name = 'wasm' as const;
  if (typeof WebAssembly === 'undefined') return { name, available: false, reason: 'this runtime has no WebAssembly' };
  if (!tf.engine().registryFactory['wasm']) return { name, available: false, reason: '@tensorflow/tfjs-backend-wasm is not loaded', fix: 'reinstall the extension' };
  const file = 'tfjs-backend-wasm-simd.wasm';
  const dirs = wasmDirs(opts.wasmDir);
  const dir = dirs.find((d) => fs.existsSync(path.join(d, file)));
  if (!dir) return { name, available: false, reason: `${file} is not in ${dirs.join(', ')}`, fix: 'reinstall the extension, or set the wasm folder to one holding the tfjs .wasm files' };
  return { name, available: true, detail: `tfjs-backend-wasm ${version_wasm}, SIMD, one thread per replica (training spreads replicas over engine.threads)` };
}

// ---------------------------------------------------------------- hooks

const realHooks: BackendHooks = {
  probe(name, opts) {
    switch (name) {
      case 'tensorflow-gpu': return probeTensorflowGpu();
      case 'webgpu': return probeWebGpu(opts);
      case 'tensorflow': return probeTensorflow();
      case 'wasm': return probeWasm(opts);
      case 'cpu': return Promise.resolve({ name, available: true, detail: `tfjs-backend-cpu ${version_cpu}` });
    }
  },
  async activate(name, opts) {
    switch (name) {
      case 'tensorflow-gpu':
      case 'tensorflow':
        await loadTfNode(name === 'tensorflow' ? cpuTfNodePackage() : TFJS_NODE_GPU);
        if (!(await tf.setBackend('tensorflow'))) throw new Error('tf.setBackend("tensorflow") failed');
        return;
      case 'webgpu':
        await activateWebGpu(opts.allowSoftwareAdapter === true);
        return;
      case 'wasm':
        await initWasmBackend(opts.wasmDir);
        return;
      case 'cpu':
        registerCpuBatchNormKernels();
        if (!(await tf.setBackend('cpu'))) throw new Error('tf.setBackend("cpu") failed');
        return;
    }
  },
};

/** Probes one backend without making it current (tfjs-node packages do get loaded). */
export function probeBackend(name: ConcreteBackend, opts: InitOptions = {}): Promise<BackendProbe> {
  return (opts.hooks?.probe ?? realHooks.probe)(name, opts);
}

/** Probes every backend, fastest first. Loads the optional packages that are installed. */
export async function probeBackends(opts: InitOptions = {}): Promise<BackendProbe[]> {
  const probe = opts.hooks?.probe ?? realHooks.probe;
  const out: BackendProbe[] = [];
  for (const name of BACKEND_LADDER) out.push(await probe(name, opts));
  return out;
}

// ---------------------------------------------------------------- the ladder

/** "webgpu — only a software adapter (llvmpipe) (install your GPU's Vulkan driver …)" */
export function describeSkip(p: BackendProbe): string {
  return `${p.name} — ${p.reason ?? 'not available'}${p.fix ? ` (${p.fix})` : ''}`;
}

function usingLine(p: BackendProbe, how: string): string {
  const detail = p.detail ? `, ${p.detail}` : '';
  return `Using ${p.name} (${DESCRIPTION[p.name]}${detail})${how}.`;
}

/**
 * Makes the preferred backend current. 'auto' takes the first in BACKEND_LADDER that is available
 * and starts (a hardware adapter only, for webgpu); an explicit choice that cannot be used throws an
 * IdcError saying why and what to do.
 */
export async function initBackend(pref: BackendName, opts: InitOptions = {}): Promise<InitResult> {
  const hooks: BackendHooks = { ...realHooks, ...opts.hooks };
  if (pref === 'torch') return initTorch(opts, hooks);
  if (pref !== 'auto') return initExplicit(pref, opts, hooks);

  const probes: BackendProbe[] = [];
  for (const name of BACKEND_LADDER) {
    const p = await hooks.probe(name, opts);
    probes.push(p);
    if (!p.available) continue;
    try {
      await hooks.activate(name, { ...opts, allowSoftwareAdapter: false });
    } catch (e) {
      Object.assign(p, { available: false, reason: `failed to start: ${firstLine(e)}` });
      continue;
    }
    const skipped = probes.filter((q) => q !== p).map(describeSkip);
    // Not measured faster than wasm on a CPU yet: named, so people know it exists.
    if (name === 'tensorflow' || name === 'wasm' || name === 'cpu') skipped.push(TORCH_OPT_IN);
    const summary = usingLine(p, '') + (skipped.length ? ` Skipped: ${skipped.join('; ')}.` : '');
    return { name, probes, summary };
  }
  // cpu is always available, so only broken installs land here.
  throw new IdcError(`No TensorFlow.js backend could start: ${probes.map(describeSkip).join('; ')}.`, 'Reinstall the extension.', 'BACKEND_UNAVAILABLE');
}

const TORCH_OPT_IN = 'torch — opt-in on CPU, not chosen by auto (set engine.backend to "torch"; needs Python with PyTorch)';

/**
 * torch: training runs in a PyTorch engine process (src/core/train/torch-trainer.ts); TF.js still
 * builds and saves the model and evaluates, on wasm (cpu when wasm cannot start).
 */
async function initTorch(opts: InitOptions, hooks: BackendHooks): Promise<InitResult> {
  const python = opts.python || defaultPython();
  const t = await probeTorch(python);
  if (!t.available || !t.info) {
    throw new IdcError(`The torch backend is not available: ${t.reason ?? 'unknown reason'}.`,
      `To use it: ${t.fix ?? 'install PyTorch'}. Or set engine.backend to "auto" to use the fastest backend that works here.`, 'BACKEND_UNAVAILABLE');
  }
  let side: ConcreteBackend = 'wasm';
  try {
    await hooks.activate('wasm', opts);
  } catch {
    side = 'cpu';
    await hooks.activate('cpu', opts);
  }
  const i = t.info;
  const device = i.gpu ? `${i.device} (${i.gpu})` : i.device;
  const probe: BackendProbe = { name: side, available: true, detail: `PyTorch ${i.torch} on ${device}, Python ${i.pythonVersion} at ${i.python}` };
  return {
    name: 'torch', probes: [probe],
    summary: `Using torch (PyTorch ${i.torch} on ${device}, Python ${i.pythonVersion} at ${i.python}) as configured; TF.js (model files, evaluation, Grad-CAM) runs on ${side}.`,
  };
}

async function initExplicit(name: ConcreteBackend, opts: InitOptions, hooks: BackendHooks): Promise<InitResult> {
  if (!BACKEND_LADDER.includes(name)) {
    throw new IdcError(`Unknown backend "${name}".`, `Set engine.backend to one of: auto, ${BACKEND_LADDER.join(', ')}.`, 'BAD_CONFIG');
  }
  const p = await hooks.probe(name, opts);
  const softwareOk = p.softwareAdapter === true && opts.allowSoftwareAdapter === true;
  if (!p.available && !softwareOk) {
    const hint = p.softwareAdapter
      ? `WebGPU on a software adapter is slower than wasm. To use a GPU: ${p.fix ?? 'install its driver'}. Or set engine.backend to "auto" to use the fastest backend that works here.`
      : `To use it: ${p.fix ?? 'check the installation'}. Or set engine.backend to "auto" to use the fastest backend that works here.`;
    throw new IdcError(`The ${name} backend is not available: ${p.reason ?? 'unknown reason'}.`, hint, 'BACKEND_UNAVAILABLE');
  }
  try {
    await hooks.activate(name, opts);
  } catch (e) {
    throw new IdcError(`The ${name} backend failed to start: ${firstLine(e)}.`,
      `${p.fix ? `Try: ${p.fix}. Or set` : 'Set'} engine.backend to "auto" to use the fastest backend that works here.`, 'BACKEND_UNAVAILABLE');
  }
  const how = softwareOk ? ' as configured, on a software adapter: correct but slow, for tests only' : ' as configured';
  return { name, probes: [p], summary: usingLine(p, how) };
}

// ---------------------------------------------------------------- "Check GPU Setup"

const OK = '✓', NO = '✗';

/**
 * Plain-words report of both GPU paths (WebGPU via Dawn, tfjs-node-gpu via CUDA): what was found,
 * what is missing, and what to do next. Probes without changing the current backend.
 */
export async function gpuSetupReport(opts: InitOptions = {}): Promise<string> {
  const probe = opts.hooks?.probe ?? realHooks.probe;
  const lines: string[] = ['GPU setup check', ''];
  const linux = process.platform === 'linux';

  // WebGPU
  const wg = await probe('webgpu', opts);
  lines.push('WebGPU (Dawn; any GPU with a Vulkan driver on Linux, D3D12 on Windows, Metal on macOS)');
  const dawnV = packageVersion('webgpu'), tfjsWgV = packageVersion(TFJS_WEBGPU_PKG);
  lines.push(dawnV ? `  ${OK} webgpu ${dawnV} installed` : `  ${NO} webgpu (Dawn) is not installed: ${WEBGPU_INSTALL}`);
  lines.push(tfjsWgV ? `  ${OK} ${TFJS_WEBGPU_PKG} ${tfjsWgV} installed` : `  ${NO} ${TFJS_WEBGPU_PKG} is not installed: ${WEBGPU_INSTALL}`);
  if (linux) {
    const vk = vulkanInfo();
    lines.push(vk.loader ? `  ${OK} Vulkan loader: ${vk.loader}` : `  ${NO} Vulkan loader libvulkan.so.1 not found (Debian/Ubuntu: apt-get install libvulkan1)`);
    lines.push(vk.drivers.length ? `  ${OK} Vulkan drivers: ${vk.drivers.join(', ')}` : `  ${NO} no Vulkan driver installed (no ICD files in /usr/share/vulkan/icd.d)`);
    lines.push(vk.renderNodes.length ? `  ${OK} GPU device nodes: ${vk.renderNodes.join(', ')}` : `  ${NO} no /dev/dri render node (no GPU visible to Mesa drivers)`);
  }
  if (wg.available) lines.push(`  ${OK} adapter: ${wg.detail}`);
  else if (wg.softwareAdapter) lines.push(`  ${NO} adapter: ${wg.adapter}, a software rasteriser (runs on the CPU), not a GPU`);
  else if (dawnV && tfjsWgV) lines.push(`  ${NO} adapter: ${wg.reason}`);
  lines.push(wg.available ? '  → WebGPU can train on this GPU.' : `  → Next: ${wg.fix ?? wg.reason}.`, '');

  // tfjs-node-gpu
  lines.push('TensorFlow GPU (@tensorflow/tfjs-node-gpu; NVIDIA GPU, CUDA 11.2, cuDNN 8.1; Linux and Windows)');
  const tgV = packageVersion(TFJS_NODE_GPU);
  lines.push(tgV ? `  ${OK} ${TFJS_NODE_GPU} ${tgV} installed` : `  ${NO} ${TFJS_NODE_GPU} is not installed: npm i ${TFJS_NODE_GPU} (its install step downloads libtensorflow)`);
  const nv = nvidiaInfo();
  if (nv.smiPath) lines.push(nv.gpus.length ? `  ${OK} nvidia-smi: ${nv.gpus.join('; ')}` : `  ${NO} nvidia-smi (${nv.smiPath}) found no GPU or failed; run it to see why`);
  else lines.push(`  ${NO} nvidia-smi not found (the NVIDIA driver is not installed, or not visible in this container)`);
  if (linux) {
    lines.push(nv.devices.length ? `  ${OK} devices: ${nv.devices.join(', ')}` : `  ${NO} no /dev/nvidia0 device`);
    lines.push(nv.driverLib ? `  ${OK} driver library: ${nv.driverLib}` : `  ${NO} driver library libcuda.so.1 not found (check: ldconfig -p | grep libcuda)`);
    const index = libraryIndex();
    for (const c of CUDA11_LIBS.map((l) => checkLibrary(l, index))) {
      if (c.found) lines.push(`  ${OK} ${c.soname}: ${c.found}`);
      else {
        const stem = c.soname.replace(/\.so.*$/, '');
        lines.push(`  ${NO} ${c.soname} not found${c.others.length ? ` (found ${c.others.join(', ')}: wrong version)` : ''} (check: ldconfig -p | grep ${stem})`);
      }
    }
  }
  const tg = tgV ? await probe('tensorflow-gpu', opts) : undefined;
  if (tg?.available) lines.push(`  ${OK} ${tg.detail}`, '  → tfjs-node-gpu can train on this GPU.', '');
  else {
    lines.push(`  → Next: ${tg ? `${tg.reason}; ${tg.fix ?? ''}`.replace(/; $/, '') : `npm i ${TFJS_NODE_GPU}, then install CUDA 11.2 + cuDNN 8.1 (newer CUDA versions do not work with it)`}.`, '');
  }

  // torch engine: a Python process, only used when engine.backend is "torch".
  lines.push('PyTorch (engine.backend "torch": training in a Python process; CUDA, MPS or CPU)');
  const t = await probeTorch(opts.python || defaultPython());
  if (t.available && t.info) {
    lines.push(`  ${OK} Python ${t.info.pythonVersion} at ${t.info.python}, PyTorch ${t.info.torch}, device ${t.info.device}${t.info.gpu ? ` (${t.info.gpu})` : ''}`);
    lines.push(t.info.device === 'cpu' ? '  → torch can train here, on the CPU (opt-in: set engine.backend to "torch").' : '  → torch can train on this GPU: set engine.backend to "torch".', '');
  } else {
    lines.push(`  ${NO} ${t.reason}`, `  → Next: ${t.fix}.`, '');
  }

  // What 'auto' would do, without starting anything.
  const rest = await Promise.all((['tensorflow', 'wasm', 'cpu'] as const).map((n) => probe(n, opts)));
  const all = [tg ?? { name: 'tensorflow-gpu' as const, available: false }, wg, ...rest];
  const pick = all.find((p) => p.available);
  lines.push(`With engine.backend = "auto", training would use: ${pick ? `${pick.name} (${DESCRIPTION[pick.name]})` : 'nothing (reinstall the extension)'}.`);
  return lines.join('\n');
}
