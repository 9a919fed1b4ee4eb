#!/usr/bin/env node
// Writes the numerical reference for faceguard's parity tests by running face-api.js 1.7.15 itself.
//
//   node make_reference.js [--out DIR] [--models DIR] [--runs N] [--no-timing | --timing-only]
//
// --timing-only re-times face-api.js on an existing reference (e.g. on a quiet machine) and rewrites only
// timings.json.
//
// DIR (default <repo>/build/reference) receives:
//   reference.json           index: provenance (package, tarball and bundle sha256, TF.js version), model file
//                            sha256s, options used, the list of sample files below
//   sampleN.png              the RGB pixels every number of sampleN.json was computed from (see lib/image.js)
//   sampleN.json             SSD detections (default options), Tiny detections (416), and per SSD face: the
//                            68 landmarks of both landmark nets, the dlib-aligned rect and 128-D descriptor
//                            from face-api's withFaceLandmarks().withFaceDescriptors() pipeline
//   sampleN_faceK_chip150.png / .f32   the 150x150 recognition-net input face-api built for that face
//                            (PNG rounded to 8 bit; .f32 raw little-endian float32 HWC RGB, unrounded)
//   raw.json + raw_*.png     network-level vectors on fixed inputs (no resize, no padding on either side):
//                            descriptor of a 150x150 chip, landmarks of a 112x112 chip, SSD on 512x512,
//                            Tiny on 416x416 (detections at a low threshold plus the raw output tensors)
//   timings.json             face-api.js stage timings on this machine (warm-up + median of N runs): on TF.js's
//                            CPU backend (`stages`), then on its wasm backend (`wasm`, see lib/wasm.js)
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { performance } = require('perf_hooks');

const { load_faceapi, load_all_nets, default_model_dir, sha256_file } = require('./lib/faceapi');
const img = require('./lib/image');
const { use_wasm_backend } = require('./lib/wasm');

const kRepo = path.resolve(__dirname, '..', '..');
const kSamples = [1, 2, 3, 4, 5, 6];
const kTinyInputSize = 416;  // face-api's TinyFaceDetectorOptions default and faceguard's kTiny default
// Low thresholds for the fixed-input detector checks: many boxes, so box decoding is compared well beyond
// the few faces that pass the default 0.5.
const kRawSsdMinScore = 0.05;
const kRawTinyMinScore = 0.05;

function parse_args(argv) {
  const a = { out: path.join(kRepo, 'build', 'reference'), models: default_model_dir(), runs: 3, timing: true };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${k} needs a value`);
      return argv[++i];
    };
    if (k === '--out') a.out = path.resolve(next());
    else if (k === '--models') a.models = path.resolve(next());
    else if (k === '--runs') a.runs = Math.max(1, parseInt(next(), 10));
    else if (k === '--no-timing') a.timing = false;
    else if (k === '--timing-only') a.timing_only = true;
    else if (k === '-h' || k === '--help') {
      process.stdout.write('usage: make_reference.js [--out DIR] [--models DIR] [--runs N] [--no-timing | --timing-only]\n');
      process.exit(0);
    } else throw new Error(`unknown argument ${k}`);
  }
  return a;
}

const log = (m) => process.stderr.write(`[reference] ${m}\n`);
const box_json = (b) => ({ x: b.x, y: b.y, width: b.width, height: b.height });
const points_json = (pts) => pts.map((p) => [p.x, p.y]);
const l2 = (a, b) => Math.sqrt(a.reduce((s, v, i) => s + (v - b[i]) ** 2, 0));

function write_f32(file, tensor) {
  const data = tensor.dataSync();
  fs.writeFileSync(file, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
}

// face-api's own pipeline objects, built once per image so SSD runs once: this is exactly the chain
// detectAllFaces(input, SsdMobilenetv1Options()).withFaceLandmarks(tiny).withFaceDescriptors() creates.
function landmarks_task(faceapi, dets, input, tiny) {
  const parent = Promise.resolve(dets.map((d) => faceapi.extendWithFaceDetection({}, d)));
  return new faceapi.DetectAllFaceLandmarksTask(parent, input, tiny);
}

// The 150x150 input face-api's recognition net sees for one aligned rect (float, before normalisation).
async function recognition_chip(faceapi, input, rect) {
  const faces = await faceapi.extractFaceTensors(input, [rect]);
  const chip = new faceapi.NetInput(faces).toBatchTensor(150, true);
  faces.forEach((f) => f.dispose());
  return chip;  // [1,150,150,3] float32
}

async function sample_reference(faceapi, name, image, out) {
  const { tf } = faceapi;
  const input = img.to_tensor(tf, image);
  const W = image.width;
  const H = image.height;
  const ssd = await faceapi.detectAllFaces(input, new faceapi.SsdMobilenetv1Options());
  const tiny = await faceapi.detectAllFaces(input, new faceapi.TinyFaceDetectorOptions({ inputSize: kTinyInputSize }));
  const full = await landmarks_task(faceapi, ssd, input, false).withFaceDescriptors();
  const tinylm = await landmarks_task(faceapi, ssd, input, true);
  if (full.length !== ssd.length || tinylm.length !== ssd.length) throw new Error(`${name}: a face lost its landmarks`);

  const faces = [];
  for (let k = 0; k < full.length; k++) {
    const r = full[k];
    const rect = r.landmarks.align(null, { useDlibAlignment: true });  // ComputeAllFaceDescriptorsTask's rect
    const chip = await recognition_chip(faceapi, input, rect);
    const chip_png = `${name}_face${k}_chip150.png`;
    const chip_f32 = `${name}_face${k}_chip150.f32`;
    const chip8 = img.from_tensor(tf, chip);
    img.write_png(path.join(out, chip_png), chip8);
    write_f32(path.join(out, chip_f32), chip);
    chip.dispose();
    // What an 8-bit chip costs: the descriptor of the rounded chip against face-api's float-chip descriptor.
    const chip8_t = img.to_tensor(tf, chip8);
    const desc8 = Array.from(await faceapi.nets.faceRecognitionNet.computeFaceDescriptor(chip8_t));
    chip8_t.dispose();
    const descriptor = Array.from(r.descriptor);
    faces.push({
      detection: { box: box_json(r.detection.box), score: r.detection.score },
      // The floored, clipped crop both landmark nets ran on (extractFaceTensors).
      landmark_crop: box_json(r.detection.forSize(W, H).box.clipAtImageBorders(W, H)),
      landmarks68: points_json(r.landmarks.positions),
      landmarks68_relative: points_json(r.unshiftedLandmarks.relativePositions),
      landmarks68_tiny: points_json(tinylm[k].landmarks.positions),
      aligned_rect: box_json(rect),
      chip_crop: box_json(rect.clipAtImageBorders(W, H)),
      chip150_png: chip_png,
      chip150_f32: chip_f32,
      descriptor,
      // The descriptor of chip150_png (the chip rounded to 8 bit) and its L2 distance to `descriptor`: the
      // floor an 8-bit chip path can reach against face-api's float chip.
      descriptor_8bit_chip: desc8,
      descriptor_8bit_chip_l2: l2(descriptor, desc8),
    });
  }
  input.dispose();
  return {
    image: { png: `${name}.png`, width: W, height: H },
    ssd: ssd.map((d) => ({ box: box_json(d.box), score: d.score })),
    tiny: tiny.map((d) => ({ box: box_json(d.box), score: d.score })),
    faces,
  };
}

// Fixed network-level inputs cut from the samples by face-api's own preprocessing, saved as 8-bit PNGs and
// fed back as int32 tensors of exactly the network's input size, so neither side pads or resizes.
async function raw_reference(faceapi, samples, out) {
  const { tf } = faceapi;
  const s1 = img.to_tensor(tf, samples[0].image);
  const face0 = samples[0].ref.faces[0];
  if (!face0) throw new Error('sample1 has no SSD face');
  const raw = {};

  // Recognition: the chip face-api built for sample1 face 0.
  {
    const chip = await recognition_chip(faceapi, s1, new faceapi.Rect(face0.aligned_rect.x, face0.aligned_rect.y,
      face0.aligned_rect.width, face0.aligned_rect.height));
    const c8 = img.from_tensor(tf, chip);
    chip.dispose();
    img.write_png(path.join(out, 'raw_chip150.png'), c8);
    const t = img.to_tensor(tf, c8);
    raw.recognition = { png: 'raw_chip150.png', descriptor: Array.from(await faceapi.nets.faceRecognitionNet.computeFaceDescriptor(t)) };
    t.dispose();
  }
  // Landmarks: the 112x112 net input face-api built from sample1 face 0's crop (centred pad + resize).
  {
    const crops = await faceapi.extractFaceTensors(s1, [new faceapi.Rect(face0.landmark_crop.x, face0.landmark_crop.y,
      face0.landmark_crop.width, face0.landmark_crop.height)]);
    const t112 = new faceapi.NetInput(crops).toBatchTensor(112, true);
    crops.forEach((c) => c.dispose());
    const c8 = img.from_tensor(tf, t112);
    t112.dispose();
    img.write_png(path.join(out, 'raw_chip112.png'), c8);
    const t = img.to_tensor(tf, c8);
    const full = await faceapi.nets.faceLandmark68Net.detectLandmarks(t);
    const tiny = await faceapi.nets.faceLandmark68TinyNet.detectLandmarks(t);
    t.dispose();
    raw.landmarks = { png: 'raw_chip112.png', landmarks68: points_json(full.positions), landmarks68_tiny: points_json(tiny.positions) };
  }
  // SSD: sample1 padded bottom/right and resized to 512 by face-api (toBatchTensor(512, false)).
  {
    const t512 = new faceapi.NetInput([s1]).toBatchTensor(512, false);
    const c8 = img.from_tensor(tf, t512);
    t512.dispose();
    img.write_png(path.join(out, 'raw_ssd512.png'), c8);
    const t = img.to_tensor(tf, c8);
    const dets = await faceapi.nets.ssdMobilenetv1.locateFaces(t, { minConfidence: kRawSsdMinScore, maxResults: 100 });
    const { boxes, scores } = await faceapi.nets.ssdMobilenetv1.forward(t);
    raw.ssd = {
      png: 'raw_ssd512.png',
      min_score: kRawSsdMinScore,
      detections: dets.map((d) => ({ box: box_json(d.box), score: d.score })),
      // All 5118 priors: decoded [ymin, xmin, ymax, xmax] in [0,1] of the 512 input (before clamping) and scores.
      boxes: boxes[0].arraySync(),
      scores: Array.from(scores[0].dataSync()),
    };
    boxes.forEach((b) => b.dispose());
    scores.forEach((s) => s.dispose());
    t.dispose();
  }
  // Tiny: sample2 padded bottom/right and resized to 416.
  {
    const s2 = img.to_tensor(tf, samples[1].image);
    const t416 = new faceapi.NetInput([s2]).toBatchTensor(kTinyInputSize, false);
    s2.dispose();
    const c8 = img.from_tensor(tf, t416);
    t416.dispose();
    img.write_png(path.join(out, 'raw_tiny416.png'), c8);
    const t = img.to_tensor(tf, c8);
    const dets = await faceapi.nets.tinyFaceDetector.locateFaces(t, { inputSize: kTinyInputSize, scoreThreshold: kRawTinyMinScore });
    const grid = await faceapi.nets.tinyFaceDetector.forward(t, kTinyInputSize);
    raw.tiny = {
      png: 'raw_tiny416.png',
      input_size: kTinyInputSize,
      min_score: kRawTinyMinScore,
      detections: dets.map((d) => ({ box: box_json(d.box), score: d.score })),
      // The raw [13, 13, 25] output (5 anchors x [tx, ty, tw, th, score logit]) before any decoding.
      output_shape: grid.shape.slice(1),
      output: Array.from(grid.dataSync()),
    };
    grid.dispose();
    t.dispose();
  }
  s1.dispose();
  return raw;
}

// Wall and CPU time of one call, warm-up first. CPU time (this process, user + system) is what to read on a
// shared machine: TF.js's CPU backend is single-threaded, so on an idle core the two agree.
async function time_ms(fn, runs) {
  await fn();  // warm-up: TF.js CPU kernels and weight layouts are prepared on first use
  const wall = [];
  const cpu = [];
  for (let i = 0; i < runs; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await fn();  // eslint-disable-line no-await-in-loop
    wall.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  const med = (v) => v.slice().sort((a, b) => a - b)[Math.floor(v.length / 2)];
  return {
    runs, min_ms: Math.min(...wall), median_ms: med(wall), max_ms: Math.max(...wall),
    cpu_min_ms: Math.min(...cpu), cpu_median_ms: med(cpu),
  };
}

// The stages on TF.js's current backend; the inputs are built on it too. Also hands back the recognition
// chip's pixels so another backend's descriptor can be checked on exactly this chip.
async function time_stages(faceapi, sample, runs) {
  const input = img.to_tensor(faceapi.tf, sample.image);
  const face = sample.ref.faces[0];
  const crop = (await faceapi.extractFaceTensors(input, [new faceapi.Rect(face.landmark_crop.x, face.landmark_crop.y,
    face.landmark_crop.width, face.landmark_crop.height)]))[0];
  const chip = await recognition_chip(faceapi, input, new faceapi.Rect(face.aligned_rect.x, face.aligned_rect.y,
    face.aligned_rect.width, face.aligned_rect.height));
  const chip3 = chip.squeeze([0]);
  const ssd_opts = new faceapi.SsdMobilenetv1Options();
  const tiny_opts = new faceapi.TinyFaceDetectorOptions({ inputSize: kTinyInputSize });
  const stages = {};
  log(`timing on ${faceapi.tf.getBackend()} (${runs} runs per stage)`);
  stages.ssd_detect = await time_ms(() => faceapi.detectAllFaces(input, ssd_opts), runs);
  stages.tiny_detect_416 = await time_ms(() => faceapi.detectAllFaces(input, tiny_opts), runs);
  stages.landmarks68_per_face = await time_ms(() => faceapi.nets.faceLandmark68Net.detectLandmarks(crop), runs);
  stages.landmarks68_tiny_per_face = await time_ms(() => faceapi.nets.faceLandmark68TinyNet.detectLandmarks(crop), runs);
  stages.descriptor_per_face = await time_ms(() => faceapi.nets.faceRecognitionNet.computeFaceDescriptor(chip3), runs);
  stages.pipeline_ssd_landmarks_descriptors = await time_ms(
    () => faceapi.detectAllFaces(input, ssd_opts).withFaceLandmarks().withFaceDescriptors(), runs);
  stages.pipeline_ssd_landmarks_descriptors.faces = sample.ref.faces.length;
  const chip_data = { shape: chip3.shape, data: chip3.dataSync().slice() };
  [input, crop, chip, chip3].forEach((t) => t.dispose());
  return { stages, chip_data };
}

const max_abs_diff = (a, b) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

// face-api.js on @tensorflow/tfjs-backend-wasm (lib/wasm.js), then back on the CPU backend. How far its
// numbers are from the CPU reference goes beside the timings: the descriptor of the CPU backend's chip
// (the network alone) and of face-api's whole SSD pipeline run on wasm, against the reference descriptors.
async function wasm_timings(faceapi, sample, runs, cpu_chip) {
  const { tf } = faceapi;
  try {
    const backend = await use_wasm_backend(faceapi, 1, log);
    const loadavg = os.loadavg()[0];
    const { stages } = await time_stages(faceapi, sample, runs);
    const chip = tf.tensor(cpu_chip.data, cpu_chip.shape, 'float32');
    const desc = Array.from(await faceapi.nets.faceRecognitionNet.computeFaceDescriptor(chip));
    chip.dispose();
    const input = img.to_tensor(tf, sample.image);
    const full = await faceapi.detectAllFaces(input, new faceapi.SsdMobilenetv1Options()).withFaceLandmarks()
      .withFaceDescriptors();
    input.dispose();
    const ref = sample.ref.faces;
    const pipeline_diff = full.length === ref.length
      ? Math.max(...full.map((r, k) => max_abs_diff(Array.from(r.descriptor), ref[k].descriptor))) : null;
    return {
      what: `face-api.js 1.7.15 in Node, TF.js ${backend.version} WebAssembly backend `
        + `(${backend.binary}, ${backend.threads} thread); wall and process CPU time per call`,
      tfjs: tf.version['tfjs-core'],
      ...backend,
      loadavg_1m_at_start: loadavg,
      stages,
      check_vs_cpu: {
        descriptor_max_abs_diff: max_abs_diff(desc, ref[0].descriptor),
        descriptor_l2: l2(desc, ref[0].descriptor),
        pipeline_faces: full.length,
        reference_faces: ref.length,
        pipeline_descriptor_max_abs_diff: pipeline_diff,
      },
    };
  } catch (e) {
    log(`wasm backend failed: ${e && e.stack ? e.stack : e}`);
    return { error: String(e && e.message ? e.message : e) };
  } finally {
    await tf.setBackend('cpu');
  }
}

async function timings(faceapi, sample, runs, provenance) {
  const loadavg = os.loadavg()[0];
  const cpu = await time_stages(faceapi, sample, runs);
  return {
    what: 'face-api.js 1.7.15 in Node, TF.js pure-JS CPU backend (single thread); wall and process CPU time per call',
    image: { png: sample.ref.image.png, width: sample.image.width, height: sample.image.height },
    // Load average when timing started: the build machine is shared, so read the figures with it.
    machine: {
      cpu: os.cpus()[0] ? os.cpus()[0].model : 'unknown', cores: os.cpus().length, node: process.version,
      loadavg_1m_at_start: loadavg,
    },
    tfjs: provenance.tfjs.tfjs,
    backend: provenance.backend,
    stages: cpu.stages,
    // The same stages on the wasm backend (its own object, so readers of `stages` see the CPU figures).
    wasm: await wasm_timings(faceapi, sample, runs, cpu.chip_data),
  };
}

function log_timings(t) {
  const both = [['cpu', t.stages], ['wasm', t.wasm && t.wasm.stages]];
  for (const [backend, stages] of both) {
    for (const [k, v] of Object.entries(stages || {})) {
      log(`  ${backend} ${k}: median ${v.median_ms.toFixed(1)} ms wall, ${v.cpu_median_ms.toFixed(1)} ms cpu`);
    }
  }
  if (t.wasm && t.wasm.check_vs_cpu) log(`  wasm vs cpu: ${JSON.stringify(t.wasm.check_vs_cpu)}`);
}

async function main() {
  const args = parse_args(process.argv.slice(2));
  const samples_dir = path.join(args.models, 'face-api-1.7.15', 'samples');
  if (!fs.existsSync(samples_dir)) throw new Error(`${samples_dir} is missing: run \`faceguard models fetch\` first`);
  fs.mkdirSync(args.out, { recursive: true });

  const { faceapi, provenance } = await load_faceapi(log);
  const model_files = load_all_nets(faceapi, args.models);
  log(`face-api ${provenance.version}, TF.js ${provenance.tfjs.tfjs} (${provenance.backend}), models ${args.models}`);

  if (args.timing_only) {
    const ref = JSON.parse(fs.readFileSync(path.join(args.out, 'sample1.json'), 'utf8'));
    const image = img.read_png(path.join(args.out, ref.image.png));
    const t = await timings(faceapi, { name: 'sample1', image, ref }, args.runs, provenance);
    fs.writeFileSync(path.join(args.out, 'timings.json'), JSON.stringify(t, null, 1));
    log_timings(t);
    return;
  }

  const samples = [];
  for (const n of kSamples) {
    const name = `sample${n}`;
    const jpg = path.join(samples_dir, `${name}.jpg`);
    const image = img.decode_jpeg(jpg);
    img.write_png(path.join(args.out, `${name}.png`), image);
    const t0 = performance.now();
    const ref = await sample_reference(faceapi, name, image, args.out);  // eslint-disable-line no-await-in-loop
    ref.image.source_jpeg = path.basename(jpg);
    ref.image.source_jpeg_sha256 = sha256_file(jpg);
    fs.writeFileSync(path.join(args.out, `${name}.json`), JSON.stringify(ref, null, 1));
    log(`${name}: ${image.width}x${image.height}, ${ref.ssd.length} ssd, ${ref.tiny.length} tiny faces `
      + `(${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    samples.push({ name, image, ref });
  }

  const raw = await raw_reference(faceapi, samples, args.out);
  fs.writeFileSync(path.join(args.out, 'raw.json'), JSON.stringify(raw));
  log(`raw: ${raw.ssd.detections.length} ssd boxes >= ${kRawSsdMinScore}, ${raw.tiny.detections.length} tiny >= ${kRawTinyMinScore}`);

  if (args.timing) {
    const t = await timings(faceapi, samples[0], args.runs, provenance);
    fs.writeFileSync(path.join(args.out, 'timings.json'), JSON.stringify(t, null, 1));
    log_timings(t);
  }

  const index = {
    format: 'faceguard-reference/1',
    created: new Date().toISOString(),
    provenance,
    model_files,
    options: {
      ssd: { min_confidence: 0.5, max_results: 100, iou: 0.5 },
      tiny: { input_size: kTinyInputSize, score_threshold: 0.5, iou: 0.4 },
      descriptor: 'landmarks.align(null, {useDlibAlignment: true}) -> extractFaceTensors -> toBatchTensor(150, centred)',
      pixels: 'jpeg-js decode of the sample JPEG, stored losslessly as sampleN.png; faceguard must read the PNG',
    },
    samples: samples.map((s) => `${s.name}.json`),
    raw: 'raw.json',
    timings: args.timing ? 'timings.json' : null,
  };
  fs.writeFileSync(path.join(args.out, 'reference.json'), JSON.stringify(index, null, 1));
  log(`wrote ${args.out}`);
}

main().catch((e) => {
  process.stderr.write(`[reference] error: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
