// Registers TF.js's WebAssembly backend (@tensorflow/tfjs-backend-wasm 4.22.0 from npm, pinned in
// package-lock.json) against the TF.js engine inside face-api.js 1.7.15's bundle, so `bench --peers` can time
// face-api.js on wasm beside its pure-JS CPU backend with the same face-api code, ops and weights.
//
// Why this way and not face-api's own dist builds:
// - dist/face-api.node-wasm.js require()s @tensorflow/tfjs (the whole library: core, cpu, webgl, layers,
//   converter, data) from npm next to tfjs-backend-wasm: a second engine, not the bundle the reference runs.
// - the bundle dist/face-api.js already carries a 'wasm' backend, but its emscripten loader is the browser
//   build: Node's fs and path are empty shims there (and __dirname is undefined), so it cannot read the
//   .wasm file in Node without more patches to the bundle.
// - the npm package's dist/tf-backend-wasm.node.js is ES5 (its BackendWasm calls KernelBackend.call(this)),
//   which the bundle's ES2017 KernelBackend class refuses ("cannot be invoked without 'new'").
// So: the package's ES2017 UMD build (dist/tf-backend-wasm.es2017.js, real require('fs'/'path')), compiled
// with a require() that answers '@tensorflow/tfjs-core' with the bundle's own `faceapi.tf`. Its kernels
// register into the bundle's kernel registry, replacing the bundle's identical 4.22.0 wasm kernels; the
// bundle's 'wasm' backend factory is removed first so this one registers. The tfjs-core that npm installs as
// the package's peer is never loaded (checked below).
//
// The .wasm binaries are the package's dist/*.wasm, read from disk (setWasmPaths to that folder): nothing is
// fetched at run time. Threads: TF.js turns multi-threading off in Node (WASM_HAS_MULTITHREAD_SUPPORT is
// false when IS_NODE, tensorflow/tfjs#3830), and forcing it fails (Node's Worker refuses the blob: URL the
// backend builds for its pthread script), so the binary is tfjs-backend-wasm-simd.wasm (SIMD, one thread)
// where WebAssembly SIMD validates, else tfjs-backend-wasm.wasm: one thread, like the CPU backend.
'use strict';

const fs = require('fs');
const path = require('path');
const Module = require('module');
const { sha256_file } = require('./faceapi');

const kPackage = '@tensorflow/tfjs-backend-wasm';
const kBuild = 'dist/tf-backend-wasm.es2017.js';

let loaded = null;  // { exports, replaced } once compiled: a backend registers once per engine

function package_dir() {
  return path.dirname(require.resolve(`${kPackage}/package.json`, { paths: [path.join(__dirname, '..')] }));
}

// Compiles the package's UMD build as a CommonJS module whose '@tensorflow/tfjs-core' is `tf`.
function compile_against(tf, file) {
  const m = new Module(file, module);
  m.filename = file;
  m.paths = Module._nodeModulePaths(path.dirname(file));
  m.require = (id) => (id === '@tensorflow/tfjs-core' ? tf : Module.prototype.require.call(m, id));
  // Each of its ~160 registerKernel() calls warns that the bundle registered that wasm kernel already;
  // counted and reported once instead of printed.
  const warn = console.warn;
  let replaced = 0;
  console.warn = (...a) => {
    if (/is already registered/.test(String(a[0]))) replaced++;
    else warn(...a);
  };
  try {
    m._compile(fs.readFileSync(file, 'utf8'), file);
  } finally {
    console.warn = warn;
  }
  return { exports: m.exports, replaced };
}

// Registers and selects the wasm backend with `threads` threads; returns what it runs, for timings.json.
async function use_wasm_backend(faceapi, threads, log = () => {}) {
  const { tf } = faceapi;
  const dir = package_dir();
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  if (pkg.version !== tf.version['tfjs-core']) {
    throw new Error(`${kPackage} ${pkg.version} does not match the bundle's tfjs-core ${tf.version['tfjs-core']}`);
  }
  if (!loaded) {
    tf.removeBackend('wasm');
    loaded = compile_against(tf, path.join(dir, kBuild));
    const core = Object.keys(require.cache).filter((f) => f.includes(`${path.sep}tfjs-core${path.sep}`));
    if (core.length) throw new Error(`a second tfjs-core was loaded: ${core[0]}`);
  }
  const wasm = loaded.exports;
  wasm.setWasmPaths(`${path.join(dir, 'dist')}${path.sep}`);
  wasm.setThreadsCount(threads);
  if (!(await tf.setBackend('wasm'))) throw new Error('TF.js could not initialise the wasm backend');
  await tf.ready();
  const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
  const multithread = await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT');
  const binary = simd && multithread ? 'tfjs-backend-wasm-threaded-simd.wasm'
    : simd ? 'tfjs-backend-wasm-simd.wasm' : 'tfjs-backend-wasm.wasm';
  const info = {
    backend: tf.getBackend(),
    package: kPackage,
    version: pkg.version,
    js: kBuild,
    binary,
    binary_sha256: sha256_file(path.join(dir, 'dist', binary)),
    simd,
    multithread,
    threads_requested: threads,
    threads: wasm.getThreadsCount(),
    threads_note: multithread ? '' : 'TF.js runs wasm single-threaded in Node (WASM_HAS_MULTITHREAD_SUPPORT is false '
      + 'when IS_NODE, tensorflow/tfjs#3830), so only 1 thread is timed',
    bundle_kernels_replaced: loaded.replaced,
  };
  log(`wasm backend: ${info.version}, ${binary}, ${info.threads} thread(s)`);
  return info;
}

module.exports = { use_wasm_backend };
