// Cameras: motion4d's (viewmat world→camera in OpenCV axes, pinhole K in pixels) ↔ three.js's (camera→world
// in OpenGL axes, a projection matrix). The three.js camera is the one the page moves; the splat layer reads
// its OpenCV view and intrinsics back from it every frame (viewFromCamera, intrinsicsFromCamera).
import * as THREE from "three";

const NEAR = 0.01;
const FAR = 1000;

// The projection matrix of intrinsics K = {fx, fy, cx, cy} for a width × height image (y down, pixel centres
// at +0.5, as our rasterizer): NDC x = 2u/W − 1, NDC y = 1 − 2v/H.
export function projectionFromIntrinsics(k, width, height) {
  const m = new THREE.Matrix4();
  m.set(
    (2 * k.fx) / width, 0, 1 - (2 * k.cx) / width, 0,
    0, (2 * k.fy) / height, (2 * k.cy) / height - 1, 0,
    0, 0, -(FAR + NEAR) / (FAR - NEAR), (-2 * FAR * NEAR) / (FAR - NEAR),
    0, 0, -1, 0,
  );
  return m;
}

export function applyIntrinsics(camera, k, width, height) {
  camera.projectionMatrix.copy(projectionFromIntrinsics(k, width, height));
  camera.projectionMatrixInverse.copy(camera.projectionMatrix).invert();
  camera.fov = (2 * Math.atan(height / (2 * k.fy)) * 180) / Math.PI; // OrbitControls pans with it
  camera.aspect = width / height;
}

// Intrinsics of the three.js camera's projection for a width × height canvas (inverse of the above).
export function intrinsicsFromCamera(camera, width, height) {
  const e = camera.projectionMatrix.elements; // column-major
  return { fx: (e[0] * width) / 2, fy: (e[5] * height) / 2, cx: ((1 - e[8]) * width) / 2, cy: ((1 + e[9]) * height) / 2 };
}

// World→camera OpenCV view (column-major Float32Array(16)) of a three.js camera: OpenGL view with y, z negated.
export function viewFromCamera(camera) {
  const v = camera.matrixWorldInverse.elements;
  const out = new Float32Array(16);
  for (let col = 0; col < 4; col++) {
    out[4 * col + 0] = v[4 * col + 0];
    out[4 * col + 1] = -v[4 * col + 1];
    out[4 * col + 2] = -v[4 * col + 2];
    out[4 * col + 3] = v[4 * col + 3];
  }
  return out;
}

// Place the three.js camera at one of ours: viewmat rows [4][4] (world→camera, OpenCV).
export function setPose(camera, viewmat) {
  const V = new THREE.Matrix4();
  V.set(...viewmat.flat());
  const flip = new THREE.Matrix4().makeScale(1, -1, -1);
  const c2w = V.clone().invert().multiply(flip); // camera→world in OpenGL axes
  c2w.decompose(camera.position, camera.quaternion, camera.scale);
  camera.updateMatrixWorld(true);
}

// Intrinsics of camera c ({K, width, height}) for a width × height canvas: each axis scaled to the canvas
// (the same framing) when `stretch`, else one scale from the heights, centred.
export function scaledIntrinsics(c, width, height, stretch) {
  const K = c.K;
  if (stretch) {
    const sx = width / c.width, sy = height / c.height;
    return { fx: K[0][0] * sx, fy: K[1][1] * sy, cx: K[0][2] * sx, cy: K[1][2] * sy };
  }
  const s = height / c.height;
  return { fx: K[0][0] * s, fy: K[1][1] * s, cx: width / 2 + (K[0][2] - c.width / 2) * s, cy: K[1][2] * s };
}

// The point the orbit turns about: on the camera's optical axis, as far as the scene centre is along it,
// so that handing the camera to OrbitControls does not turn it.
export function orbitTarget(camera, center) {
  const forward = new THREE.Vector3(0, 0, -1).applyQuaternion(camera.quaternion);
  const c = new THREE.Vector3(...center);
  const depth = Math.max(c.clone().sub(camera.position).dot(forward), 1e-3);
  return camera.position.clone().add(forward.multiplyScalar(depth));
}
