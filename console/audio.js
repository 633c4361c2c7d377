// Audio in the browser: decode any clip the browser reads to 16 kHz mono (the service's analysis rate),
// encode WAV (16-bit PCM), record from the microphone, and compute the spectrogram the console draws.

export const RATE = 16000;

// The clip's samples at 16 kHz mono (Float32Array), or null when the browser cannot decode it (the API then
// says why: the console still submits it).
export async function decode(bytes) {
  try {
    const probe = new OfflineAudioContext(1, 1, RATE);
    const decoded = await probe.decodeAudioData(bytes.slice(0));
    const frames = Math.max(1, Math.ceil(decoded.duration * RATE));
    const context = new OfflineAudioContext(1, frames, RATE); // mixes the channels down and resamples
    const source = context.createBufferSource();
    source.buffer = decoded;
    source.connect(context.destination);
    source.start();
    return (await context.startRendering()).getChannelData(0);
  } catch {
    return null;
  }
}

// A RIFF/WAVE file of `samples` (floats in [-1, 1]) as 16-bit PCM mono at `rate`.
export function encodeWav(samples, rate = RATE) {
  const buffer = new ArrayBuffer(44 + samples.length * 2);
  const view = new DataView(buffer);
  const text = (offset, value) => [...value].forEach((c, i) => view.setUint8(offset + i, c.charCodeAt(0)));
  text(0, "RIFF");
  view.setUint32(4, 36 + samples.length * 2, true);
  text(8, "WAVE");
  text(12, "fmt ");
  view.setUint32(16, 16, true);
  view.setUint16(20, 1, true); // PCM
  view.setUint16(22, 1, true); // mono
  view.setUint32(24, rate, true);
  view.setUint32(28, rate * 2, true);
  view.setUint16(32, 2, true);
  view.setUint16(34, 16, true);
  text(36, "data");
  view.setUint32(40, samples.length * 2, true);
  samples.forEach((x, i) => view.setInt16(44 + i * 2, Math.round(Math.max(-1, Math.min(1, x)) * 32767), true));
  return buffer;
}

// Microphone capture with MediaRecorder; stop() resolves to the recording as WAV bytes (ArrayBuffer).
export async function startRecording() {
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  const recorder = new MediaRecorder(stream);
  const chunks = [];
  recorder.ondataavailable = (event) => chunks.push(event.data);
  recorder.start();
  return {
    stop: () =>
      new Promise((resolve, reject) => {
        recorder.onstop = async () => {
          stream.getTracks().forEach((track) => track.stop());
          const recorded = await new Blob(chunks, { type: recorder.mimeType }).arrayBuffer();
          const samples = await decode(recorded);
          if (samples) resolve(encodeWav(samples));
          else reject(new Error("the browser could not decode its own recording"));
        };
        recorder.stop();
      }),
  };
}

// In-place iterative radix-2 FFT of (re, im), length a power of two.
function fft(re, im) {
  const n = re.length;
  for (let i = 1, j = 0; i < n; i++) {
    let bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) {
      [re[i], re[j]] = [re[j], re[i]];
      [im[i], im[j]] = [im[j], im[i]];
    }
  }
  for (let size = 2; size <= n; size <<= 1) {
    const step = (-2 * Math.PI) / size;
    for (let start = 0; start < n; start += size) {
      for (let k = 0; k < size / 2; k++) {
        const wr = Math.cos(step * k);
        const wi = Math.sin(step * k);
        const a = start + k;
        const b = a + size / 2;
        const tr = re[b] * wr - im[b] * wi;
        const ti = re[b] * wi + im[b] * wr;
        re[b] = re[a] - tr;
        im[b] = im[a] - ti;
        re[a] += tr;
        im[a] += ti;
      }
    }
  }
}

// Power spectrogram in dB relative to its strongest bin, floored at -floorDb (so digital silence is the
// floor colour, not a gap): {frames, bins, hopSeconds, db: Float32Array(frames * bins)}.
export function spectrogram(samples, { nFft = 512, hop = 160, floorDb = 80 } = {}) {
  const frames = Math.max(1, Math.floor((samples.length - nFft) / hop) + 1);
  const bins = nFft / 2;
  const window = Float32Array.from({ length: nFft }, (_, i) => 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / nFft));
  const power = new Float32Array(frames * bins);
  const re = new Float64Array(nFft);
  const im = new Float64Array(nFft);
  let peak = 1e-20;
  for (let f = 0; f < frames; f++) {
    for (let i = 0; i < nFft; i++) {
      re[i] = (samples[f * hop + i] || 0) * window[i];
      im[i] = 0;
    }
    fft(re, im);
    for (let k = 0; k < bins; k++) {
      const p = re[k] * re[k] + im[k] * im[k];
      power[f * bins + k] = p;
      if (p > peak) peak = p;
    }
  }
  const db = power.map((p) => Math.max(-floorDb, 10 * Math.log10(Math.max(p, 1e-30) / peak)));
  return { frames, bins, hopSeconds: hop / RATE, db };
}

// A dark-to-bright colour for a value in [0, 1] (black, purple, orange, pale yellow: magma-like).
export function colour(t) {
  const stops = [
    [0, 0, 4],
    [80, 18, 123],
    [183, 55, 121],
    [252, 137, 97],
    [252, 253, 191],
  ];
  const x = Math.max(0, Math.min(1, t)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(x));
  const f = x - i;
  return stops[i].map((c, k) => Math.round(c + (stops[i + 1][k] - c) * f));
}
