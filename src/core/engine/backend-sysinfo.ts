import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * What the machine offers to the GPU paths: shared libraries the dynamic loader would find,
 * NVIDIA devices and driver, Vulkan drivers. Read-only and cheap; every lookup tolerates a
 * missing tool, since the answers only feed advice.
 */

/** soname → paths, as `ldconfig -p` lists them plus LD_LIBRARY_PATH (searched first by dlopen). */
export type LibIndex = Map<string, string[]>;

/** Parses `ldconfig -p`: lines like "\tlibcudart.so.11.0 (libc6,x86-64) => /usr/lib/libcudart.so.11.0". */
export function parseLdconfig(text: string): LibIndex {
  const index: LibIndex = new Map();
  for (const line of text.split('\n')) {
    const m = /^\s*(\S+)\s+\(([^)]*)\)\s+=>\s+(.+?)\s*$/.exec(line);
    if (!m) continue;
    // A 64-bit process cannot load 32-bit libraries listed alongside.
    if (process.arch === 'x64' && !/x86-64/.test(m[2])) continue;
    add(index, m[1], m[3]);
  }
  return index;
}

function add(index: LibIndex, name: string, file: string): void {
  const list = index.get(name) ?? [];
  if (!list.includes(file)) list.push(file);
  index.set(name, list);
}

function runQuiet(cmd: string, args: string[], timeoutMs = 5000): string | null {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return null;
  }
}

let cachedIndex: LibIndex | undefined;

/** Libraries dlopen would find on Linux; empty elsewhere. Cached: installs need a restart anyway. */
export function libraryIndex(): LibIndex {
  if (cachedIndex) return cachedIndex;
  const index: LibIndex = new Map();
  if (process.platform === 'linux') {
    for (const dir of (process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean)) {
      try {
        for (const f of fs.readdirSync(dir)) if (/\.so(\.|$)/.test(f)) add(index, f, path.join(dir, f));
      } catch { /* stale entry */ }
    }
    // ldconfig lives in /sbin, often off a normal user's PATH.
    for (const cmd of ['ldconfig', '/sbin/ldconfig', '/usr/sbin/ldconfig']) {
      const out = runQuiet(cmd, ['-p']);
      if (out == null) continue;
      for (const [k, v] of parseLdconfig(out)) for (const f of v) add(index, k, f);
      break;
    }
  }
  cachedIndex = index;
  return index;
}

export interface LibCheck {
  soname: string;
  /** Where the loader would find it; undefined when missing. */
  found?: string;
  /** Other versions present (e.g. libcudart.so.13 when .so.11.0 is wanted), as "soname (path)". */
  others: string[];
}

export function checkLibrary(soname: string, index: LibIndex = libraryIndex()): LibCheck {
  const found = index.get(soname)?.[0];
  const stem = soname.replace(/\.so(\..*)?$/, '.so.');
  const others = [...index.entries()]
    .filter(([k]) => k !== soname && k.startsWith(stem))
    .map(([k, v]) => `${k} (${path.dirname(v[0])})`);
  return { soname, found, others };
}

/** CUDA 11.2 / cuDNN 8.1 libraries that libtensorflow 2.9 (tfjs-node-gpu 4.x) opens at start-up. */
export const CUDA11_LIBS = [
  'libcudart.so.11.0', 'libcublas.so.11', 'libcublasLt.so.11', 'libcufft.so.10',
  'libcurand.so.10', 'libcusolver.so.11', 'libcusparse.so.11', 'libcudnn.so.8',
];

export interface NvidiaInfo {
  /** /dev/nvidia0 etc. */
  devices: string[];
  /** libcuda.so.1, from the NVIDIA driver. */
  driverLib?: string;
  smiPath?: string;
  /** "NVIDIA H100 80GB HBM3, 550.54.15, 81559 MiB" per GPU, when nvidia-smi answers. */
  gpus: string[];
}

function which(cmd: string): string | undefined {
  const exts = process.platform === 'win32' ? ['.exe', ''] : [''];
  for (const dir of (process.env.PATH ?? '').split(path.delimiter).filter(Boolean)) {
    for (const ext of exts) {
      const p = path.join(dir, cmd + ext);
      try {
        if (fs.statSync(p).isFile()) return p;
      } catch { /* not here */ }
    }
  }
  return undefined;
}

export function nvidiaInfo(index: LibIndex = libraryIndex()): NvidiaInfo {
  let devices: string[] = [];
  try {
    devices = fs.readdirSync('/dev').filter((f) => /^nvidia\d+$/.test(f)).map((f) => `/dev/${f}`);
  } catch { /* no /dev (Windows) */ }
  const smiPath = which('nvidia-smi');
  const out = smiPath ? runQuiet(smiPath, ['--query-gpu=name,driver_version,memory.total', '--format=csv,noheader']) : null;
  const gpus = out ? out.split('\n').map((s) => s.trim()).filter(Boolean) : [];
  return { devices, driverLib: index.get('libcuda.so.1')?.[0], smiPath, gpus };
}

export interface VulkanInfo {
  /** Path of libvulkan.so.1 (the loader) when the dynamic loader finds it (Linux only). */
  loader?: string;
  /** Installed driver manifests (ICD json files, or VK_DRIVER_FILES), e.g. "lvp_icd.json (software: lavapipe)". */
  drivers: string[];
  /** /dev/dri render nodes: hardware a Mesa driver can use. */
  renderNodes: string[];
}

const SOFTWARE_ICD = /lvp|lavapipe|swiftshader|llvmpipe/i;

export function vulkanInfo(index: LibIndex = libraryIndex()): VulkanInfo {
  const dirs = new Set<string>();
  const env = process.env.VK_DRIVER_FILES ?? process.env.VK_ICD_FILENAMES;
  const files: string[] = env ? env.split(path.delimiter).filter(Boolean) : [];
  if (!env) {
    const dataDirs = (process.env.XDG_DATA_DIRS || '/usr/local/share:/usr/share').split(':');
    for (const d of ['/etc', ...dataDirs]) dirs.add(path.join(d, 'vulkan', 'icd.d'));
    for (const d of dirs) {
      try {
        for (const f of fs.readdirSync(d)) if (f.endsWith('.json')) files.push(path.join(d, f));
      } catch { /* absent */ }
    }
  }
  const drivers = files.map((f) => `${path.basename(f)}${SOFTWARE_ICD.test(path.basename(f)) ? ' (software: lavapipe)' : ''}${fs.existsSync(f) ? '' : ' (missing file)'}`);
  let renderNodes: string[] = [];
  try {
    renderNodes = fs.readdirSync('/dev/dri').filter((f) => f.startsWith('renderD')).map((f) => `/dev/dri/${f}`);
  } catch { /* none */ }
  return { loader: index.get('libvulkan.so.1')?.[0], drivers, renderNodes };
}

/** True when an adapter description names a CPU rasteriser rather than a GPU. */
export function isSoftwareAdapterName(...names: Array<string | undefined>): boolean {
  return names.some((n) => n != null && /llvmpipe|lavapipe|swiftshader|softpipe|software|microsoft basic render/i.test(n));
}

/** Version from a package's package.json, or undefined when it does not resolve. */
export function packageVersion(pkg: string): string | undefined {
  try {
    const file = require.resolve(`${pkg}/package.json`);
    return (JSON.parse(fs.readFileSync(file, 'utf8')) as { version?: string }).version ?? '?';
  } catch {
    return undefined;
  }
}
