// The animated mesh of an animate run: its GLB through three.js's GLTFLoader and AnimationMixer, placed in
// the world by the run's asset_to_world matrix and posed at model time t (glTF seconds = t × secondsPerTime).
// Unlit, both faces drawn: base colour × texture × vertex colour, as motion4d's mesh colours.
import * as THREE from "three";
import { GLTFLoader } from "three/examples/jsm/loaders/GLTFLoader.js";

function unlit(material) {
  const basic = new THREE.MeshBasicMaterial({
    color: material.color ? material.color.clone() : new THREE.Color(1, 1, 1),
    map: material.map || null,
    vertexColors: material.vertexColors,
    transparent: material.transparent,
    opacity: material.opacity,
    alphaTest: material.alphaTest,
    side: THREE.DoubleSide,
  });
  basic.name = material.name;
  return basic;
}

export async function loadMeshLayer(buffer, options) {
  const gltf = await new Promise((resolve, reject) => new GLTFLoader().parse(buffer, "", resolve, reject));
  const root = new THREE.Group();
  root.matrixAutoUpdate = false;
  const a2w = options.asset_to_world || [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]];
  root.matrix.set(...a2w.flat());
  root.add(gltf.scene);
  gltf.scene.traverse((o) => {
    if (o.isMesh) {
      o.material = Array.isArray(o.material) ? o.material.map(unlit) : unlit(o.material);
      o.frustumCulled = false; // skinned: the rest-pose bounds do not follow the animation
    }
  });
  const mixer = new THREE.AnimationMixer(gltf.scene);
  const actions = gltf.animations.map((clip) => {
    const action = mixer.clipAction(clip);
    action.play();
    return action;
  });
  const duration = Math.max(0, ...gltf.animations.map((c) => c.duration));
  return new MeshLayer(root, mixer, actions, options.seconds_per_time, duration);
}

class MeshLayer {
  constructor(root, mixer, actions, secondsPerTime, duration) {
    this.root = root;
    this.mixer = mixer;
    this.actions = actions;
    this.secondsPerTime = secondsPerTime || 1;
    this.duration = duration;
    this.scene = new THREE.Scene();
    this.scene.add(root);
  }

  // Pose at model time t: each clip at t × secondsPerTime seconds, held at its ends.
  pose(t) {
    const seconds = t * this.secondsPerTime;
    for (const a of this.actions) {
      a.enabled = true;
      a.paused = false;
      a.time = Math.min(Math.max(seconds, 0), a.getClip().duration);
    }
    this.mixer.update(0);
  }

  // Beside the splats (moved by `offset`, world units) or in their place.
  place(offset) {
    this.scene.position.copy(offset);
    this.scene.updateMatrixWorld(true);
  }

  render(renderer, camera, t) {
    this.pose(t);
    renderer.render(this.scene, camera);
  }
}
