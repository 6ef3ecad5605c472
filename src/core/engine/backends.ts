import * as fs from 'node:fs';
import * as path from 'node:path';
import { availableParallelism } from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
// Named imports, not bare ones: the packages declare sideEffects, so bundlers drop bare imports.
import { version_cpu } from '@tensorflow/tfjs-backend-cpu';
import { version_wasm } from '@tensorflow/tfjs-backend-wasm';
import { defaultConfig, type BackendName, type IdcConfig } from '../config';
import { IdcError } from '../errors';
import { registerCpuBatchNormKernels } from './fused-bn';
import { initWasmBackend } from './wasm-kernels';
import {
  CUDA11_LIBS, checkLibrary, libraryIndex, nvidiaInfo, packageVersion, vulkanInfo, type LibCheck,
} from './backend-sysinfo';
import { WEBGPU_INSTALL, TFJS_WEBGPU_PKG, activateWebGpu, loadDawn, probeAdapter } from './backend-webgpu';
import { SYSTEM_PYTHON, describeSource, probeTorchSetup, resolvePython, type PythonChoice, type TorchSetup } from './torch-probe';
import type { CalibrateOptions, CalibrationResult } from '../train/torch-calibration';
import type { ProgressSink } from '../progress';

export { releaseWebGpu } from './backend-webgpu';

/**
 * Picks the tfjs backend that trains fastest on this machine and says, in plain words, why the
 * faster ones were skipped. Optional native/GPU packages are loaded at run time only.
 */

/** The TF.js backends; 'torch' trains in a Python process and is chosen only by name (initBackend). */
export type ConcreteBackend = Exclude<BackendName, 'auto' | 'torch'>;

/** The TF.js backends, fastest first: the order 'auto' tries them in (and all it tries for scoring). */
export const BACKEND_LADDER: readonly ConcreteBackend[] = ['tensorflow-gpu', 'webgpu', 'tensorflow', 'wasm', 'cpu'];

/** What 'auto' tries for training: torch on a GPU after tfjs-node-gpu, torch on the CPU only where it was timed faster than wasm. */
export type LadderStep = ConcreteBackend | 'torch-gpu' | 'torch-cpu';
export const TRAINING_LADDER: readonly LadderStep[] = ['tensorflow-gpu', 'torch-gpu', 'webgpu', 'tensorflow', 'torch-cpu', 'wasm', 'cpu'];

/** torch on the CPU must beat wasm by this factor: timings on a busy machine wobble by ~10%, and a choice that flips between jobs is worse than either. */
export const TORCH_CPU_MARGIN = 1.2;

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
  /** torch only: the interpreter (engine.python); empty: `editorPython`, else python3 on PATH. */
  python?: string;
  /** The interpreter selected in VS Code's Python extension, sent with the job. */
  editorPython?: string;
  /** 'train' lets 'auto' pick torch (it only trains); 'score' (default) tries the TF.js backends only. */
  purpose?: 'train' | 'score';
  /** Training settings the torch-vs-wasm timing uses (batch size, threads, model); default the schema's defaults. */
  config?: IdcConfig;
  /** Where the timing is kept; default the OS cache folder (calibrationFile()). */
  calibrationFile?: string;
  onProgress?: ProgressSink;
  /** Cancels the torch CPU timing run (the only long part of starting a backend). */
  signal?: AbortSignal;
  /** Test seam: replaces the real probing / backend activation. */
  hooks?: Partial<BackendHooks & TorchHooks>;
}

export interface BackendHooks {
  probe(name: ConcreteBackend, opts: InitOptions): Promise<BackendProbe>;
  /** Makes the backend current in tfjs; throws when it fails to start. */
  activate(name: ConcreteBackend, opts: InitOptions): Promise<void>;
}

export interface TorchHooks {
  /** Which torch and device `python` has (cached per process). */
  probeTorch(python: string): Promise<TorchSetup>;
  /** torch vs wasm on this CPU, cached per machine; wasm is the current tfjs backend when called. */
  calibrate(opts: CalibrateOptions): Promise<CalibrationResult>;
}

export interface InitResult {
  name: ConcreteBackend | 'torch';
  /** The probes made, ladder order ('auto' stops probing at the first backend that starts). */
  probes: BackendProbe[];
  summary: string;
  /** When torch trains: the interpreter, its setup and (on the CPU) the timing that chose it. */
  torch?: { choice: PythonChoice; setup: TorchSetup; calibration?: CalibrationResult; tfjs: ConcreteBackend };
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

function hasNvidiaGpu(): boolean {
  const nv = nvidiaInfo();
  return nv.gpus.length > 0 || nv.devices.length > 0;
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

const realHooks: BackendHooks & TorchHooks = {
  probe(name, opts) {
    switch (name) {
      case 'tensorflow-gpu': return probeTensorflowGpu();
      case 'webgpu': return probeWebGpu(opts);
      case 'tensorflow': return probeTensorflow();
      case 'wasm': return probeWasm(opts);
      case 'cpu': return Promise.resolve({ name, available: true, detail: `tfjs-backend-cpu ${version_cpu}` });
    }
  },
  probeTorch(python) {
    return probeTorchSetup(python, { nvidiaGpu: hasNvidiaGpu });
  },
  async calibrate(o) {
    return (await import('../train/torch-calibration')).calibrateTorchCpu(o);
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
 * and starts (a hardware adapter only, for webgpu), or for training the first in TRAINING_LADDER;
 * an explicit choice that cannot be used throws an IdcError saying why and what to do.
 */
export async function initBackend(pref: BackendName, opts: InitOptions = {}): Promise<InitResult> {
  const hooks: BackendHooks & TorchHooks = { ...realHooks, ...opts.hooks };
  if (pref === 'torch') return initTorch(opts, hooks);
  // A software adapter only on an explicit webgpu: tests of an installed extension opt in by env.
  if (pref === 'webgpu' && process.env.IDC_ALLOW_SOFTWARE_ADAPTER === '1') opts = { ...opts, allowSoftwareAdapter: true };
  if (pref !== 'auto') return initExplicit(pref, opts, hooks);

  const train = opts.purpose === 'train';
  const choice = resolvePython(opts.python, opts.editorPython);
  const probes: BackendProbe[] = [];
  const skipped: string[] = [];
  let torch: TorchSetup | undefined;
  /** wasm, once probed and started for the torch-vs-wasm timing. */
  let wasmReady: BackendProbe | undefined;
  for (const step of train ? TRAINING_LADDER : BACKEND_LADDER) {
    if (step === 'torch-gpu') {
      torch = await probeWithHint(choice, hooks);
      if (torch.available && torch.device !== 'cpu') return torchResult(await startTfjsSide(opts, hooks), { choice, setup: torch }, skipped, '');
      skipped.push(torch.available ? `torch on a GPU — ${torch.gpuReason ?? 'torch sees no GPU'} (${pythonText(torch, choice)}${torch.gpuFix ? `; for the GPU: ${torch.gpuFix}` : ''})` : torchSkip(torch, choice));
      continue;
    }
    if (step === 'torch-cpu') {
      // Said once, at torch-gpu, when this Python cannot run the engine at all.
      if (!torch?.available) continue;
      const wp = await tryStart('wasm', opts, hooks, probes);
      // Without wasm only plain-JS cpu is left on the TF.js side, far slower than any PyTorch.
      if (!wp.available) return torchResult(await startTfjsSide(opts, hooks), { choice, setup: torch }, [...skipped, describeSkip(wp)], ' (wasm cannot start, so nothing was timed against it)');
      wasmReady = wp;
      const cal = await hooks.calibrate({ config: opts.config ?? defaultConfig(), setup: torch, file: opts.calibrationFile, onProgress: opts.onProgress, signal: opts.signal });
      if (torchCpuWins(cal)) {
        return torchResult({ name: 'wasm', probe: wasmReady }, { choice, setup: torch, calibration: cal }, skipped, ` (timed faster than wasm here: ${timingText(cal)})`);
      }
      skipped.push(torchCpuSkip(cal));
      continue;
    }
    const name = step;
    if (name === 'wasm' && wasmReady) {
      return { name, probes, summary: usingLine(wasmReady, '') + (skipped.length ? ` Skipped: ${skipped.join('; ')}.` : '') };
    }
    const p = await tryStart(name, opts, hooks, probes);
    if (!p.available) { skipped.push(describeSkip(p)); continue; }
    const summary = usingLine(p, '') + (skipped.length ? ` Skipped: ${skipped.join('; ')}.` : '');
    return { name, probes, summary };
  }
  // cpu is always available, so only broken installs land here.
  throw new IdcError(`No TensorFlow.js backend could start: ${probes.map(describeSkip).join('; ')}.`, 'Reinstall the extension.', 'BACKEND_UNAVAILABLE');
}

/** Probes `name` (recorded in `probes`) and, when available, makes it current; a start that fails marks the probe unavailable. Hardware adapters only. */
async function tryStart(name: ConcreteBackend, opts: InitOptions, hooks: BackendHooks, probes: BackendProbe[]): Promise<BackendProbe> {
  const p = await hooks.probe(name, opts);
  probes.push(p);
  if (!p.available) return p;
  try {
    await hooks.activate(name, { ...opts, allowSoftwareAdapter: false });
  } catch (e) {
    Object.assign(p, { available: false, reason: `failed to start: ${firstLine(e)}` });
  }
  return p;
}

/** True when the timing says torch on this CPU trains clearly faster than the wasm trainer. */
export function torchCpuWins(c: Pick<CalibrationResult, 'torchImagesPerSecond' | 'wasmImagesPerSecond' | 'error'>): boolean {
  return !c.error && c.torchImagesPerSecond !== undefined && c.wasmImagesPerSecond !== undefined && c.torchImagesPerSecond > TORCH_CPU_MARGIN * c.wasmImagesPerSecond;
}

/** "torch 814 img/s, wasm (2 threads) 414 img/s at batch 64; timed 2026-11-27, kept in …". */
function timingText(c: CalibrationResult): string {
  const when = c.cached ? `timed ${c.measuredAt.slice(0, 10)}, kept in ${c.file}` : `timed now in ${c.seconds.toFixed(0)} s${c.notSaved ? `, not saved: ${c.notSaved}` : `, kept in ${c.file}`}`;
  // Timed while other work held the cores: the ratio may not hold on a quiet machine.
  const cores = Number(c.about['cores']) || availableParallelism();
  const busy = c.load !== undefined && c.load > cores ? `; the machine was busy then (load ${c.load} on ${cores} cores)` : '';
  const wasm = (c.wasmTrainer ?? 'wasm').replace(/^(\w+), (.+)$/, '$1 ($2)');
  return `torch ${Math.round(c.torchImagesPerSecond ?? 0)} img/s, ${wasm} ${Math.round(c.wasmImagesPerSecond ?? 0)} img/s at batch ${c.batchSize}; ${when}${busy}`;
}

function torchCpuSkip(c: CalibrationResult): string {
  if (c.error) return `torch on the CPU — its timing run failed: ${c.error} (kept in ${c.file}; fix the engine, then delete that file to time it again)`;
  return `torch on the CPU — not faster than wasm here by ${TORCH_CPU_MARGIN}x (${timingText(c)}; delete that file to time it again)`;
}

function torchSkip(t: TorchSetup, choice: PythonChoice): string {
  return `torch — ${t.reason ?? 'not available'} (Python ${describeSource(choice)}${t.fix ? `; to use it: ${t.fix}` : ''})`;
}

/** "Python 3.11.2 at /usr/bin/python3, found as python3 on PATH". */
function pythonText(t: TorchSetup, choice: PythonChoice): string {
  return `Python ${t.pythonVersion ?? '?'} at ${t.executable ?? t.python}, ${describeSource(choice)}`;
}

/**
 * The torch setup of the chosen Python. When python3 on PATH (often pyenv's or a venv's) has no
 * torch but Debian's /usr/bin/python3 has, the fix says to point engine.python there; it is not
 * used unasked, since the user's python3 may be a deliberate choice.
 */
async function probeWithHint(choice: PythonChoice, hooks: TorchHooks): Promise<TorchSetup> {
  const t = await hooks.probeTorch(choice.python);
  if (t.available || choice.source !== 'path' || process.platform !== 'linux' || (t.executable ?? choice.python) === SYSTEM_PYTHON || !fs.existsSync(SYSTEM_PYTHON)) return t;
  const sys = await hooks.probeTorch(SYSTEM_PYTHON);
  if (!sys.available) return t;
  return { ...t, fix: `set engine.python to ${SYSTEM_PYTHON}, which has PyTorch ${sys.torch}; or ${t.fix}` };
}

/** The TF.js side of a torch job (building and saving the model): wasm, else cpu. */
async function startTfjsSide(opts: InitOptions, hooks: BackendHooks): Promise<{ name: ConcreteBackend; probe?: BackendProbe }> {
  try {
    await hooks.activate('wasm', opts);
    return { name: 'wasm' };
  } catch {
    await hooks.activate('cpu', opts);
    return { name: 'cpu' };
  }
}

function torchResult(side: { name: ConcreteBackend; probe?: BackendProbe }, torch: Omit<NonNullable<InitResult['torch']>, 'tfjs'>, skipped: string[], why: string): InitResult {
  const { setup, choice } = torch;
  const probe: BackendProbe = side.probe ?? { name: side.name, available: true, detail: describeSetup(setup) };
  const how = why || (setup.device !== 'cpu' ? ' (a GPU)' : '');
  // Validation, cross-validation folds, evaluate and predict score our runs in the engine too (evaluate/ensemble.ts).
  const summary = `Using torch (${describeSetup(setup)}, ${describeSource(choice)})${how}, which also scores our runs; TF.js (model files, other models, Grad-CAM) runs on ${side.name}.`
    + (skipped.length ? ` Skipped: ${skipped.join('; ')}.` : '');
  return { name: 'torch', probes: [probe], summary, torch: { ...torch, tfjs: side.name } };
}

/** "PyTorch 2.5.1 on cuda (NVIDIA H100 …, CUDA 12.4), Python 3.12.3 at /venv/bin/python" ("on cpu" without a GPU). */
export function describeSetup(s: TorchSetup): string {
  const on = s.device && s.device !== 'cpu' ? `${s.device} (${s.gpu})` : 'cpu';
  return `PyTorch ${s.torch ?? '?'} on ${on}, Python ${s.pythonVersion ?? '?'} at ${s.executable ?? s.python}`;
}

/**
 * torch: training runs in a PyTorch engine process (src/core/train/torch-trainer.ts); TF.js still
 * builds and saves the model and evaluates, on wasm (cpu when wasm cannot start).
 */
async function initTorch(opts: InitOptions, hooks: BackendHooks & TorchHooks): Promise<InitResult> {
  const choice = resolvePython(opts.python, opts.editorPython);
  const t = await probeWithHint(choice, hooks);
  if (!t.available) {
    throw new IdcError(`The torch backend is not available: ${t.reason ?? 'unknown reason'} (Python ${describeSource(choice)}).`,
      `To use it: ${t.fix ?? 'install PyTorch'}. Or set engine.backend to "auto" to use the fastest backend that works here.`, 'BACKEND_UNAVAILABLE');
  }
  const side = await startTfjsSide(opts, hooks);
  // On the CPU, say why there is no GPU when torch could have one (a CUDA build that sees none).
  const note = t.device === 'cpu' && t.gpuFix ? ` (no GPU: ${t.gpuReason}; ${t.gpuFix})` : '';
  return torchResult(side, { choice, setup: t }, [], ` as configured${note}`);
}

/** The torch engine as Select Backend lists it: usable or not, on which device, with which Python. */
export interface TorchOption {
  available: boolean;
  device?: TorchSetup['device'];
  /** "PyTorch 2.5.1 on cuda (…), Python 3.12.3 at /venv/bin/python, selected in VS Code's Python extension". */
  detail?: string;
  reason?: string;
  fix?: string;
}

export async function torchOption(opts: Pick<InitOptions, 'python' | 'editorPython' | 'hooks'> = {}): Promise<TorchOption> {
  const choice = resolvePython(opts.python, opts.editorPython);
  const t = await probeWithHint(choice, { ...realHooks, ...opts.hooks });
  if (!t.available) return { available: false, reason: `${t.reason} (Python ${describeSource(choice)})`, fix: t.fix };
  const cpu = t.device === 'cpu' ? `; auto trains with it on this CPU only where it was timed faster than wasm` : '';
  return { available: true, device: t.device, detail: `${describeSetup(t)}, ${describeSource(choice)}${cpu}` };
}

/**
 * Starts the backend for a job from its config and, when torch will train, points the config at
 * it (engine.backend "torch", engine.python the interpreter used), so the trainer and the run's
 * config.json say what ran.
 */
export async function initBackendFor(config: IdcConfig, opts: Omit<InitOptions, 'python' | 'config'> = {}): Promise<InitResult> {
  const r = await initBackend(config.engine.backend, { ...opts, python: config.engine.python, config });
  if (r.torch) {
    // Scoring jobs too: their engine starts with the interpreter found here (the editor's, say).
    if (opts.purpose === 'train') config.engine.backend = 'torch';
    config.engine.python = r.torch.choice.python;
  }
  return r;
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

  // torch engine: a Python process; auto trains with it on a GPU, and on the CPU where it was timed faster than wasm.
  lines.push('PyTorch (the torch engine: training in a Python process on CUDA, ROCm, MPS or the CPU)');
  const choice = resolvePython(opts.python, opts.editorPython);
  const t = await probeWithHint(choice, { ...realHooks, ...opts.hooks });
  const config = opts.config ?? defaultConfig();
  let cal: CalibrationResult | undefined;
  if (!t.available) {
    lines.push(`  ${NO} ${t.reason} (Python ${describeSource(choice)})`, `  → Next: ${t.fix}.`, '');
  } else {
    lines.push(`  ${OK} Python ${t.pythonVersion} at ${t.executable ?? t.python} (${describeSource(choice)})`);
    lines.push(`  ${OK} PyTorch ${t.torch}, numpy ${t.numpy}`);
    if (t.device !== 'cpu') {
      lines.push(`  ${OK} device: ${t.device} (${t.gpu})`, '  → torch trains on this GPU (auto picks it after tensorflow-gpu).', '');
    } else {
      lines.push(`  ${NO} GPU: ${t.gpuReason ?? 'torch sees none'}; it would train on the CPU`);
      cal = (await import('../train/torch-calibration')).cachedCalibration(config, t, opts.calibrationFile);
      if (!cal) lines.push(`  · CPU timing against wasm: not measured yet (the first training with engine.backend "auto" measures it, about ${config.train.batchSize >= 64 ? 20 : 10} s, once)`);
      else if (cal.error) lines.push(`  ${NO} CPU timing against wasm failed: ${cal.error} (delete ${cal.file} to measure again)`);
      else lines.push(`  ${torchCpuWins(cal) ? OK : NO} CPU timing: ${timingText(cal)}`);
      const next = t.gpuFix ? `for the GPU, ${t.gpuFix}` : cal && torchCpuWins(cal) ? 'nothing: auto trains with torch on this CPU' : 'nothing needed; set engine.backend to "torch" to train with it anyway';
      lines.push(`  → Next: ${next}.`, '');
    }
  }

  // What 'auto' would do, without starting anything.
  const rest = await Promise.all((['tensorflow', 'wasm', 'cpu'] as const).map((n) => probe(n, opts)));
  const [tf1, wasm, cpu] = rest;
  const torchGpu = t.available && t.device !== 'cpu';
  const order: Array<{ ok: boolean; text: string }> = [
    { ok: tg?.available === true, text: `tensorflow-gpu (${DESCRIPTION['tensorflow-gpu']})` },
    { ok: torchGpu, text: `torch on ${t.device} (${t.gpu})` },
    { ok: wg.available, text: `webgpu (${DESCRIPTION.webgpu})` },
    { ok: tf1.available, text: `tensorflow (${DESCRIPTION.tensorflow})` },
    { ok: t.available && !torchGpu && (cal ? torchCpuWins(cal) : false), text: 'torch on the CPU (timed faster than wasm here)' },
    { ok: wasm.available, text: `wasm (${DESCRIPTION.wasm})${t.available && !torchGpu && !cal ? ', or torch on the CPU if the timing at the first training finds it faster' : ''}` },
    { ok: cpu.available, text: `cpu (${DESCRIPTION.cpu})` },
  ];
  const pick = order.find((o) => o.ok);
  lines.push(`With engine.backend = "auto", training would use: ${pick ? pick.text : 'nothing (reinstall the extension)'}.`);
  return lines.join('\n');
}
