// The motion4d web 4D player. The page holds its data: <script id="m4d-config"> (JSON: time range, cameras,
// background, ...), <script id="m4d-splatv"> and <script id="m4d-glb"> (gzip, base64). URL parameters:
// t (model time; pauses there), view (test camera index), w, h (canvas size in pixels, pixel ratio 1),
// mode (splats | mesh | both), play (1: play from t). window.motion4dReady becomes true once the frame they
// ask for is drawn; window.motion4d.show({t, view, mode}) draws another and resolves when it is drawn;
// window.motion4d.stats() says where the depth sort runs and how long it took.
import * as THREE from "three";
import { OrbitControls } from "three/examples/jsm/controls/OrbitControls.js";
import { applyIntrinsics, orbitTarget, scaledIntrinsics, setPose } from "./camera.js";
import { loadMeshLayer } from "./mesh_layer.js";
import { SplatLayer } from "./splat_layer.js";
import { parseSplatv } from "./splatv.js";
import { buildUi } from "./ui.js";

async function payload(id) {
  const node = document.getElementById(id);
  const text = node ? node.textContent.trim() : "";
  if (!text) return null;
  const raw = atob(text);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  return new Response(stream).arrayBuffer();
}

const nextFrame = () => new Promise((resolve) => requestAnimationFrame(() => resolve()));

async function main() {
  const config = JSON.parse(document.getElementById("m4d-config").textContent);
  const params = new URLSearchParams(location.search);
  const num = (k) => (params.has(k) && params.get(k) !== "" && Number.isFinite(Number(params.get(k))) ? Number(params.get(k)) : null);
  const fixed = num("w") !== null && num("h") !== null;
  const canvas = document.getElementById("m4d-canvas");
  if (fixed) document.body.classList.add("fixed");

  const [splatvBuf, glbBuf] = await Promise.all([payload("m4d-splatv"), payload("m4d-glb")]);
  const splats = splatvBuf ? new SplatLayer(parseSplatv(splatvBuf)) : null;
  const mesh = glbBuf ? await loadMeshLayer(glbBuf, config.glb) : null;
  config.has_splats = !!splats;

  const renderer = new THREE.WebGLRenderer({ canvas, antialias: false, preserveDrawingBuffer: true, alpha: false });
  renderer.autoClear = false;
  renderer.setPixelRatio(fixed ? 1 : window.devicePixelRatio || 1);
  const camera = new THREE.PerspectiveCamera();
  camera.up.set(...(config.up || [0, 0, 1]));
  const controls = new OrbitControls(camera, canvas);

  const [t0, t1] = config.time_range;
  const clampT = (t) => Math.min(Math.max(t, t0), t1);
  const defaultMode = !splats ? "mesh" : mesh && config.mode ? config.mode : "splats";
  const state = {
    t: num("t") !== null ? clampT(num("t")) : t0,
    view: num("view") !== null ? num("view") : 0,
    playing: num("t") === null || num("play") === 1,
    speed: 1,
    mode: params.get("mode") || defaultMode,
    background: config.background || [1, 1, 1],
  };
  if (!(t1 > t0)) state.playing = false;
  if (!(state.view >= 0 && state.view < config.cameras.length)) throw new Error(`view ${state.view} out of range: the file has ${config.cameras.length} cameras`);
  if (!["splats", "mesh", "both"].includes(state.mode) || (state.mode !== "splats" && !mesh) || (state.mode !== "mesh" && !splats)) {
    throw new Error(`mode ${state.mode} is not available here`);
  }
  let dirty = true;
  let intrinsics = null;
  const size = () => (fixed ? [num("w"), num("h")] : [window.innerWidth, window.innerHeight]);

  function resize() {
    const [w, h] = size();
    renderer.setSize(w, h, true);
    const cam = config.cameras[Math.max(state.view, 0)];
    intrinsics = scaledIntrinsics(cam, w, h, fixed);
    dirty = true;
  }

  function setView(i) {
    state.view = i;
    if (i >= 0) {
      setPose(camera, config.cameras[i].viewmat);
      controls.target.copy(orbitTarget(camera, config.center || [0, 0, 0]));
    }
    resize();
  }

  function placeMesh() {
    if (mesh) mesh.place(new THREE.Vector3(...(state.mode === "both" ? config.beside_offset || [0, 0, 0] : [0, 0, 0])));
  }

  function draw() {
    const [w, h] = size();
    applyIntrinsics(camera, intrinsics, w, h);
    camera.updateMatrixWorld();
    renderer.setRenderTarget(null);
    renderer.setClearColor(new THREE.Color().setRGB(...state.background, THREE.SRGBColorSpace), 1);
    renderer.clear(true, true, true);
    if (mesh && state.mode !== "splats") mesh.render(renderer, camera, state.t);
    if (splats && state.mode !== "mesh") splats.render(renderer, camera, state.t);
  }

  const player = {
    state,
    setTime(t) { state.t = clampT(t); dirty = true; ui.update(); },
    setPlaying(p) { state.playing = p && t1 > t0; dirty = true; ui.update(); },
    setSpeed(s) { state.speed = s; },
    setView(i) { setView(i); ui.update(); },
    setMode(m) { state.mode = m; placeMesh(); dirty = true; ui.update(); },
    setBackground(rgb) { state.background = rgb; dirty = true; },
  };  // prettier-ignore
  const ui = buildUi(document.getElementById("m4d-bar"), player, config);
  controls.addEventListener("change", () => {
    if (state.view >= 0) { state.view = -1; ui.update(); }
    dirty = true;
  });  // prettier-ignore
  window.addEventListener("resize", () => !fixed && resize());

  // Draw the frame of the current state once its sort is in, and say so.
  async function drawReady() {
    window.motion4dReady = false;
    if (splats && state.mode !== "mesh") await splats.whenSorted(splats.request(camera, state.t));
    draw();
    dirty = false;
    await nextFrame();
    window.motion4dReady = true;
  }

  window.motion4d = {
    state,
    stats: () => (splats ? splats.stats() : {}),
    async show({ t, view, mode } = {}) {
      state.playing = false;
      if (t !== undefined) state.t = clampT(t);
      if (mode !== undefined) { state.mode = mode; placeMesh(); }
      if (view !== undefined) setView(view);
      ui.update();
      await drawReady();
    },
  };  // prettier-ignore

  setView(state.view);
  placeMesh();
  ui.update();
  await drawReady();

  let last = performance.now();
  const duration = config.duration_s > 0 ? config.duration_s : 2;
  function loop(now) {
    const dt = (now - last) / 1000;
    last = now;
    if (state.playing) {
      let t = state.t + (dt * state.speed * (t1 - t0)) / duration;
      if (t > t1) t = t0 + ((t - t0) % (t1 - t0));
      state.t = t;
      dirty = true;
      ui.update();
    }
    if (splats && state.mode !== "mesh") {
      const before = splats.sorted;
      splats.request(camera, state.t);
      if (splats.sorted !== before) dirty = true;
    }
    if (dirty || (splats && splats.sorted !== drawnOrder)) {
      draw();
      drawnOrder = splats ? splats.sorted : 0;
      dirty = false;
    }
    requestAnimationFrame(loop);
  }
  let drawnOrder = splats ? splats.sorted : 0;
  requestAnimationFrame(loop);
}

main().catch((err) => {
  console.error(err);
  const box = document.getElementById("m4d-message");
  if (box) {
    box.textContent = `motion4d player: ${err.message || err}`;
    box.style.display = "block";
  }
});
