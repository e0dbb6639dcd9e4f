// The depth sort, run in a Web Worker so that it never blocks a frame. The function is turned into the
// worker's source text (sortWorker.toString()), so it must not use anything from outside its own body.
//
// Messages in: {init: {positions, motion, trbf, opacity}} once, then {id, view: [r20, r21, r22, t2] (the
// camera-z row of the OpenCV view), tau, start, count, segmented}. Out: {id, order: Float32Array, ms} — the
// records in [start, start + count) seen at record time τ (present: opacity × temporal weight ≥ 1/255; in
// front of the near plane), nearest first, sorted exactly by the camera depth of their centre *at τ*
// (an LSD radix sort on the float bits of the depths, which are positive).
export function sortWorker(self) {
  const ALPHA = 1 / 255;
  const NEAR = 0.01;
  let data = null;
  let depths = new Float32Array(0);
  let ids = new Uint32Array(0);
  let depths2 = new Float32Array(0);
  let ids2 = new Uint32Array(0);
  const counts = new Uint32Array(2048);

  function grow(n) {
    if (depths.length >= n) return;
    depths = new Float32Array(n);
    ids = new Uint32Array(n);
    depths2 = new Float32Array(n);
    ids2 = new Uint32Array(n);
  }

  function radixSort(n) {
    let kIn = depths, iIn = ids, kOut = depths2, iOut = ids2;
    for (let shift = 0; shift < 32; shift += 11) {
      const bitsIn = new Uint32Array(kIn.buffer, 0, n);
      counts.fill(0);
      for (let j = 0; j < n; j++) counts[(bitsIn[j] >>> shift) & 2047]++;
      let sum = 0;
      for (let b = 0; b < 2048; b++) {
        const c = counts[b];
        counts[b] = sum;
        sum += c;
      }
      for (let j = 0; j < n; j++) {
        const dst = counts[(bitsIn[j] >>> shift) & 2047]++;
        kOut[dst] = kIn[j];
        iOut[dst] = iIn[j];
      }
      [kIn, kOut] = [kOut, kIn];
      [iIn, iOut] = [iOut, iIn];
    }
    return iIn; // three passes: the result is in the second buffers
  }

  function sort(req) {
    const start = performance.now();
    const P = data.positions, M = data.motion, T = data.trbf, O = data.opacity;
    const v = req.view, tau = req.tau;
    grow(req.count);
    let n = 0;
    for (let i = req.start; i < req.start + req.count; i++) {
      const dt = tau - T[2 * i];
      let o = O[i];
      if (!req.segmented) {
        const s = dt / T[2 * i + 1];
        o *= Math.exp(-s * s);
      }
      if (o < ALPHA) continue;
      const m = 9 * i, dt2 = dt * dt, dt3 = dt2 * dt;
      const x = P[3 * i] + M[m] * dt + M[m + 3] * dt2 + M[m + 6] * dt3;
      const y = P[3 * i + 1] + M[m + 1] * dt + M[m + 4] * dt2 + M[m + 7] * dt3;
      const z = P[3 * i + 2] + M[m + 2] * dt + M[m + 5] * dt2 + M[m + 8] * dt3;
      const depth = v[0] * x + v[1] * y + v[2] * z + v[3];
      if (!(depth > NEAR)) continue;
      depths[n] = depth;
      ids[n] = i;
      n++;
    }
    const sorted = radixSort(n);
    const order = new Float32Array(n);
    for (let j = 0; j < n; j++) order[j] = sorted[j];
    self.postMessage({ id: req.id, order, ms: performance.now() - start }, [order.buffer]);
  }

  self.onmessage = (e) => {
    if (e.data.init) data = e.data.init;
    else sort(e.data);
  };
}
