import { spawn } from 'node:child_process';
import { defaultPython, torchInstallFix } from './torch-engine';

/**
 * What a Python interpreter offers the torch engine: its torch and numpy, and which device torch
 * would train on (CUDA, ROCm, MPS or the CPU), from one short subprocess per interpreter and
 * process. Also which interpreter to use: engine.python, else VS Code's, else python3 on PATH.
 */

/** Where the interpreter came from, for messages. */
export type PythonSource = 'engine.python' | 'vscode' | 'path';

export interface PythonChoice {
  python: string;
  source: PythonSource;
}

/** engine.python when set, else the interpreter selected in VS Code's Python extension, else python3 on PATH. */
export function resolvePython(configured: string | undefined, editor?: string): PythonChoice {
  if (configured && configured.trim()) return { python: configured.trim(), source: 'engine.python' };
  if (editor && editor.trim()) return { python: editor.trim(), source: 'vscode' };
  return { python: defaultPython(), source: 'path' };
}

/** "set by engine.python", "selected in VS Code's Python extension", "found as python3 on PATH". */
export function describeSource(c: PythonChoice): string {
  return c.source === 'engine.python' ? 'set by engine.python' : c.source === 'vscode' ? "selected in VS Code's Python extension" : `found as ${c.python} on PATH`;
}

/** The probe script's answer, as printed. */
export interface RawTorchProbe {
  executable?: string;
  pythonVersion?: string;
  torch?: string;
  torchError?: string;
  numpy?: string;
  numpyError?: string;
  /** torch.version.cuda / torch.version.hip: null on a CPU-only build. */
  cudaBuild?: string | null;
  hipBuild?: string | null;
  cudaAvailable?: boolean;
  gpuCount?: number;
  gpu?: string;
  /** Warnings torch raised while looking for a GPU ("CUDA initialization: …"). */
  cudaWarnings?: string[];
  mpsBuilt?: boolean;
  mpsAvailable?: boolean;
  cudaVisibleDevices?: string | null;
}

export type TorchDevice = 'cuda' | 'rocm' | 'mps' | 'cpu';

export interface TorchSetup {
  /** The interpreter as asked for (a command on PATH or a path). */
  python: string;
  /** False: the engine cannot start with this interpreter (reason, fix say why and what to do). */
  available: boolean;
  reason?: string;
  fix?: string;
  executable?: string;
  pythonVersion?: string;
  torch?: string;
  numpy?: string;
  /** Where the engine would train. */
  device?: TorchDevice;
  /** "NVIDIA H100 80GB HBM3 (1 GPU)", "Apple GPU". */
  gpu?: string;
  /** On the CPU only: why torch sees no GPU, when there is a GPU story to tell (CUDA build without a GPU …). */
  gpuReason?: string;
  gpuFix?: string;
}

const PROBE_SCRIPT = `
import json, os, sys, warnings
r = {'executable': sys.executable, 'pythonVersion': sys.version.split()[0], 'cudaVisibleDevices': os.environ.get('CUDA_VISIBLE_DEVICES')}
try:
    import torch
except Exception as e:
    r['torchError'] = type(e).__name__ + ': ' + str(e)
else:
    r['torch'] = torch.__version__
    r['cudaBuild'] = getattr(torch.version, 'cuda', None)
    r['hipBuild'] = getattr(torch.version, 'hip', None)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        try:
            r['cudaAvailable'] = bool(torch.cuda.is_available())
            r['gpuCount'] = torch.cuda.device_count() if r['cudaAvailable'] else 0
            if r['cudaAvailable']:
                r['gpu'] = torch.cuda.get_device_name(0)
        except Exception as e:
            r['cudaAvailable'] = False
            w.append(warnings.WarningMessage(type(e).__name__ + ': ' + str(e), RuntimeWarning, '', 0))
        r['cudaWarnings'] = [str(x.message).split(chr(10))[0] for x in w][:3]
    mps = getattr(torch.backends, 'mps', None)
    r['mpsBuilt'] = bool(mps is not None and mps.is_built())
    r['mpsAvailable'] = bool(mps is not None and mps.is_available())
try:
    import numpy
    r['numpy'] = numpy.__version__
except Exception as e:
    r['numpyError'] = type(e).__name__ + ': ' + str(e)
print(json.dumps(r))
`;

const PYTORCH_CUDA_INSTALL = 'https://pytorch.org/get-started/locally/';
export const SYSTEM_PYTHON = '/usr/bin/python3';

/** apt installs into the system Python only; any other interpreter (pyenv, a venv, conda) needs its own pip. */
function installFix(exe: string, platform: NodeJS.Platform = process.platform): string {
  if (platform !== 'linux' || exe === SYSTEM_PYTHON) return torchInstallFix(exe);
  return `${exe} -m pip install torch numpy, or use Debian/Ubuntu's system Python: apt-get install python3-torch python3-numpy, then set engine.python to ${SYSTEM_PYTHON}`;
}

/**
 * Turns the probe's answer into what the ladder and the messages need. `nvidiaGpu`: the machine
 * shows an NVIDIA GPU (nvidia-smi, /dev/nvidia0), so a CPU-only torch build is worth a word.
 */
export function describeTorch(python: string, r: RawTorchProbe, host: { platform?: NodeJS.Platform; nvidiaGpu?: boolean | (() => boolean) } = {}): TorchSetup {
  const exe = r.executable || python;
  const base = { python, executable: r.executable, pythonVersion: r.pythonVersion };
  const py = `${exe} (Python ${r.pythonVersion ?? '?'})`;
  if (!r.torch) {
    return { ...base, available: false, reason: `${py} cannot import torch: ${r.torchError ?? 'unknown error'}`, fix: installFix(exe, host.platform) };
  }
  if (!r.numpy) {
    return {
      ...base, torch: r.torch, available: false, reason: `${py} has PyTorch ${r.torch} but cannot import numpy: ${r.numpyError ?? 'unknown error'}`,
      fix: `apt-get install python3-numpy (Debian/Ubuntu system Python), or ${exe} -m pip install numpy`,
    };
  }
  const setup: TorchSetup = { ...base, torch: r.torch, numpy: r.numpy, available: true };
  if (r.cudaAvailable) {
    const n = r.gpuCount ?? 1;
    const name = `${r.gpu ?? 'a GPU'}${n > 1 ? ` (${n} GPUs)` : ''}`;
    // ROCm builds answer through torch.cuda; torch.version.hip tells them apart.
    return r.hipBuild ? { ...setup, device: 'rocm', gpu: `${name}, ROCm ${r.hipBuild}` } : { ...setup, device: 'cuda', gpu: `${name}, CUDA ${r.cudaBuild ?? '?'}` };
  }
  if (r.mpsAvailable) return { ...setup, device: 'mps', gpu: 'Apple GPU (Metal)' };
  const warned = r.cudaWarnings?.length ? `: ${r.cudaWarnings[0]}` : '';
  const hidden = r.cudaVisibleDevices !== undefined && r.cudaVisibleDevices !== null && /^\s*(-1)?\s*$/.test(r.cudaVisibleDevices);
  const cpu: TorchSetup = { ...setup, device: 'cpu' };
  if (r.cudaBuild || r.hipBuild) {
    const build = r.hipBuild ? `ROCm ${r.hipBuild}` : `CUDA ${r.cudaBuild}`;
    cpu.gpuReason = `PyTorch ${r.torch} is a ${build} build but sees no GPU${hidden ? ` (CUDA_VISIBLE_DEVICES="${r.cudaVisibleDevices}" hides them)` : ''}${warned}`;
    cpu.gpuFix = hidden ? 'unset CUDA_VISIBLE_DEVICES or list a GPU in it'
      : r.hipBuild ? 'check that rocm-smi lists the GPU and that this user may open /dev/kfd and /dev/dri'
        : `run nvidia-smi: the driver must be installed and support CUDA ${r.cudaBuild}; in a container, pass the GPU through (docker run --gpus all)`;
    return cpu;
  }
  if (r.mpsBuilt) {
    cpu.gpuReason = `PyTorch ${r.torch} has MPS but it is not available (it needs macOS 12.3+ on Apple silicon or an AMD GPU)`;
    cpu.gpuFix = 'update macOS, or train on the CPU';
    return cpu;
  }
  const platform = host.platform ?? process.platform;
  const nvidia = typeof host.nvidiaGpu === 'function' ? host.nvidiaGpu() : host.nvidiaGpu;
  if (nvidia && platform !== 'darwin') {
    cpu.gpuReason = `PyTorch ${r.torch} is a CPU-only build, but this machine has an NVIDIA GPU`;
    cpu.gpuFix = `install a CUDA build of PyTorch for ${exe} (the command for your CUDA version is on ${PYTORCH_CUDA_INSTALL}, e.g. ${exe} -m pip install torch --index-url https://download.pytorch.org/whl/cu124)`;
    return cpu;
  }
  cpu.gpuReason = platform === 'darwin' ? `PyTorch ${r.torch} has no MPS support` : `PyTorch ${r.torch} is a CPU-only build and no GPU is visible`;
  return cpu;
}

/** Runs the probe script; test seam for the subprocess. */
export type TorchProbeRunner = (python: string, timeoutMs: number) => Promise<{ raw?: RawTorchProbe; reason?: string; fix?: string }>;

export const runProbeScript: TorchProbeRunner = (python, timeoutMs) => new Promise((done) => {
  let out = '', err = '';
  let child;
  try {
    child = spawn(python, ['-c', PROBE_SCRIPT], { stdio: ['ignore', 'pipe', 'pipe'], windowsHide: true, timeout: timeoutMs, env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } });
  } catch (e) {
    done(notFound(python, (e as Error).message));
    return;
  }
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  child.once('error', (e) => done(notFound(python, (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : e.message)));
  child.once('close', (code, signal) => {
    try {
      done({ raw: JSON.parse(out.trim().split('\n').pop() ?? '') as RawTorchProbe });
    } catch {
      const how = signal === 'SIGTERM' ? `did not answer within ${+(timeoutMs / 1000).toFixed(1)} s` : `failed (${signal ?? `exit ${code}`})`;
      const said = err.trim().split('\n').filter((l) => l.trim()).slice(-3).join(' | ');
      done({ reason: `${python} ${how}${said ? `: ${said}` : ''}`, fix: `check that "${python} -c 'import torch'" works, or set engine.python to a working Python 3` });
    }
  });
});

function notFound(python: string, why: string): { reason: string; fix: string } {
  return {
    reason: `the Python interpreter ${python} was not found (${why})`,
    fix: `install Python 3 with PyTorch (${torchInstallFix('python3')}), or set engine.python (or VS Code's Python interpreter) to one that has it`,
  };
}

const cache = new Map<string, Promise<TorchSetup>>();

/**
 * The torch setup of `python`, probed once per process (an install needs a new job anyway) with a
 * timeout: importing a CUDA torch can take seconds, a hung driver forever.
 */
export function probeTorchSetup(python = defaultPython(), opts: { timeoutMs?: number; run?: TorchProbeRunner; nvidiaGpu?: () => boolean } = {}): Promise<TorchSetup> {
  const hit = cache.get(python);
  if (hit) return hit;
  const p = (opts.run ?? runProbeScript)(python, opts.timeoutMs ?? 30_000).then((r): TorchSetup => {
    if (!r.raw) return { python, available: false, reason: r.reason, fix: r.fix };
    return describeTorch(python, r.raw, { nvidiaGpu: opts.nvidiaGpu });
  });
  cache.set(python, p);
  return p;
}

/** Forgets cached probes (tests, and after an install the user says they made). */
export function clearTorchProbeCache(): void {
  cache.clear();
}
