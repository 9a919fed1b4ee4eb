// Pixels in and out of the reference, in pure JS (no native modules).
//
// Design (why PNG): the reference fixes the pixels. A JPEG decodes to slightly different RGB in jpeg-js and in
// libjpeg-turbo (OpenCV's decoder): IDCT and chroma up-sampling differ by +-1..2 per channel. Instead of
// trying to make two decoders agree, every image the reference feeds to face-api.js is also written as a
// lossless PNG next to the JSON, and the C++ parity test feeds that PNG - the very same pixels - to
// faceguard. Decoder agreement then becomes a separate, reported measurement, not a hidden error source.
'use strict';

const fs = require('fs');
const jpeg = require('jpeg-js');
const { PNG } = require('pngjs');

// An image here is { width, height, rgb: Uint8Array (row-major, 3 bytes per pixel) }.

function decode_jpeg(file) {
  // maxMemoryUsageInMB: the samples are ~2 Mpx; 512 MB leaves room for larger inputs.
  const raw = jpeg.decode(fs.readFileSync(file), { useTArray: true, formatAsRGBA: false, maxMemoryUsageInMB: 512 });
  if (raw.data.length !== raw.width * raw.height * 3) throw new Error(`${file}: unexpected decoded size`);
  return { width: raw.width, height: raw.height, rgb: raw.data };
}

function write_png(file, img) {
  const png = new PNG({ width: img.width, height: img.height, colorType: 2, inputColorType: 2, inputHasAlpha: false });
  png.data = Buffer.from(img.rgb.buffer, img.rgb.byteOffset, img.rgb.byteLength);
  fs.writeFileSync(file, PNG.sync.write(png, { colorType: 2, inputColorType: 2, inputHasAlpha: false }));
}

function read_png(file) {
  const png = PNG.sync.read(fs.readFileSync(file));
  const rgb = new Uint8Array(png.width * png.height * 3);
  for (let i = 0, j = 0; i < rgb.length; i += 3, j += 4) {
    rgb[i] = png.data[j];
    rgb[i + 1] = png.data[j + 1];
    rgb[i + 2] = png.data[j + 2];
  }
  return { width: png.width, height: png.height, rgb };
}

// int32 [h, w, 3] tensor, the input kind face-api.js documents for Node.
function to_tensor(tf, img) {
  return tf.tensor3d(Int32Array.from(img.rgb), [img.height, img.width, 3], 'int32');
}

// A float [h, w, 3] (or [1, h, w, 3]) tensor rounded and clipped to 8-bit pixels.
function from_tensor(tf, t) {
  const [h, w] = t.shape.length === 4 ? t.shape.slice(1, 3) : t.shape.slice(0, 2);
  const r = tf.tidy(() => tf.clipByValue(tf.round(t), 0, 255));
  const rgb = Uint8Array.from(r.dataSync());
  r.dispose();
  return { width: w, height: h, rgb };
}

module.exports = { decode_jpeg, write_png, read_png, to_tensor, from_tensor };
