// Loads the pinned face-api.js 1.7.15 bundle (with its own TF.js 4.22.0 and CPU backend) into Node, and its
// networks from faceguard's model dir, so that the reference comes from face-api.js itself.
//
// Where the JavaScript comes from: the npm tarball @vladmandic/face-api@1.7.15, verified against the sha256
// pinned in shared/docs/MODELS.md (the same tarball faceguard's `models fetch` installs weights from).
// Looked for in, in order: the cache folder, $FACEGUARD_TARBALL_DIR, else `npm pack` into the cache folder.
//
// Why dist/face-api.js and not @tensorflow/tfjs from npm: the IIFE bundle carries TF.js 4.22.0 with the pure
// JS CPU backend (tfjs-backend-cpu) inside it, the exact build face-api 1.7.15 was released with, so one
// verified tarball pins both. A second TF.js from npm would be a second engine whose tensors the bundle's ops
// do not accept. The only patch: its Node platform class calls a stubbed-out `util` shim (`this.util=BR()`),
// which is replaced by Node's own `util` (see shared/docs/MODELS.md "Reference implementation").
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');

const kPackage = '@vladmandic/face-api';
const kVersion = '1.7.15';
const kTarball = 'vladmandic-face-api-1.7.15.tgz';
const kSha256 = '0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031';  // shared/docs/MODELS.md
const kBundle = 'package/dist/face-api.js';
const kUtilShim = 'this.util=BR()';

function sha256_file(file) {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

function cache_dir() {
  if (process.env.FACEGUARD_REFERENCE_CACHE) return process.env.FACEGUARD_REFERENCE_CACHE;
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'faceguard', 'reference');
}

function default_model_dir() {
  // Same rule as faceguard::default_model_dir() (include/faceguard/models.hpp).
  if (process.env.FACEGUARD_MODELS) return process.env.FACEGUARD_MODELS;
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'faceguard', 'models');
}

// Returns the path of a verified tarball in the cache, fetching it when needed.
function ensure_tarball(log) {
  const dir = cache_dir();
  fs.mkdirSync(dir, { recursive: true });
  const cached = path.join(dir, kTarball);
  const candidates = [cached];
  if (process.env.FACEGUARD_TARBALL_DIR) candidates.push(path.join(process.env.FACEGUARD_TARBALL_DIR, kTarball));
  for (const c of candidates) {
    if (!fs.existsSync(c)) continue;
    const sum = sha256_file(c);
    if (sum !== kSha256) throw new Error(`${c}: sha256 ${sum} != pinned ${kSha256}; delete it and retry`);
    if (c !== cached) fs.copyFileSync(c, cached);
    return cached;
  }
  log(`fetching ${kPackage}@${kVersion} with npm pack into ${dir}`);
  execFileSync('npm', ['pack', `${kPackage}@${kVersion}`, '--pack-destination', dir, '--silent'],
    { stdio: ['ignore', 'ignore', 'inherit'] });
  if (!fs.existsSync(cached)) throw new Error(`npm pack did not produce ${cached}`);
  const sum = sha256_file(cached);
  if (sum !== kSha256) {
    fs.unlinkSync(cached);
    throw new Error(`npm pack ${kPackage}@${kVersion}: sha256 ${sum} != pinned ${kSha256}; refusing it`);
  }
  return cached;
}

// Unpacks dist/face-api.js next to the tarball (once) and returns its path.
function ensure_bundle(log) {
  const tgz = ensure_tarball(log);
  const dir = path.join(path.dirname(tgz), `face-api-${kVersion}`);
  const bundle = path.join(dir, kBundle);
  const stamp = path.join(dir, 'tarball.sha256');
  if (!fs.existsSync(bundle) || !fs.existsSync(stamp) || fs.readFileSync(stamp, 'utf8').trim() !== kSha256) {
    fs.mkdirSync(dir, { recursive: true });
    execFileSync('tar', ['-xzf', tgz, '-C', dir, kBundle]);
    fs.writeFileSync(stamp, `${kSha256}\n`);
  }
  return { bundle, tarball: tgz };
}

// Evaluates the bundle and returns the faceapi namespace with the CPU backend selected.
async function load_faceapi(log = () => {}) {
  const { bundle, tarball } = ensure_bundle(log);
  let src = fs.readFileSync(bundle, 'utf8');
  if (src.split(kUtilShim).length !== 2) throw new Error(`${bundle}: expected exactly one '${kUtilShim}'`);
  src = src.replace(kUtilShim, 'this.util=require("util")');
  // The IIFE assigns `var faceapi`; evaluate it as a function body and hand that back.
  // eslint-disable-next-line no-new-func
  const faceapi = new Function('require', `${src}\n;return faceapi;`)(require);
  await faceapi.tf.setBackend('cpu');
  await faceapi.tf.ready();
  if (faceapi.tf.getBackend() !== 'cpu') throw new Error('TF.js did not select the cpu backend');
  return {
    faceapi,
    provenance: {
      package: kPackage,
      version: kVersion,
      tarball_sha256: kSha256,
      bundle_sha256: sha256_file(bundle),
      tarball,
      tfjs: faceapi.tf.version,
      backend: faceapi.tf.getBackend(),
      node: process.version,
    },
  };
}

// Loads one network's TF.js weights manifest + .bin files, exactly the files faceguard's C++ side reads.
function load_net(faceapi, net, manifest_path) {
  const { tf } = faceapi;
  const groups = JSON.parse(fs.readFileSync(manifest_path, 'utf8'));
  const map = {};
  for (const group of groups) {
    const parts = group.paths.map((p) => fs.readFileSync(path.join(path.dirname(manifest_path), p)));
    const buf = Buffer.concat(parts);
    const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
    Object.assign(map, tf.io.decodeWeights(ab, group.weights));
  }
  net.loadFromWeightMap(map);
}

const kNets = {
  ssdMobilenetv1: 'ssd_mobilenetv1_model-weights_manifest.json',
  tinyFaceDetector: 'tiny_face_detector_model-weights_manifest.json',
  faceLandmark68Net: 'face_landmark_68_model-weights_manifest.json',
  faceLandmark68TinyNet: 'face_landmark_68_tiny_model-weights_manifest.json',
  faceRecognitionNet: 'face_recognition_model-weights_manifest.json',
};

function load_all_nets(faceapi, model_dir) {
  const dir = path.join(model_dir, `face-api-${kVersion}`, 'model');
  const files = {};
  for (const [net, file] of Object.entries(kNets)) {
    const p = path.join(dir, file);
    if (!fs.existsSync(p)) throw new Error(`${p} is missing: run \`faceguard models fetch\` first`);
    load_net(faceapi, faceapi.nets[net], p);
    files[file] = sha256_file(p);
  }
  return files;
}

module.exports = { load_faceapi, load_all_nets, default_model_dir, cache_dir, sha256_file, kVersion };
