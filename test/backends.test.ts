import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import {
  BACKEND_LADDER, gpuSetupReport, initBackend, probeBackends, type BackendHooks, type BackendProbe, type ConcreteBackend,
} from '../src/core/engine/backends';
import { checkLibrary, parseLdconfig, isSoftwareAdapterName, packageVersion } from '../src/core/engine/backend-sysinfo';
import { IdcError } from '../src/core/errors';

// ---------------------------------------------------------------- ladder logic (injected probes)

const NOT_INSTALLED: Record<ConcreteBackend, Partial<BackendProbe>> = {
  'tensorflow-gpu': { reason: '@tensorflow/tfjs-node-gpu is not installed', fix: 'npm i @tensorflow/tfjs-node-gpu; needs CUDA 11.2 + cuDNN 8.1' },
  webgpu: { reason: 'the webgpu package (Dawn) is not installed', fix: 'npm install webgpu @tensorflow/tfjs-backend-webgpu@4.22.0' },
  tensorflow: { reason: '@tensorflow/tfjs-node is not installed', fix: 'npm i @tensorflow/tfjs-node' },
  wasm: { reason: 'tfjs-backend-wasm-simd.wasm is missing', fix: 'reinstall the extension' },
  cpu: { reason: 'broken install' },
};
const LLVMPIPE: Partial<BackendProbe> = {
  available: false, softwareAdapter: true, adapter: 'llvmpipe: Mesa 25.0.7',
  reason: 'only a software adapter (llvmpipe), which runs on the CPU slower than wasm', fix: "install your GPU's Vulkan driver",
};

/** Fake machine: `available` lists the usable backends, `override` patches single probes. */
function fake(available: ConcreteBackend[], override: Partial<Record<ConcreteBackend, Partial<BackendProbe>>> = {}, failing: ConcreteBackend[] = []) {
  const probed: ConcreteBackend[] = [];
  const activated: Array<{ name: ConcreteBackend; software: boolean }> = [];
  const hooks: BackendHooks = {
    async probe(name) {
      probed.push(name);
      const base: BackendProbe = available.includes(name)
        ? { name, available: true, detail: `${name} detail` }
        : { name, available: false, ...NOT_INSTALLED[name] };
      return { ...base, ...override[name] };
    },
    async activate(name, opts) {
      if (failing.includes(name)) throw new Error(`${name} exploded`);
      activated.push({ name, software: opts.allowSoftwareAdapter === true });
    },
  };
  return { hooks, probed, activated };
}

async function rejectsIdc(p: Promise<unknown>, check: (e: IdcError) => void): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof IdcError, `expected IdcError, got ${e}`);
    check(e);
    return true;
  });
}

describe('backend ladder', () => {
  test('order is tensorflow-gpu → webgpu → tensorflow → wasm → cpu', () => {
    assert.deepEqual(BACKEND_LADDER, ['tensorflow-gpu', 'webgpu', 'tensorflow', 'wasm', 'cpu']);
  });

  test('auto takes the first available and stops probing there', async () => {
    const f = fake(['tensorflow-gpu', 'webgpu', 'tensorflow', 'wasm', 'cpu']);
    const r = await initBackend('auto', { hooks: f.hooks });
    assert.equal(r.name, 'tensorflow-gpu');
    assert.deepEqual(f.probed, ['tensorflow-gpu']);
    assert.deepEqual(f.activated, [{ name: 'tensorflow-gpu', software: false }]);
    assert.match(r.summary, /^Using tensorflow-gpu \(/);
    assert.doesNotMatch(r.summary, /Skipped/);
  });

  for (const [avail, want] of [
    [['webgpu', 'tensorflow', 'wasm', 'cpu'], 'webgpu'],
    [['tensorflow', 'wasm', 'cpu'], 'tensorflow'],
    [['wasm', 'cpu'], 'wasm'],
    [['cpu'], 'cpu'],
  ] as Array<[ConcreteBackend[], ConcreteBackend]>) {
    test(`auto with ${avail.join(', ')} picks ${want}`, async () => {
      const f = fake(avail);
      const r = await initBackend('auto', { hooks: f.hooks });
      assert.equal(r.name, want);
      assert.deepEqual(r.probes.map((p) => p.name), BACKEND_LADDER.slice(0, BACKEND_LADDER.indexOf(want) + 1));
      assert.deepEqual(f.activated.map((a) => a.name), [want]);
    });
  }

  test('auto skips a software WebGPU adapter and says why', async () => {
    const f = fake(['wasm', 'cpu'], { webgpu: LLVMPIPE });
    const r = await initBackend('auto', { hooks: f.hooks, allowSoftwareAdapter: true });
    assert.equal(r.name, 'wasm');
    assert.ok(!f.activated.some((a) => a.name === 'webgpu'), 'webgpu must not start on llvmpipe');
    assert.match(r.summary, /^Using wasm \(WebAssembly \+ IDC training kernels/);
    assert.match(r.summary, /Skipped: tensorflow-gpu — @tensorflow\/tfjs-node-gpu is not installed \(npm i @tensorflow\/tfjs-node-gpu; needs CUDA 11\.2 \+ cuDNN 8\.1\)/);
    assert.match(r.summary, /webgpu — only a software adapter \(llvmpipe\)/);
    assert.match(r.summary, /tensorflow — @tensorflow\/tfjs-node is not installed \(npm i @tensorflow\/tfjs-node\)/);
  });

  test('auto never asks activation to accept a software adapter', async () => {
    const f = fake(['webgpu', 'wasm']);
    await initBackend('auto', { hooks: f.hooks, allowSoftwareAdapter: true });
    assert.deepEqual(f.activated, [{ name: 'webgpu', software: false }]);
  });

  test('auto moves on when an available backend fails to start', async () => {
    const f = fake(['webgpu', 'wasm', 'cpu'], {}, ['webgpu', 'wasm']);
    const r = await initBackend('auto', { hooks: f.hooks });
    assert.equal(r.name, 'cpu');
    assert.match(r.summary, /webgpu — failed to start: webgpu exploded/);
    assert.match(r.summary, /wasm — failed to start: wasm exploded/);
  });

  test('auto with nothing usable throws an IdcError listing every reason', async () => {
    const f = fake([]);
    await rejectsIdc(initBackend('auto', { hooks: f.hooks }), (e) => {
      assert.equal(e.code, 'BACKEND_UNAVAILABLE');
      for (const n of BACKEND_LADDER) assert.match(e.message, new RegExp(`${n} — `));
    });
  });

  test('an explicit choice probes and starts only that backend', async () => {
    const f = fake(['tensorflow-gpu', 'webgpu', 'tensorflow', 'wasm', 'cpu']);
    const r = await initBackend('cpu', { hooks: f.hooks });
    assert.equal(r.name, 'cpu');
    assert.deepEqual(f.probed, ['cpu']);
    assert.deepEqual(f.activated.map((a) => a.name), ['cpu']);
    assert.match(r.summary, /^Using cpu .* as configured\.$/);
  });

  test('an unavailable explicit choice throws an IdcError naming the fix', async () => {
    const f = fake(['wasm', 'cpu']);
    await rejectsIdc(initBackend('tensorflow-gpu', { hooks: f.hooks }), (e) => {
      assert.equal(e.code, 'BACKEND_UNAVAILABLE');
      assert.match(e.message, /tensorflow-gpu backend is not available: @tensorflow\/tfjs-node-gpu is not installed/);
      assert.match(e.hint ?? '', /npm i @tensorflow\/tfjs-node-gpu/);
      assert.match(e.hint ?? '', /"auto"/);
    });
    await rejectsIdc(initBackend('tensorflow', { hooks: f.hooks }), (e) => assert.match(e.hint ?? '', /npm i @tensorflow\/tfjs-node\b/));
    await rejectsIdc(initBackend('webgpu', { hooks: f.hooks }), (e) => assert.match(e.hint ?? '', /npm install webgpu @tensorflow\/tfjs-backend-webgpu@4\.22\.0/));
    assert.deepEqual(f.activated, []);
  });

  test('explicit webgpu on a software adapter needs allowSoftwareAdapter', async () => {
    const f = fake(['wasm'], { webgpu: LLVMPIPE });
    await rejectsIdc(initBackend('webgpu', { hooks: f.hooks }), (e) => {
      assert.match(e.message, /only a software adapter \(llvmpipe\)/);
      assert.match(e.hint ?? '', /slower than wasm/);
    });
    assert.deepEqual(f.activated, []);
    const r = await initBackend('webgpu', { hooks: f.hooks, allowSoftwareAdapter: true });
    assert.equal(r.name, 'webgpu');
    assert.deepEqual(f.activated, [{ name: 'webgpu', software: true }]);
    assert.match(r.summary, /software adapter/);
  });

  test('IDC_ALLOW_SOFTWARE_ADAPTER=1 lets an explicit webgpu use a software adapter, never auto', async () => {
    process.env.IDC_ALLOW_SOFTWARE_ADAPTER = '1';
    try {
      const f = fake(['wasm'], { webgpu: LLVMPIPE });
      const r = await initBackend('webgpu', { hooks: f.hooks });
      assert.equal(r.name, 'webgpu');
      assert.deepEqual(f.activated, [{ name: 'webgpu', software: true }]);
      const g = fake(['wasm'], { webgpu: LLVMPIPE });
      assert.equal((await initBackend('auto', { hooks: g.hooks })).name, 'wasm');
    } finally {
      delete process.env.IDC_ALLOW_SOFTWARE_ADAPTER;
    }
  });

  test('an explicit choice that fails to start throws an IdcError', async () => {
    const f = fake(['wasm'], {}, ['wasm']);
    await rejectsIdc(initBackend('wasm', { hooks: f.hooks }), (e) => assert.match(e.message, /wasm backend failed to start: wasm exploded/));
  });

  test('probeBackends reports in ladder order', async () => {
    const f = fake(['wasm', 'cpu'], { webgpu: LLVMPIPE });
    const probes = await probeBackends({ hooks: f.hooks });
    assert.deepEqual(probes.map((p) => [p.name, p.available]), [
      ['tensorflow-gpu', false], ['webgpu', false], ['tensorflow', false], ['wasm', true], ['cpu', true],
    ]);
  });
});

// ---------------------------------------------------------------- system lookups (pure parts)

describe('system lookups', () => {
  const LDCONFIG = [
    '42 libs found in cache `/etc/ld.so.cache\'',
    '\tlibcudart.so.13 (libc6,x86-64) => /usr/local/cuda-13.0/lib/libcudart.so.13',
    '\tlibcudart.so (libc6,x86-64) => /usr/local/cuda-13.0/lib/libcudart.so',
    '\tlibvulkan.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libvulkan.so.1',
    '\tlibcudnn.so.8 (libc6,x86-64) => /opt/cudnn/lib/libcudnn.so.8',
  ].join('\n');

  test('parseLdconfig and checkLibrary find libraries and other versions', { skip: process.arch !== 'x64' && 'ldconfig sample is x86-64' }, () => {
    const index = parseLdconfig(LDCONFIG);
    assert.deepEqual(checkLibrary('libcudnn.so.8', index), { soname: 'libcudnn.so.8', found: '/opt/cudnn/lib/libcudnn.so.8', others: [] });
    const cudart = checkLibrary('libcudart.so.11.0', index);
    assert.equal(cudart.found, undefined);
    assert.deepEqual(cudart.others, ['libcudart.so.13 (/usr/local/cuda-13.0/lib)']);
  });

  test('software adapters are recognised by name', () => {
    assert.ok(isSoftwareAdapterName('llvmpipe: Mesa 25.0.7 (LLVM 15.0.6)'));
    assert.ok(isSoftwareAdapterName(undefined, 'SwiftShader Device (Subzero)'));
    assert.ok(!isSoftwareAdapterName('NVIDIA H100 80GB HBM3', 'nvidia'));
  });
});

// ---------------------------------------------------------------- this machine

describe('real probes on this machine', () => {
  test('tfjs-node packages are reported as not installed, with the npm command', async (t) => {
    const probes = await probeBackends();
    assert.deepEqual(probes.map((p) => p.name), BACKEND_LADDER);
    const by = Object.fromEntries(probes.map((p) => [p.name, p]));
    for (const [name, pkg] of [['tensorflow', '@tensorflow/tfjs-node'], ['tensorflow-gpu', '@tensorflow/tfjs-node-gpu']] as const) {
      if (packageVersion(pkg)) {
        t.diagnostic(`${pkg} is installed here: not-installed check skipped`);
        continue;
      }
      assert.equal(by[name].available, false);
      assert.match(by[name].reason ?? '', new RegExp(`${pkg.replace('/', '\\/')} is not installed`));
      assert.match(by[name].fix ?? '', new RegExp(`npm i ${pkg.replace('/', '\\/')}`));
    }
    assert.equal(by.wasm.available, true);
    assert.equal(by.cpu.available, true);
    if (by.webgpu.softwareAdapter) assert.equal(by.webgpu.available, false, 'a software adapter is never "available"');
    for (const p of probes) if (!p.available) assert.ok(p.reason, `${p.name} needs a reason`);
  });

  test('wasm initialises and runs a conv2d', async () => {
    const r = await initBackend('wasm');
    assert.equal(r.name, 'wasm');
    assert.equal(tf.getBackend(), 'wasm');
    assert.match(r.summary, /^Using wasm \(WebAssembly \+ IDC training kernels/);
    const y = tf.tidy(() => tf.conv2d(tf.ones([1, 4, 4, 2]) as tf.Tensor4D, tf.ones([3, 3, 2, 3]) as tf.Tensor4D, 1, 'same'));
    const v = Array.from(y.dataSync());
    y.dispose();
    // Corner pixels see 2x2 inputs x 2 channels, edges 2x3, centre 3x3.
    assert.deepEqual(v.slice(0, 3), [8, 8, 8]);
    assert.deepEqual(v.slice(3, 6), [12, 12, 12]);
    assert.deepEqual(v.slice(15, 18), [18, 18, 18]);
  });

  test('auto picks the first available probe and never a software adapter', async () => {
    const r = await initBackend('auto');
    const first = r.probes.find((p) => p.available);
    assert.equal(r.name, first?.name);
    assert.equal(tf.getBackend(), r.name === 'tensorflow-gpu' ? 'tensorflow' : r.name);
    assert.ok(!r.probes.some((p) => p.name === 'webgpu' && p.softwareAdapter && r.name === 'webgpu'));
    await initBackend('wasm');
  });

  test('gpuSetupReport covers both GPU paths in plain words', async () => {
    const text = await gpuSetupReport();
    assert.match(text, /^GPU setup check/);
    assert.match(text, /WebGPU \(Dawn/);
    assert.match(text, /TensorFlow GPU \(@tensorflow\/tfjs-node-gpu/);
    assert.match(text, /→ (Next|WebGPU can|tfjs-node-gpu can)/);
    assert.match(text, /training would use: \S+/);
    if (process.platform === 'linux') assert.match(text, /libcudart\.so\.11\.0/);
  });
});
