// Load a GLB with three.js's GLTFLoader, play the chosen animations together with an AnimationMixer and print
// every mesh vertex (morph targets, then skinning, as three.js renders them) in scene coordinates at the
// given times (seconds) as JSON {duration, times, vertices [T][V][3]}.
//   node play.mjs FILE.glb ANIMATIONS T1 T2 ...     (ANIMATIONS: "all" or comma-separated indices)
globalThis.self = globalThis;
if (typeof navigator === 'undefined') globalThis.navigator = { userAgent: 'node' };
import fs from 'fs';
import * as THREE from 'three';
import { GLTFLoader } from 'three/addons/loaders/GLTFLoader.js';

const [path, which, ...times] = process.argv.slice(2);
const buf = fs.readFileSync(path);
const warn = console.warn;
console.warn = () => {}; // textures cannot be decoded without a browser; geometry and animation are what we check
new GLTFLoader().parse(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength), '', (gltf) => {
  console.warn = warn;
  const mixer = new THREE.AnimationMixer(gltf.scene);
  const clips = which === 'all' ? gltf.animations : which.split(',').filter((s) => s !== '').map((i) => gltf.animations[Number(i)]);
  const actions = clips.map((clip) => mixer.clipAction(clip));
  for (const action of actions) {
    action.setLoop(THREE.LoopOnce); // hold the last pose at the end instead of wrapping to the first
    action.clampWhenFinished = true;
    action.play();
  }
  const out = { duration: Math.max(0, ...clips.map((c) => c.duration)), times: [], vertices: [] };
  for (const t of times.map(Number)) {
    for (const action of actions) action.reset(); // a clamped action stays paused: un-pause before each jump
    mixer.setTime(t);
    gltf.scene.updateMatrixWorld(true);
    const frame = [];
    const v = new THREE.Vector3();
    gltf.scene.traverse((o) => {
      if (!o.isMesh) return;
      for (let i = 0; i < o.geometry.attributes.position.count; i++) {
        o.getVertexPosition(i, v).applyMatrix4(o.matrixWorld);
        frame.push([v.x, v.y, v.z]);
      }
    });
    out.times.push(t);
    out.vertices.push(frame);
  }
  process.stdout.write(JSON.stringify(out));
}, (e) => { console.error(String(e)); process.exit(1); });
