// The Harmonic console: one page over the same v1 API the CLI uses. config.json says where the API is
// ("" = this origin, as the local stack serves it) and how it authenticates ("api_key": the operator pastes
// a key, kept in this tab's sessionStorage only).
import { decode, encodeWav, startRecording, spectrogram, colour, RATE } from "./audio.js";

const $ = (id) => document.getElementById(id);
const TERMINAL = new Set(["SUCCEEDED", "FAILED"]);
const POLL_MS = 400;
const F0_AXIS_HZ = [50, 500];
const state = { config: { api_url: "", auth: "none" }, clip: null, clipName: "", invocation: null, audioById: {} };

// --- the API --------------------------------------------------------------------------------------------

class ApiError extends Error {}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const key = sessionStorage.getItem("harmonic-api-key");
  if (key) headers["X-Api-Key"] = key;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(state.config.api_url.replace(/\/$/, "") + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    throw new ApiError(`the API could not be reached (${error.message})`);
  }
  const text = await response.text();
  let payload = null;
  try {
    payload = text ? JSON.parse(text) : null;
  } catch {
    payload = null;
  }
  if (!response.ok) {
    const detail = payload && payload.error ? payload.error : { code: String(response.status), message: text };
    throw new ApiError(`${detail.code}: ${detail.message}`);
  }
  return payload;
}

function base64(buffer) {
  const bytes = new Uint8Array(buffer);
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

// --- messages -------------------------------------------------------------------------------------------

function showError(error) {
  $("alert").textContent = error instanceof ApiError ? error.message : `error: ${error.message || error}`;
  $("alert").hidden = false;
}

function clearError() {
  $("alert").hidden = true;
  $("alert").textContent = "";
}

async function guarded(action) {
  clearError();
  try {
    await action();
  } catch (error) {
    showError(error);
  }
}

const el = (tag, props = {}, ...children) => {
  const node = Object.assign(document.createElement(tag), props);
  children.forEach((child) => node.append(child));
  return node;
};

// --- analyze ------------------------------------------------------------------------------------------

async function useClip(bytes, name) {
  state.clip = bytes;
  state.clipName = name;
  $("clip-name").textContent = `${name} (${(bytes.byteLength / 1024).toFixed(1)} KiB)`;
}

function recorderButton(button, onDone) {
  let recording = null;
  button.addEventListener("click", () =>
    guarded(async () => {
      if (!recording) {
        recording = await startRecording();
        button.textContent = "Stop";
        button.setAttribute("aria-pressed", "true");
        return;
      }
      const wav = await recording.stop();
      recording = null;
      button.textContent = "Record";
      button.setAttribute("aria-pressed", "false");
      await onDone(wav);
    }),
  );
}

function selectedPatterns() {
  const names = $("only-patterns")
    .value.split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  return names.length ? { patterns: names } : undefined;
}

async function submit() {
  try {
    await send();
  } catch (error) {
    $("progress").textContent = "refused: see the message above";
    throw error;
  }
}

async function send() {
  if (!state.clip) throw new Error("choose, drop or record a clip first");
  const mode = $("mode").value;
  const audio = base64(state.clip);
  const options = selectedPatterns();
  const samples = await decode(state.clip);
  $("results").hidden = true;
  $("timeline-box").hidden = true;
  $("progress").textContent = "submitting…";
  if (mode === "sync") {
    const started = performance.now();
    const result = await api("POST", "/v1/analyze", options ? { audio, options } : { audio });
    $("progress").textContent = `analyzed in ${Math.round(performance.now() - started)} ms`;
    showResult(result, samples);
    return;
  }
  const accepted = await api("POST", "/v1/invocations", options ? { audio, mode, options } : { audio, mode });
  state.audioById[accepted.invocation_id] = samples;
  await follow(accepted.invocation_id);
}

// Poll the status document until the invocation ends, redrawing the timeline each time.
async function follow(invocationId) {
  $("timeline-box").hidden = false;
  $("results").hidden = true;
  for (;;) {
    const status = await api("GET", `/v1/invocations/${encodeURIComponent(invocationId)}`);
    state.invocation = status;
    drawTimeline(status); // before the status line, which tells a reader (or a test) that it is drawn
    $("progress").textContent = `invocation ${status.invocation_id} (${status.mode}): ${status.status}`;
    if (TERMINAL.has(status.status)) {
      if (status.result) showResult(status.result, state.audioById[invocationId]);
      if (status.error) showError(new ApiError(`${status.error.code}: ${status.error.message}`));
      $("resume").hidden = status.status !== "FAILED";
      return status;
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

const ms = (iso) => (iso ? Date.parse(iso) : NaN);

function drawTimeline(status) {
  const origin = ms(status.created_at);
  const now = TERMINAL.has(status.status) ? ms(status.updated_at) : Date.now();
  const ends = status.stages.map((s) => ms(s.finished_at)).filter(Number.isFinite);
  const span = Math.max(1, ...ends.map((t) => t - origin), now - origin);
  const box = $("timeline");
  box.replaceChildren();
  for (const stage of status.stages) {
    const start = ms(stage.started_at);
    // a stage still running ends now; a failed one (no finished_at) when the invocation last changed
    const open = { RUNNING: now, FAILED: ms(status.updated_at) }[stage.status] ?? start;
    const end = Number.isFinite(ms(stage.finished_at)) ? ms(stage.finished_at) : open;
    const row = el("div", { className: `stage ${stage.status.toLowerCase()}`, role: "listitem" });
    row.dataset.stage = stage.name;
    row.dataset.status = stage.status;
    const label = el("span", { className: "stage-name", textContent: stage.name });
    const track = el("div", { className: "track" });
    let note = stage.status.toLowerCase();
    if (Number.isFinite(start)) {
      const bar = el("div", { className: "bar" });
      bar.style.left = `${(100 * (start - origin)) / span}%`;
      bar.style.width = `${Math.max(0.5, (100 * (end - start)) / span)}%`;
      bar.dataset.startMs = String(start - origin);
      bar.dataset.endMs = String(end - origin);
      track.append(bar);
      if (Number.isFinite(end) && end > start) note += ` ${Math.round(end - start)} ms`;
    }
    if (stage.attempts > 1) note += `, ${stage.attempts} attempts`;
    if (stage.reason) note += ` (${stage.reason})`;
    row.append(label, track, el("span", { className: "stage-note", textContent: note }));
    row.setAttribute("aria-label", `${stage.name}: ${note}`);
    box.append(row);
  }
  $("total").textContent = TERMINAL.has(status.status)
    ? `total ${Math.round(now - origin)} ms from submission to ${status.status}`
    : `running for ${Math.round(now - origin)} ms`;
}

// --- results ------------------------------------------------------------------------------------------

function canvasFor(id, cssHeight) {
  const canvas = $(id);
  const ratio = window.devicePixelRatio || 1;
  canvas.width = Math.max(1, Math.round(canvas.clientWidth * ratio));
  canvas.height = Math.round(cssHeight * ratio);
  canvas.style.height = `${cssHeight}px`;
  return canvas;
}

function drawWave(samples, duration, voiced) {
  const canvas = canvasFor("wave", 110);
  const g = canvas.getContext("2d");
  g.fillStyle = "#fff";
  g.fillRect(0, 0, canvas.width, canvas.height);
  g.fillStyle = "rgba(230, 180, 40, 0.25)";
  for (const [a, b] of voiced) g.fillRect((a / duration) * canvas.width, 0, ((b - a) / duration) * canvas.width, canvas.height);
  if (!samples) return;
  g.strokeStyle = "#1f4e79";
  g.beginPath();
  const per = samples.length / canvas.width;
  for (let x = 0; x < canvas.width; x++) {
    let lo = 1;
    let hi = -1;
    for (let i = Math.floor(x * per); i < Math.min(samples.length, Math.floor((x + 1) * per) + 1); i++) {
      lo = Math.min(lo, samples[i]);
      hi = Math.max(hi, samples[i]);
    }
    g.moveTo(x + 0.5, ((1 - hi) / 2) * canvas.height);
    g.lineTo(x + 0.5, ((1 - lo) / 2) * canvas.height);
  }
  g.stroke();
}

function drawSpectrogram(samples, duration, features) {
  const canvas = canvasFor("spec", 200);
  const g = canvas.getContext("2d");
  g.fillStyle = "rgb(0, 0, 4)";
  g.fillRect(0, 0, canvas.width, canvas.height);
  if (samples && samples.length >= 512) {
    const spec = spectrogram(samples);
    const image = new ImageData(spec.frames, spec.bins);
    for (let f = 0; f < spec.frames; f++) {
      for (let k = 0; k < spec.bins; k++) {
        const [r, gg, b] = colour(1 + spec.db[f * spec.bins + k] / 80);
        const at = ((spec.bins - 1 - k) * spec.frames + f) * 4;
        image.data.set([r, gg, b, 255], at);
      }
    }
    const bitmap = new OffscreenCanvas(spec.frames, spec.bins);
    bitmap.getContext("2d").putImageData(image, 0, 0);
    g.imageSmoothingEnabled = false;
    g.drawImage(bitmap, 0, 0, (spec.frames * spec.hopSeconds * canvas.width) / duration, canvas.height);
  }
  // f0 on its own (log) axis, labelled on the right; unvoiced values (null) break the line
  const track = features && features.f0_track;
  const [low, high] = F0_AXIS_HZ;
  const y = (hz) => canvas.height * (1 - Math.log(hz / low) / Math.log(high / low));
  g.fillStyle = "#fff";
  g.font = `${11 * (window.devicePixelRatio || 1)}px sans-serif`;
  g.textAlign = "right";
  for (const hz of [60, 100, 200, 400]) g.fillText(`${hz} Hz`, canvas.width - 4, y(hz) + 4);
  g.textAlign = "left"; // the spectrogram's own axis, on the left: 0 to half the analysis rate
  g.fillText(`${RATE / 2000} kHz`, 4, 14);
  g.fillText("0 Hz", 4, canvas.height - 4);
  if (!track || !track.hz) return;
  g.strokeStyle = "#38e0ff";
  g.lineWidth = 2 * (window.devicePixelRatio || 1);
  g.beginPath();
  let drawing = false;
  track.hz.forEach((hz, i) => {
    if (hz === null || hz === undefined) {
      drawing = false;
      return;
    }
    const px = ((i * track.hop_s) / duration) * canvas.width;
    const py = y(Math.min(high, Math.max(low, hz)));
    if (drawing) g.lineTo(px, py);
    else g.moveTo(px, py);
    drawing = true;
  });
  g.stroke();
  canvas.dataset.f0Points = String(track.hz.filter((v) => v !== null).length);
}

function drawSpans(matches, duration) {
  const box = $("spans");
  box.replaceChildren();
  for (const match of matches.filter((m) => m.kind !== "fingerprint")) {
    const name = match.name || match.pattern_id;
    const label = `${name} ${Number(match.score).toFixed(2)}`;
    const span = el("div", { className: "span", title: label });
    span.style.left = `${(100 * match.start_s) / duration}%`;
    span.style.width = `${(100 * (match.end_s - match.start_s)) / duration}%`;
    Object.assign(span.dataset, { name, score: String(match.score), startS: String(match.start_s), endS: String(match.end_s) });
    span.append(el("span", { className: "span-label", textContent: label }));
    box.append(span);
  }
}

function measure(term, value) {
  return [el("dt", { textContent: term }), el("dd", { textContent: value })];
}

function fixed(value, digits, unit) {
  return value === null || value === undefined ? "n/a" : `${Number(value).toFixed(digits)}${unit}`;
}

function showResult(result, samples) {
  const features = result.features || {};
  const loudness = result.loudness || {};
  const audio = result.audio || {};
  const denoise = result.denoise || {};
  const duration = samples ? samples.length / RATE : audio.duration_s || features.duration_s || 1;
  $("results").hidden = false;
  const voiced = features.voiced_regions || [];
  drawWave(samples, duration, voiced);
  drawSpectrogram(samples, duration, features);
  drawSpans(result.matches || [], duration);
  const f0 = features.f0_hz || {};
  const rows = [
    ["Duration", fixed(audio.duration_s ?? features.duration_s, 2, " s")],
    ["Loudness in → out", `${fixed(loudness.input_lufs, 1, "")} → ${fixed(loudness.output_lufs, 1, " LUFS")} (gain ${fixed(loudness.gain_db, 1, " dB")})`],
    ["Median f0", fixed(f0.median, 1, " Hz")],
    ["Voiced", fixed(features.voiced_fraction === undefined ? null : features.voiced_fraction * 100, 0, " %")],
    ["HNR", fixed(features.hnr_db, 1, " dB")],
    ["SNR", fixed(audio.snr_db, 1, " dB")],
    ["Denoise", denoise.applied ? `ran${denoise.method ? ` (${denoise.method.replace("_", " ")})` : ""}` : `skipped${denoise.reason ? `: ${denoise.reason}` : ""}`],
    ["Matches", (result.matches || []).map((m) => `${m.name || m.pattern_id} ${Number(m.score).toFixed(2)} at ${fixed(m.start_s, 2, " s")}`).join("; ") || "none"],
  ];
  $("measures").replaceChildren(...rows.flatMap(([term, value]) => measure(term, value)));
  $("raw").textContent = JSON.stringify(result, null, 2);
}

// --- patterns -----------------------------------------------------------------------------------------

let patternClip = null;

async function loadPatterns() {
  $("pattern-rows").replaceChildren(); // no stale rows while the list loads
  const { patterns } = await api("GET", "/v1/patterns");
  const rows = patterns.map((p) => {
    const actions = el("td");
    if (p.kind !== "keyword" || p.duration_s > 0) {
      // a keyword registered by its spelling alone has no example to play
      const play = el("button", { type: "button", textContent: "Play" });
      play.setAttribute("aria-label", `Play the example of ${p.name}`);
      play.addEventListener("click", () =>
        guarded(async () => {
          const example = await api("GET", `/v1/patterns/${encodeURIComponent(p.pattern_id)}/example`);
          $("player").hidden = false;
          $("player").src = example.url;
          await $("player").play().catch(() => {});
        }),
      );
      actions.append(play);
    }
    if (!p.shared) {
      const remove = el("button", { type: "button", textContent: "Delete" });
      remove.setAttribute("aria-label", `Delete ${p.name}`);
      remove.addEventListener("click", () =>
        guarded(async () => {
          await api("DELETE", `/v1/patterns/${encodeURIComponent(p.pattern_id)}`);
          await loadPatterns();
        }),
      );
      actions.append(remove);
    }
    const row = el(
      "tr",
      {},
      el("td", { textContent: p.shared ? `${p.name} (shared)` : p.name }),
      el("td", { className: "text", textContent: p.text || "" }),
      el("td", { textContent: p.kind }),
      el("td", { textContent: fixed(p.duration_s || null, 2, "") }),
      el("td", { className: "created", textContent: p.created_at ? new Date(p.created_at).toLocaleString() : "" }),
      actions,
    );
    row.dataset.patternId = p.pattern_id;
    row.dataset.name = p.name;
    return row;
  });
  $("pattern-rows").replaceChildren(...rows);
}

async function addPattern() {
  const file = $("pattern-file").files[0];
  const bytes = file ? await file.arrayBuffer() : patternClip;
  const kind = $("pattern-kind").value;
  const text = kind === "keyword" ? $("pattern-text").value.trim() : ""; // text is for keywords only
  if (!bytes && !text) throw new Error(kind === "keyword" ? "type the keyword's text, or choose or record an example" : "choose or record an example first");
  const body = { name: $("pattern-name").value.trim(), kind };
  if (text) body.text = text;
  if (bytes) body.audio = base64(bytes);
  await api("POST", "/v1/patterns", body);
  $("pattern-form").reset();
  patternClip = null;
  await loadPatterns();
}

// --- history ------------------------------------------------------------------------------------------

let historyToken = null;

async function loadHistory(more = false) {
  if (!more) $("history-rows").replaceChildren(); // no stale rows while the page loads
  const query = more && historyToken ? `?next_token=${encodeURIComponent(historyToken)}` : "";
  const page = await api("GET", `/v1/invocations${query}`);
  historyToken = page.next_token || null;
  const rows = page.invocations.map((item) => {
    const open = el("button", { type: "button", textContent: "Open" });
    open.setAttribute("aria-label", `Open ${item.invocation_id}`);
    open.addEventListener("click", () => guarded(() => reopen(item.invocation_id)));
    const actions = el("td", {}, open);
    if (item.status === "FAILED") {
      const resume = el("button", { type: "button", textContent: "Resume" });
      resume.setAttribute("aria-label", `Resume ${item.invocation_id}`);
      resume.addEventListener("click", () => guarded(() => resumeInvocation(item.invocation_id)));
      actions.append(resume);
    }
    const row = el(
      "tr",
      {},
      el("td", { textContent: item.invocation_id }),
      el("td", { textContent: item.mode }),
      el("td", { textContent: item.status }),
      el("td", { className: "created", textContent: item.created_at ? new Date(item.created_at).toLocaleString() : "" }),
      actions,
    );
    row.dataset.invocationId = item.invocation_id;
    row.dataset.status = item.status;
    return row;
  });
  if (more) $("history-rows").append(...rows);
  else $("history-rows").replaceChildren(...rows);
  $("history-more").hidden = !historyToken;
}

async function reopen(invocationId) {
  showTab("analyze");
  await follow(invocationId);
}

async function resumeInvocation(invocationId) {
  await api("POST", `/v1/invocations/${encodeURIComponent(invocationId)}/resume`);
  showTab("analyze");
  await follow(invocationId);
}

// --- wiring -------------------------------------------------------------------------------------------

function showTab(name) {
  for (const tab of document.querySelectorAll(".tab")) {
    const active = tab.dataset.tab === name;
    tab.setAttribute("aria-pressed", String(active));
    $(tab.dataset.tab).hidden = !active;
  }
  if (name === "patterns") guarded(loadPatterns);
  if (name === "history") guarded(() => loadHistory());
}

async function start() {
  try {
    const response = await fetch("config.json", { cache: "no-store" });
    if (response.ok) state.config = { ...state.config, ...(await response.json()) };
  } catch {
    // no config.json: the API is on this origin
  }
  $("key-form").hidden = state.config.auth !== "api_key";
  if (state.config.auth === "iam") {
    showError(new Error("this deployment authenticates with IAM (SigV4), which a browser page cannot sign: deploy with -c auth=api_key to use the console"));
    return;
  }
  $("api-key").value = sessionStorage.getItem("harmonic-api-key") || "";
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem("harmonic-api-key", $("api-key").value.trim());
    guarded(loadModes);
  });
  for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => showTab(tab.dataset.tab));
  $("clip-file").addEventListener("change", () =>
    guarded(async () => {
      const file = $("clip-file").files[0];
      if (file) await useClip(await file.arrayBuffer(), file.name);
    }),
  );
  const drop = $("drop");
  drop.addEventListener("dragover", (event) => event.preventDefault());
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    const file = event.dataTransfer.files[0];
    if (file) guarded(async () => useClip(await file.arrayBuffer(), file.name));
  });
  recorderButton($("record"), (wav) => useClip(wav, "recording.wav"));
  recorderButton($("pattern-record"), async (wav) => {
    patternClip = wav;
  });
  $("analyze-form").addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(submit);
  });
  $("resume").addEventListener("click", () => guarded(() => resumeInvocation(state.invocation.invocation_id)));
  $("pattern-text").addEventListener("input", () => {
    if ($("pattern-text").value.trim()) $("pattern-kind").value = "keyword"; // typed text means a keyword
  });
  $("pattern-form").addEventListener("submit", (event) => {
    event.preventDefault();
    guarded(addPattern);
  });
  $("history-refresh").addEventListener("click", () => guarded(() => loadHistory()));
  $("history-more").addEventListener("click", () => guarded(() => loadHistory(true)));
  await guarded(loadModes);
  document.body.dataset.ready = "true";
}

async function loadModes() {
  const health = await api("GET", "/v1/health");
  const select = $("mode");
  select.replaceChildren(el("option", { value: "sync", textContent: "sync (/v1/analyze)" }));
  for (const mode of health.modes) select.append(el("option", { value: mode, textContent: mode }));
}

window.harmonicConsole = { encodeWav, state }; // for the browser tests
start();
