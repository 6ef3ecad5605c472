import { test, describe, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import '@tensorflow/tfjs-backend-wasm';
import {
  TORCH_CPU_MARGIN, TRAINING_LADDER, gpuSetupReport, initBackend, initBackendFor, torchCpuWins, torchOption,
  type BackendHooks, type BackendProbe, type ConcreteBackend, type TorchHooks,
} from '../src/core/engine/backends';
import {
  clearTorchProbeCache, describeTorch, probeTorchSetup, resolvePython, type RawTorchProbe, type TorchSetup,
} from '../src/core/engine/torch-probe';
import {
  cachedCalibration, calibrateTorchCpu, calibrationFile, defaultCacheDir, type CalibrationResult, type CalibrationTrainers,
} from '../src/core/train/torch-calibration';
import { defaultConfig } from '../src/core/config';
import { IdcError } from '../src/core/errors';
import { tempDir } from './helpers/fixtures';

// ---------------------------------------------------------------- fakes

const PY = '/usr/bin/python3';

/** What the probe script prints for each kind of Python. */
const RAW: Record<string, RawTorchProbe> = {
  cpuOnly: { executable: PY, pythonVersion: '3.11.2', torch: '1.13.0', numpy: '1.24.2', cudaBuild: null, hipBuild: null, cudaAvailable: false, mpsBuilt: false, mpsAvailable: false },
  cuda: { executable: '/venv/bin/python', pythonVersion: '3.12.3', torch: '2.5.1+cu124', numpy: '2.1.0', cudaBuild: '12.4', hipBuild: null, cudaAvailable: true, gpuCount: 1, gpu: 'NVIDIA H100 80GB HBM3', mpsBuilt: false, mpsAvailable: false },
  cudaNoGpu: {
    executable: '/venv/bin/python', pythonVersion: '3.12.3', torch: '2.3.0+cu121', numpy: '1.26.4', cudaBuild: '12.1', hipBuild: null, cudaAvailable: false,
    cudaWarnings: ['CUDA initialization: Found no NVIDIA driver on your system.'], mpsBuilt: false, mpsAvailable: false,
  },
  rocm: { executable: '/opt/rocm-venv/bin/python', pythonVersion: '3.10.12', torch: '2.4.0+rocm6.1', numpy: '1.26.4', cudaBuild: null, hipBuild: '6.1.40091', cudaAvailable: true, gpuCount: 2, gpu: 'AMD Instinct MI250X', mpsBuilt: false, mpsAvailable: false },
  mps: { executable: '/opt/homebrew/bin/python3', pythonVersion: '3.12.4', torch: '2.5.1', numpy: '2.1.0', cudaBuild: null, hipBuild: null, cudaAvailable: false, mpsBuilt: true, mpsAvailable: true },
  noTorch: { executable: PY, pythonVersion: '3.11.2', torchError: "ModuleNotFoundError: No module named 'torch'" },
};

const NO_PYTHON: TorchSetup = {
  python: 'python3', available: false,
  reason: 'the Python interpreter python3 was not found (not found)', fix: 'install Python 3 with PyTorch (apt-get install python3-torch python3-numpy …)',
};

function setupOf(kind: keyof typeof RAW, python = PY): TorchSetup {
  return describeTorch(python, RAW[kind], { platform: kind === 'mps' ? 'darwin' : 'linux', nvidiaGpu: false });
}

function timing(torch: number, wasm: number, extra: Partial<CalibrationResult> = {}): CalibrationResult {
  return {
    about: {}, measuredAt: '2026-11-27T10:00:00.000Z', batchSize: 64, threads: 2, torchImagesPerSecond: torch, wasmImagesPerSecond: wasm,
    wasmTrainer: 'wasm, 2 threads', seconds: 9, cached: true, file: '/cache/idc-inspector/torch-cpu-calibration.json', ...extra,
  };
}

/** A machine: which TF.js backends work, what torch the Python has, what the timing says. */
function machine(tfjs: ConcreteBackend[], torch: TorchSetup | ((python: string) => TorchSetup), cal?: CalibrationResult) {
  const calls: string[] = [];
  const pythons: string[] = [];
  const hooks: BackendHooks & TorchHooks = {
    async probe(name) {
      calls.push(`probe ${name}`);
      return tfjs.includes(name) ? { name, available: true, detail: `${name} detail` } : { name, available: false, reason: `${name} missing`, fix: `install ${name}` } satisfies BackendProbe;
    },
    async activate(name) { calls.push(`activate ${name}`); },
    async probeTorch(python) { calls.push('probeTorch'); pythons.push(python); return typeof torch === 'function' ? torch(python) : torch; },
    async calibrate() {
      calls.push('calibrate');
      assert.ok(calls.includes('activate wasm'), 'wasm is started before it is timed');
      if (!cal) throw new Error('no calibration expected');
      return cal;
    },
  };
  return { hooks, calls, pythons };
}

const ALL_CPU: ConcreteBackend[] = ['wasm', 'cpu'];

// ---------------------------------------------------------------- the ladder

describe('auto for training: the ladder with torch', () => {
  test('order: tensorflow-gpu, torch on a GPU, webgpu, tensorflow, torch on the CPU, wasm, cpu', () => {
    assert.deepEqual(TRAINING_LADDER, ['tensorflow-gpu', 'torch-gpu', 'webgpu', 'tensorflow', 'torch-cpu', 'wasm', 'cpu']);
  });

  test('no Python: wasm, and the skip line says which interpreter was missing and how to install', async () => {
    const m = machine(ALL_CPU, NO_PYTHON);
    const r = await initBackend('auto', { purpose: 'train', hooks: m.hooks });
    assert.equal(r.name, 'wasm');
    assert.ok(!m.calls.includes('calibrate'), 'nothing to time without torch');
    assert.match(r.summary, /^Using wasm /);
    assert.match(r.summary, /torch — the Python interpreter python3 was not found \(not found\) \(Python found as python3 on PATH; to use it: install Python 3 with PyTorch/);
    assert.equal(m.pythons.filter((p) => p === 'python3').length, 1, 'torch is probed once per job');
  });

  test('Python without torch: wasm, with the install command for that interpreter', async () => {
    const m = machine(ALL_CPU, setupOf('noTorch'));
    const r = await initBackend('auto', { purpose: 'train', hooks: m.hooks });
    assert.equal(r.name, 'wasm');
    assert.match(r.summary, /torch — \/usr\/bin\/python3 \(Python 3\.11\.2\) cannot import torch: ModuleNotFoundError: No module named 'torch'/);
    assert.match(r.summary, /apt-get install python3-torch python3-numpy .*, or \/usr\/bin\/python3 -m pip install torch numpy/);
    assert.ok(!m.calls.includes('calibrate'));
  });

  test('python3 on PATH without torch beside a system /usr/bin/python3 with it: the fix says to point engine.python there', { skip: (process.platform !== 'linux' || !existsSync(PY)) && 'Linux with /usr/bin/python3' }, async () => {
    const pyenv = describeTorch('python3', { ...RAW.noTorch, executable: '/root/.pyenv/versions/3.11.7/bin/python3' }, { platform: 'linux' });
    assert.match(pyenv.fix ?? '', /^\/root\/\.pyenv\/versions\/3\.11\.7\/bin\/python3 -m pip install torch numpy, or use Debian\/Ubuntu's system Python: apt-get install python3-torch python3-numpy, then set engine\.python to \/usr\/bin\/python3$/);
    const m = machine(ALL_CPU, (python) => (python === PY ? setupOf('cpuOnly') : pyenv), timing(450, 414));
    const r = await initBackend('auto', { purpose: 'train', hooks: m.hooks });
    assert.equal(r.name, 'wasm', 'the other interpreter is not used unasked');
    assert.deepEqual(m.pythons, ['python3', PY]);
    assert.match(r.summary, /torch — \/root\/\.pyenv\/versions\/3\.11\.7\/bin\/python3 \(Python 3\.11\.2\) cannot import torch: .*to use it: set engine\.python to \/usr\/bin\/python3, which has PyTorch 1\.13\.0; or \/root\/\.pyenv/);
    const set = machine(ALL_CPU, (python) => (python === PY ? setupOf('cpuOnly') : pyenv));
    await initBackend('auto', { purpose: 'train', python: '/root/.pyenv/versions/3.11.7/bin/python3', hooks: set.hooks });
    assert.deepEqual(set.pythons, ['/root/.pyenv/versions/3.11.7/bin/python3'], 'an interpreter the user chose gets no second guess');
  });

  test('torch CPU-only, timed faster than wasm: torch trains, TF.js stays on wasm, the figures are in the line', async () => {
    const m = machine(ALL_CPU, setupOf('cpuOnly'), timing(814, 414));
    const r = await initBackend('auto', { purpose: 'train', hooks: m.hooks });
    assert.equal(r.name, 'torch');
    assert.equal(r.torch?.tfjs, 'wasm');
    assert.equal(r.torch?.calibration?.torchImagesPerSecond, 814);
    assert.deepEqual(m.calls, ['probe tensorflow-gpu', 'probeTorch', 'probe webgpu', 'probe tensorflow', 'probe wasm', 'activate wasm', 'calibrate']);
    assert.match(r.summary, /^Using torch \(PyTorch 1\.13\.0 on cpu, Python 3\.11\.2 at \/usr\/bin\/python3, found as python3 on PATH\) \(timed faster than wasm here: torch 814 img\/s, wasm \(2 threads\) 414 img\/s at batch 64; timed 2026-11-27, kept in \/cache\/idc-inspector\/torch-cpu-calibration\.json\)/);
    assert.match(r.summary, /, which also scores our runs; TF\.js \(model files, other models, Grad-CAM\) runs on wasm/);
    assert.match(r.summary, /Skipped: tensorflow-gpu — tensorflow-gpu missing .*; torch on a GPU — PyTorch 1\.13\.0 is a CPU-only build and no GPU is visible \(Python 3\.11\.2 at \/usr\/bin\/python3, found as python3 on PATH\); webgpu — /);
  });

  test('torch CPU-only, not faster by the margin: wasm, and the skip line gives both figures', async () => {
    const m = machine(ALL_CPU, setupOf('cpuOnly'), timing(450, 414, { load: 6.7, about: { cores: 2 } }));
    const r = await initBackend('auto', { purpose: 'train', hooks: m.hooks });
    assert.equal(r.name, 'wasm');
    assert.ok(450 < TORCH_CPU_MARGIN * 414);
    assert.match(r.summary, /kept in \S+; the machine was busy then \(load 6\.7 on 2 cores\); delete that file/);
    assert.equal(m.calls.filter((c) => c === 'activate wasm').length, 1, 'wasm is started once');
    assert.match(r.summary, /^Using wasm \(/);
    assert.match(r.summary, /torch on the CPU — not faster than wasm here by 1\.2x \(torch 450 img\/s, wasm \(2 threads\) 414 img\/s at batch 64; timed 2026-11-27, kept in \/cache\/idc-inspector\/torch-cpu-calibration\.json; the machine was busy then \(load 6\.7 on 2 cores\); delete that file to time it again\)/);
  });

  test('a failed timing run keeps wasm and says so', async () => {
    const m = machine(ALL_CPU, setupOf('cpuOnly'), timing(NaN, NaN, { error: 'The torch engine exited with code 1', torchImagesPerSecond: undefined }));
    const r = await initBackend('auto', { purpose: 'train', hooks: m.hooks });
    assert.equal(r.name, 'wasm');
    assert.match(r.summary, /torch on the CPU — its timing run failed: The torch engine exited with code 1 \(kept in .*delete that file to time it again\)/);
  });

  test('torch with CUDA comes before webgpu and tensorflow, after tensorflow-gpu, and is never timed', async () => {
    const cuda = setupOf('cuda', '/venv/bin/python');
    const m = machine(['webgpu', 'tensorflow', 'wasm', 'cpu'], cuda);
    const r = await initBackend('auto', { purpose: 'train', python: '/venv/bin/python', hooks: m.hooks });
    assert.equal(r.name, 'torch');
    assert.deepEqual(m.calls, ['probe tensorflow-gpu', 'probeTorch', 'activate wasm']);
    assert.match(r.summary, /^Using torch \(PyTorch 2\.5\.1\+cu124 on cuda \(NVIDIA H100 80GB HBM3, CUDA 12\.4\), Python 3\.12\.3 at \/venv\/bin\/python, set by engine\.python\) \(a GPU\)/);

    const first = machine(['tensorflow-gpu', 'wasm'], cuda);
    assert.equal((await initBackend('auto', { purpose: 'train', hooks: first.hooks })).name, 'tensorflow-gpu');
    assert.ok(!first.calls.includes('probeTorch'), 'tfjs-node-gpu wins before torch is probed');
  });

  test('a CUDA build that sees no GPU: a clear reason and fix, then the CPU rules apply', async () => {
    const s = setupOf('cudaNoGpu', '/venv/bin/python');
    assert.equal(s.device, 'cpu');
    const m = machine(ALL_CPU, s, timing(300, 414));
    const r = await initBackend('auto', { purpose: 'train', editorPython: '/venv/bin/python', hooks: m.hooks });
    assert.equal(r.name, 'wasm');
    assert.deepEqual(m.pythons, ['/venv/bin/python'], "VS Code's interpreter is used when engine.python is empty");
    assert.match(r.summary, /torch on a GPU — PyTorch 2\.3\.0\+cu121 is a CUDA 12\.1 build but sees no GPU: CUDA initialization: Found no NVIDIA driver on your system\. \(Python 3\.12\.3 at \/venv\/bin\/python, selected in VS Code's Python extension; for the GPU: run nvidia-smi: the driver must be installed and support CUDA 12\.1; in a container, pass the GPU through \(docker run --gpus all\)\)/);
  });

  test('MPS and ROCm count as GPUs', async () => {
    const mps = machine(ALL_CPU, setupOf('mps'));
    const r = await initBackend('auto', { purpose: 'train', hooks: mps.hooks });
    assert.equal(r.name, 'torch');
    assert.match(r.summary, /on mps \(Apple GPU \(Metal\)\)/);
    const rocm = machine(ALL_CPU, setupOf('rocm'));
    const q = await initBackend('auto', { purpose: 'train', hooks: rocm.hooks });
    assert.equal(q.name, 'torch');
    assert.match(q.summary, /on rocm \(AMD Instinct MI250X \(2 GPUs\), ROCm 6\.1\.40091\)/);
  });

  test('tensorflow (CPU) ranks above torch on the CPU: no timing run', async () => {
    const m = machine(['tensorflow', 'wasm', 'cpu'], setupOf('cpuOnly'), timing(814, 414));
    const r = await initBackend('auto', { purpose: 'train', hooks: m.hooks });
    assert.equal(r.name, 'tensorflow');
    assert.ok(!m.calls.includes('calibrate'));
  });

  test('when wasm cannot start, torch on the CPU wins without a timing (only plain JS is left)', async () => {
    const m = machine(['cpu'], setupOf('cpuOnly'));
    const r = await initBackend('auto', { purpose: 'train', hooks: m.hooks });
    assert.equal(r.name, 'torch');
    assert.ok(!m.calls.includes('calibrate'));
    assert.match(r.summary, /wasm cannot start, so nothing was timed against it/);
  });

  test('scoring never probes torch: it only trains', async () => {
    const m = machine(ALL_CPU, setupOf('cuda'));
    const r = await initBackend('auto', { hooks: m.hooks });
    assert.equal(r.name, 'wasm');
    assert.ok(!m.calls.includes('probeTorch'));
    assert.doesNotMatch(r.summary, /torch/);
  });

  test('initBackendFor points a training config at torch and the interpreter it used', async () => {
    const config = defaultConfig();
    const m = machine(ALL_CPU, setupOf('cpuOnly'), timing(814, 414));
    await initBackendFor(config, { purpose: 'train', editorPython: '/venv/bin/python', hooks: m.hooks });
    assert.equal(config.engine.backend, 'torch');
    assert.equal(config.engine.python, '/venv/bin/python');
    const scored = defaultConfig();
    await initBackendFor(scored, { hooks: machine(ALL_CPU, setupOf('cuda')).hooks });
    assert.equal(scored.engine.backend, 'auto', 'a scoring job leaves the config alone');
  });

  test('explicit torch: the interpreter from engine.python, else VS Code, and a missing torch is an IdcError with the command', async () => {
    const m = machine(ALL_CPU, setupOf('cudaNoGpu'));
    const r = await initBackend('torch', { python: '/mine/python', editorPython: '/venv/bin/python', hooks: m.hooks });
    assert.deepEqual(m.pythons, ['/mine/python']);
    assert.match(r.summary, /^Using torch \(PyTorch 2\.3\.0\+cu121 on cpu, .*set by engine\.python\) as configured \(no GPU: PyTorch 2\.3\.0\+cu121 is a CUDA 12\.1 build but sees no GPU/);
    const none = machine(ALL_CPU, setupOf('noTorch'));
    await assert.rejects(initBackend('torch', { editorPython: PY, hooks: none.hooks }), (e: unknown) => {
      assert.ok(e instanceof IdcError);
      assert.equal(e.code, 'BACKEND_UNAVAILABLE');
      assert.match(e.message, /cannot import torch.*\(Python selected in VS Code's Python extension\)/);
      assert.match(e.hint ?? '', /apt-get install python3-torch/);
      return true;
    });
  });

  test('Select Backend\'s torch entry: device and Python, or the reason and fix', async () => {
    const gpu = await torchOption({ editorPython: '/venv/bin/python', hooks: machine(ALL_CPU, setupOf('cuda', '/venv/bin/python')).hooks });
    assert.deepEqual(gpu, { available: true, device: 'cuda', detail: "PyTorch 2.5.1+cu124 on cuda (NVIDIA H100 80GB HBM3, CUDA 12.4), Python 3.12.3 at /venv/bin/python, selected in VS Code's Python extension" });
    const cpu = await torchOption({ python: PY, hooks: machine(ALL_CPU, setupOf('cpuOnly')).hooks });
    assert.match(cpu.detail ?? '', /on cpu, .*set by engine\.python; auto trains with it on this CPU only where it was timed faster than wasm$/);
    const none = await torchOption({ python: PY, hooks: machine(ALL_CPU, setupOf('noTorch')).hooks });
    assert.equal(none.available, false);
    assert.match(none.reason ?? '', /cannot import torch.*\(Python set by engine\.python\)$/);
    assert.match(none.fix ?? '', /pip install torch numpy/);
  });

  test('torchCpuWins needs both figures and the margin', () => {
    assert.equal(torchCpuWins(timing(814, 414)), true);
    assert.equal(torchCpuWins(timing(496, 414)), false);
    assert.equal(torchCpuWins(timing(814, 414, { error: 'x' })), false);
    assert.equal(torchCpuWins(timing(814, 414, { wasmImagesPerSecond: undefined })), false);
  });
});

// ---------------------------------------------------------------- which Python, which torch

describe('finding Python and torch', () => {
  test('resolvePython: engine.python, else VS Code, else python3 on PATH', () => {
    assert.deepEqual(resolvePython('/cfg/python', '/vscode/python'), { python: '/cfg/python', source: 'engine.python' });
    assert.deepEqual(resolvePython('', '/vscode/python'), { python: '/vscode/python', source: 'vscode' });
    assert.deepEqual(resolvePython('  ', undefined), { python: process.platform === 'win32' ? 'python' : 'python3', source: 'path' });
  });

  test('describeTorch: each kind of Python', () => {
    assert.equal(setupOf('cpuOnly').device, 'cpu');
    assert.equal(setupOf('cuda').device, 'cuda');
    assert.equal(setupOf('rocm').device, 'rocm');
    assert.equal(setupOf('mps').device, 'mps');
    const noNumpy = describeTorch(PY, { ...RAW.cpuOnly, numpy: undefined, numpyError: "ModuleNotFoundError: No module named 'numpy'" });
    assert.equal(noNumpy.available, false);
    assert.match(noNumpy.fix ?? '', /apt-get install python3-numpy .* \/usr\/bin\/python3 -m pip install numpy/);
    const nvidia = describeTorch(PY, RAW.cpuOnly, { platform: 'linux', nvidiaGpu: () => true });
    assert.match(nvidia.gpuReason ?? '', /CPU-only build, but this machine has an NVIDIA GPU/);
    assert.match(nvidia.gpuFix ?? '', /\/usr\/bin\/python3 -m pip install torch --index-url https:\/\/download\.pytorch\.org\/whl\/cu124/);
    const hidden = describeTorch(PY, { ...RAW.cudaNoGpu, cudaVisibleDevices: '' });
    assert.match(hidden.gpuReason ?? '', /CUDA_VISIBLE_DEVICES="" hides them/);
    assert.equal(hidden.gpuFix, 'unset CUDA_VISIBLE_DEVICES or list a GPU in it');
    const mpsOff = describeTorch(PY, { ...RAW.mps, mpsAvailable: false }, { platform: 'darwin' });
    assert.match(mpsOff.gpuReason ?? '', /MPS but it is not available/);
  });

  test('the probe runs once per interpreter and process', async () => {
    clearTorchProbeCache();
    let runs = 0;
    const run = async () => { runs++; return { raw: RAW.cpuOnly }; };
    const a = await probeTorchSetup('/x/python', { run });
    const b = await probeTorchSetup('/x/python', { run });
    assert.equal(runs, 1);
    assert.equal(a, b);
    await probeTorchSetup('/y/python', { run });
    assert.equal(runs, 2);
    clearTorchProbeCache();
  });

  const hasTorch = existsSync(PY) && spawnSync(PY, ['-c', 'import torch, numpy'], { stdio: 'ignore' }).status === 0;

  test('the real probe: a missing interpreter, one without torch, and /usr/bin/python3', { skip: !existsSync(PY) && 'no /usr/bin/python3' }, async () => {
    clearTorchProbeCache();
    const missing = await probeTorchSetup('/nonexistent/python3');
    assert.equal(missing.available, false);
    assert.match(missing.reason ?? '', /\/nonexistent\/python3 was not found/);
    assert.match(missing.fix ?? '', /engine\.python/);
    const bare = join(tempDir(), 'python-no-site');
    writeFileSync(bare, `#!/bin/sh\nexec ${PY} -S "$@"\n`);
    chmodSync(bare, 0o755);
    const noTorch = await probeTorchSetup(bare);
    assert.equal(noTorch.available, false);
    assert.match(noTorch.reason ?? '', /cannot import torch: ModuleNotFoundError/);
    if (hasTorch) {
      const t = await probeTorchSetup(PY);
      assert.equal(t.available, true, t.reason);
      assert.match(t.torch ?? '', /^\d+\.\d+/);
      assert.equal(t.executable, PY);
      assert.ok(t.device === 'cpu' || t.device === 'cuda', t.device);
    }
  });

  test('a hung interpreter times out with a clear reason', { skip: process.platform === 'win32' && 'sh script' }, async () => {
    clearTorchProbeCache();
    const slow = join(tempDir(), 'python-slow');
    writeFileSync(slow, '#!/bin/sh\nexec sleep 5\n');
    chmodSync(slow, 0o755);
    const t = await probeTorchSetup(slow, { timeoutMs: 300 });
    assert.equal(t.available, false);
    assert.match(t.reason ?? '', /python-slow did not answer within 0\.3 s/);
    clearTorchProbeCache();
  });
});

// ---------------------------------------------------------------- the timing, kept per machine

describe('torch vs wasm timing on the CPU', () => {
  let dir = '';
  beforeEach(() => { dir = tempDir(); });

  /** Trainers whose steps take `ms` of a fake clock each. */
  function fakeTrainers(wasmMs: number, torchMs: number, counter: { steps: number; order?: string[] }) {
    let clock = 0;
    const make = (ms: number, backend: string) => async () => ({
      backend, weightSpecs: [], architecture: '',
      async trainStep() { counter.steps++; counter.order?.push(backend.slice(0, 5)); clock += ms; return { loss: 0, probs: new Float32Array(0) }; },
      async dispose() {},
    }) as unknown as Awaited<ReturnType<CalibrationTrainers['wasm']>>;
    return { trainers: { wasm: make(wasmMs, 'wasm, 2 threads'), torch: make(torchMs, 'torch') }, now: () => clock };
  }

  const cfg = () => { const c = defaultConfig(); c.train.batchSize = 64; return c; };

  test('measures once, then reads the kept figures; a new torch version measures again', async () => {
    const file = join(dir, 'cal.json');
    const counter = { steps: 0, order: [] as string[] };
    const f = fakeTrainers(160, 80, counter);
    const setup = setupOf('cpuOnly');
    const r = await calibrateTorchCpu({ config: cfg(), setup, file, trainers: f.trainers, now: f.now, warmup: 1, steps: 3 });
    assert.equal(r.cached, false);
    assert.equal(counter.steps, 8);
    assert.deepEqual(counter.order.slice(0, 4), ['wasm,', 'torch', 'wasm,', 'torch'], 'steps alternate, so outside load hits both');
    assert.equal(typeof r.load, 'number');
    assert.equal(Math.round(r.wasmImagesPerSecond!), 400);
    assert.equal(Math.round(r.torchImagesPerSecond!), 800);
    assert.equal(r.wasmTrainer, 'wasm, 2 threads');
    assert.ok(torchCpuWins(r));
    const kept = JSON.parse(readFileSync(file, 'utf8'));
    assert.equal(Object.keys(kept.entries).length, 1);

    const again = await calibrateTorchCpu({ config: cfg(), setup, file, trainers: f.trainers, now: f.now });
    assert.equal(again.cached, true);
    assert.equal(counter.steps, 8, 'nothing ran the second time');
    assert.equal(cachedCalibration(cfg(), setup, file)?.torchImagesPerSecond, r.torchImagesPerSecond);

    const newer = await calibrateTorchCpu({ config: cfg(), setup: { ...setup, torch: '2.5.1' }, file, trainers: f.trainers, now: f.now, warmup: 0, steps: 1 });
    assert.equal(newer.cached, false, 'another torch version is another measurement');
    const bigger = cfg();
    bigger.train.batchSize = 128;
    assert.equal(cachedCalibration(bigger, setup, file), undefined, 'another batch size too');
  });

  test('cancelling stops between steps, closes both trainers and keeps nothing', async () => {
    const file = join(dir, 'cal.json');
    const counter = { steps: 0 };
    const f = fakeTrainers(100, 50, counter);
    const closed: string[] = [];
    const ac = new AbortController();
    const closing = (make: CalibrationTrainers['wasm'], name: string): CalibrationTrainers['wasm'] => async (c) => {
      const t = await make(c);
      const step = t.trainStep.bind(t);
      return Object.assign(t, {
        async trainStep(...a: Parameters<typeof t.trainStep>) { if (counter.steps === 3) ac.abort(); return step(...a); },
        async dispose() { closed.push(name); },
      });
    };
    await assert.rejects(
      calibrateTorchCpu({ config: cfg(), setup: setupOf('cpuOnly'), file, trainers: { wasm: closing(f.trainers.wasm, 'wasm'), torch: closing(f.trainers.torch, 'torch') }, now: f.now, signal: ac.signal }),
      (e: unknown) => e instanceof IdcError && e.code === 'CANCELLED',
    );
    assert.equal(counter.steps, 4, 'the step under way ends, no further one starts');
    assert.deepEqual(closed.sort(), ['torch', 'wasm']);
    assert.equal(existsSync(file), false, 'a cancelled timing is not kept');
  });

  test('a failure is kept (no retry every job) and reported, never thrown', async () => {
    const file = join(dir, 'cal.json');
    const trainers: CalibrationTrainers = {
      wasm: fakeTrainers(100, 100, { steps: 0 }).trainers.wasm,
      torch: async () => { throw new Error('The torch engine (python3, pid 1) exited with code 1.'); },
    };
    const r = await calibrateTorchCpu({ config: cfg(), setup: setupOf('cpuOnly'), file, trainers, warmup: 0, steps: 1 });
    assert.match(r.error ?? '', /exited with code 1/);
    assert.equal(torchCpuWins(r), false);
    assert.equal((await calibrateTorchCpu({ config: cfg(), setup: setupOf('cpuOnly'), file, trainers })).cached, true);
  });

  test('an unwritable cache folder still gives figures, marked not saved', { skip: process.getuid?.() === 0 && 'root writes anywhere' }, async () => {
    const ro = join(dir, 'ro');
    mkdirSync(ro);
    chmodSync(ro, 0o500);
    const f = fakeTrainers(100, 50, { steps: 0 });
    const r = await calibrateTorchCpu({ config: cfg(), setup: setupOf('cpuOnly'), file: join(ro, 'sub', 'cal.json'), trainers: f.trainers, now: f.now, warmup: 0, steps: 1 });
    assert.ok(r.notSaved);
    assert.ok(torchCpuWins(r));
  });

  test('the cache folder: IDC_CACHE_DIR, else the OS convention', () => {
    assert.equal(defaultCacheDir({ IDC_CACHE_DIR: '/c' }, 'linux'), '/c');
    assert.equal(defaultCacheDir({ XDG_CACHE_HOME: '/xdg' }, 'linux'), join('/xdg', 'idc-inspector'));
    assert.match(defaultCacheDir({}, 'darwin'), /Library[\\/]Caches[\\/]idc-inspector$/);
    assert.equal(defaultCacheDir({ LOCALAPPDATA: 'C:\\Users\\a\\AppData\\Local' }, 'win32'), join('C:\\Users\\a\\AppData\\Local', 'idc-inspector', 'Cache'));
    assert.equal(calibrationFile('/c'), join('/c', 'torch-cpu-calibration.json'));
  });

  const hasTorch = existsSync(PY) && spawnSync(PY, ['-c', 'import torch, numpy'], { stdio: 'ignore' }).status === 0;

  test('the real timing: a few steps of the real wasm trainer and the real torch engine', { skip: !hasTorch && `no PyTorch for ${PY}` }, async () => {
    const config = defaultConfig();
    // A small model and batch: this checks the wiring, not the speed.
    config.model = { ...config.model, filters: [4, 8], dense: [8] };
    config.train.batchSize = 8;
    config.engine.threads = 1;
    const file = join(dir, 'cal.json');
    const events: string[] = [];
    const r = await initBackendFor(config, {
      purpose: 'train', calibrationFile: file, onProgress: (e) => events.push(e.phase),
      hooks: { probeTorch: async () => ({ ...(await probeTorchSetup(PY)), python: PY }) },
    });
    // The key leaves out engine.backend and engine.python, which initBackendFor may have changed.
    const cal = cachedCalibration(config, await probeTorchSetup(PY), file);
    assert.ok(cal, 'the timing was kept');
    assert.equal(cal.error, undefined, cal.error);
    assert.ok(cal.torchImagesPerSecond! > 0 && cal.wasmImagesPerSecond! > 0);
    assert.ok(events.includes('calibrate'));
    assert.equal(r.name, torchCpuWins(cal) ? 'torch' : 'wasm');
    assert.match(r.summary, /torch \d+ img\/s, wasm[^;]* \d+ img\/s at batch 8; timed now/);
  });
});

// ---------------------------------------------------------------- Check GPU Setup

describe('Check GPU Setup: the PyTorch section', () => {
  const tfjs = (names: ConcreteBackend[]) => machine(names, NO_PYTHON).hooks;

  test('names the Python, where it came from, the torch, the device and the timing', async () => {
    const dir = tempDir();
    const file = join(dir, 'cal.json');
    const config = defaultConfig();
    const setup = setupOf('cpuOnly');
    let clock = 0;
    const step = (ms: number, backend: string) => async () => ({ backend, async trainStep() { clock += ms; return { loss: 0, probs: new Float32Array(0) }; }, async dispose() {} }) as never;
    await calibrateTorchCpu({ config, setup, file, trainers: { wasm: step(160, 'wasm, 2 threads'), torch: step(80, 'torch') }, now: () => clock, warmup: 0, steps: 1 });
    const text = await gpuSetupReport({ config, editorPython: PY, calibrationFile: file, hooks: { ...tfjs(ALL_CPU), probeTorch: async () => setup } });
    assert.match(text, /PyTorch \(the torch engine: training in a Python process on CUDA, ROCm, MPS or the CPU\)/);
    assert.match(text, /✓ Python 3\.11\.2 at \/usr\/bin\/python3 \(selected in VS Code's Python extension\)/);
    assert.match(text, /✓ PyTorch 1\.13\.0, numpy 1\.24\.2/);
    assert.match(text, /✗ GPU: PyTorch 1\.13\.0 is a CPU-only build and no GPU is visible; it would train on the CPU/);
    assert.match(text, /✓ CPU timing: torch 800 img\/s, wasm \(2 threads\) 400 img\/s at batch 64/);
    assert.match(text, /With engine\.backend = "auto", training would use: torch on the CPU \(timed faster than wasm here\)\./);
  });

  test('not timed yet, a missing torch, a GPU', async () => {
    const file = join(tempDir(), 'none.json');
    const cpu = await gpuSetupReport({ calibrationFile: file, hooks: { ...tfjs(ALL_CPU), probeTorch: async () => setupOf('cpuOnly') } });
    assert.match(cpu, /· CPU timing against wasm: not measured yet \(the first training with engine\.backend "auto" measures it/);
    assert.match(cpu, /training would use: wasm \(WebAssembly \+ IDC training kernels\), or torch on the CPU if the timing at the first training finds it faster\./);
    const none = await gpuSetupReport({ calibrationFile: file, hooks: { ...tfjs(ALL_CPU), probeTorch: async () => setupOf('noTorch') } });
    assert.match(none, /✗ \/usr\/bin\/python3 \(Python 3\.11\.2\) cannot import torch: .* \(Python found as python3 on PATH\)/);
    assert.match(none, /→ Next: apt-get install python3-torch python3-numpy .*pip install torch numpy\./);
    assert.match(none, /training would use: wasm \(WebAssembly \+ IDC training kernels\)\./);
    const gpu = await gpuSetupReport({ python: '/venv/bin/python', calibrationFile: file, hooks: { ...tfjs(ALL_CPU), probeTorch: async () => setupOf('cuda', '/venv/bin/python') } });
    assert.match(gpu, /✓ Python 3\.12\.3 at \/venv\/bin\/python \(set by engine\.python\)/);
    assert.match(gpu, /✓ device: cuda \(NVIDIA H100 80GB HBM3, CUDA 12\.4\)/);
    assert.match(gpu, /training would use: torch on cuda \(NVIDIA H100 80GB HBM3, CUDA 12\.4\)\./);
  });
});
