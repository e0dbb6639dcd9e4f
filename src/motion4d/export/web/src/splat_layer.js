// The splat layer: one instanced quad per present record, its data in two RGBA32UI textures (the .splatv
// chunks as they are in the file), drawn in the order a worker sorts them (nearest first) into a half-float
// target with front-to-back "under" blending, then composited over what is on screen:
//   screen = Σ cᵢαᵢTᵢ + T·screen,
// our rasterizer's compositing with the screen (background, mesh) behind.
import * as THREE from "three";
import { compositeFragment, compositeVertex, fragmentShader, vertexShader } from "./shaders.js";
import { sortWorker } from "./sort_worker.js";
import { recordTime, segmentRows, sortInputs } from "./splatv.js";
import { intrinsicsFromCamera, viewFromCamera } from "./camera.js";

function dataTexture(words, width, height) {
  const tex = new THREE.DataTexture(words, width, height, THREE.RGBAIntegerFormat, THREE.UnsignedIntType);
  tex.internalFormat = "RGBA32UI";
  tex.minFilter = tex.magFilter = THREE.NearestFilter;
  tex.generateMipmaps = false;
  tex.needsUpdate = true;
  return tex;
}

// A Worker running sortWorker, or (where workers cannot start) the same code on this thread.
function startSorter(onMessage) {
  try {
    const url = URL.createObjectURL(new Blob([`(${sortWorker.toString()})(self);`], { type: "text/javascript" }));
    const worker = new Worker(url);
    worker.onmessage = onMessage;
    worker.where = "worker";
    return worker;
  } catch (err) {
    console.warn("sorting on the main thread:", err);
    const local = { postMessage: (data) => setTimeout(() => onMessage({ data }), 0) };
    sortWorker(local);
    return { postMessage: (data) => local.onmessage({ data }), where: "main thread" };
  }
}

export class SplatLayer {
  constructor(file) {
    const meta = (this.meta = file.meta);
    this.count = meta.count;
    const geometry = new THREE.InstancedBufferGeometry();
    geometry.setAttribute("position", new THREE.BufferAttribute(new Float32Array([-1, -1, 0, 1, -1, 0, 1, 1, 0, -1, 1, 0]), 3));
    geometry.setIndex([0, 1, 2, 0, 2, 3]);
    this.indexAttr = new THREE.InstancedBufferAttribute(new Float32Array(Math.max(this.count, 1)), 1);
    this.indexAttr.setUsage(THREE.DynamicDrawUsage);
    geometry.setAttribute("splatIndex", this.indexAttr);
    geometry.instanceCount = 0;
    this.geometry = geometry;
    const sh = file.sh;
    this.uniforms = {
      u_records: { value: dataTexture(file.splat.words, file.splat.texwidth, file.splat.texheight) },
      u_sh: { value: dataTexture(sh.words, sh.texwidth, sh.texheight) },
      u_shTexels: { value: sh.texelsPerRecord },
      u_shWidth: { value: sh.texwidth },
      u_shDegree: { value: meta.sh_degree },
      u_view: { value: new THREE.Matrix4() },
      u_intr: { value: new THREE.Vector4() },
      u_size: { value: new THREE.Vector2() },
      u_campos: { value: new THREE.Vector3() },
      u_tau: { value: 0 },
      u_segmented: { value: false },
      u_antialiased: { value: meta.rasterize_mode === "antialiased" },
    };
    const material = new THREE.RawShaderMaterial({
      glslVersion: THREE.GLSL3, vertexShader, fragmentShader, uniforms: this.uniforms, side: THREE.DoubleSide,
      transparent: true, depthTest: false, depthWrite: false, blending: THREE.CustomBlending,
      blendEquation: THREE.AddEquation, blendSrc: THREE.OneMinusDstAlphaFactor, blendDst: THREE.OneFactor,
      blendSrcAlpha: THREE.OneMinusDstAlphaFactor, blendDstAlpha: THREE.OneFactor,
    });
    const mesh = new THREE.Mesh(geometry, material);
    mesh.frustumCulled = false;
    this.scene = new THREE.Scene();
    this.scene.add(mesh);
    this.target = new THREE.WebGLRenderTarget(1, 1, { type: THREE.HalfFloatType, depthBuffer: false,
      minFilter: THREE.NearestFilter, magFilter: THREE.NearestFilter });  // prettier-ignore
    const composite = new THREE.RawShaderMaterial({
      glslVersion: THREE.GLSL3, vertexShader: compositeVertex, fragmentShader: compositeFragment,
      uniforms: { u_layer: { value: this.target.texture } }, transparent: true, depthTest: false, depthWrite: false,
      blending: THREE.CustomBlending, blendSrc: THREE.OneFactor, blendDst: THREE.OneMinusSrcAlphaFactor,
      blendSrcAlpha: THREE.OneFactor, blendDstAlpha: THREE.OneMinusSrcAlphaFactor,
    });
    const quad = new THREE.Mesh(new THREE.PlaneGeometry(2, 2), composite);
    quad.frustumCulled = false;
    this.compositeScene = new THREE.Scene();
    this.compositeScene.add(quad);
    this.compositeCamera = new THREE.OrthographicCamera(-1, 1, 1, -1, 0, 1);

    this.requested = 0; // id of the newest request sent or queued
    this.sorted = -1; // id of the order in the attribute
    this.busy = false;
    this.pending = null;
    this.lastKey = "";
    this.waiters = [];
    this.sorter = startSorter((e) => this.onSorted(e.data));
    const inputs = sortInputs(file.splat.words, this.count);
    this.sorter.postMessage({ init: inputs }, [inputs.positions.buffer, inputs.motion.buffer, inputs.trbf.buffer, inputs.opacity.buffer]);
  }

  // Ask for the order at model time t seen from `camera` (nothing new is sent when neither changed).
  // Returns the request's id: whenSorted(id) resolves once frames draw with it.
  request(camera, t) {
    camera.updateMatrixWorld();
    const view = viewFromCamera(camera);
    const tau = recordTime(this.meta, t);
    const rows = segmentRows(this.meta, tau);
    const z = [view[2], view[6], view[10], view[14]];
    const key = `${tau}|${z.join(",")}`;
    if (key === this.lastKey) return this.requested;
    this.lastKey = key;
    const req = { id: ++this.requested, view: z, tau, ...rows };
    if (this.busy) this.pending = req;
    else this.send(req);
    return req.id;
  }

  send(req) {
    this.busy = true;
    this.sorter.postMessage(req);
  }

  onSorted(msg) {
    this.indexAttr.array.set(msg.order);
    this.indexAttr.clearUpdateRanges();
    this.indexAttr.addUpdateRange(0, Math.max(msg.order.length, 1));
    this.indexAttr.needsUpdate = true;
    this.geometry.instanceCount = msg.order.length;
    this.sorted = msg.id;
    this.sortMs = msg.ms;
    this.busy = false;
    if (this.pending) {
      const next = this.pending;
      this.pending = null;
      this.send(next);
    }
    this.waiters = this.waiters.filter((w) => (w.id <= this.sorted ? (w.resolve(), false) : true));
  }

  // Where the sort runs, how long the last one took (ms) and how many records it kept.
  stats() {
    return { sorter: this.sorter.where, sortMs: this.sortMs, drawn: this.geometry.instanceCount, records: this.count };
  }

  whenSorted(id) {
    if (id <= this.sorted) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ id, resolve }));
  }

  // Draw the layer at model time t from `camera` over what the renderer's canvas holds.
  render(renderer, camera, t) {
    const size = renderer.getDrawingBufferSize(new THREE.Vector2());
    if (this.target.width !== size.x || this.target.height !== size.y) this.target.setSize(size.x, size.y);
    camera.updateMatrixWorld();
    const u = this.uniforms;
    u.u_view.value.fromArray(viewFromCamera(camera));
    const k = intrinsicsFromCamera(camera, size.x, size.y);
    u.u_intr.value.set(k.fx, k.fy, k.cx, k.cy);
    u.u_size.value.copy(size);
    u.u_campos.value.setFromMatrixPosition(camera.matrixWorld);
    const tau = recordTime(this.meta, t);
    u.u_tau.value = tau;
    u.u_segmented.value = segmentRows(this.meta, tau).segmented;
    renderer.setRenderTarget(this.target);
    renderer.setClearColor(0x000000, 0);
    renderer.clear(true, false, false);
    renderer.render(this.scene, camera);
    renderer.setRenderTarget(null);
    renderer.render(this.compositeScene, this.compositeCamera);
  }
}
