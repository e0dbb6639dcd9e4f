// Reading a .splatv file (splaTV's container plus our motion4d header; see motion4d/export/splatv.py).

const MAGIC = 0x674b;

// {meta, splat: {words: Uint32Array, texwidth, texheight}, sh: {words, texwidth, texheight, texelsPerRecord}}
export function parseSplatv(buffer) {
  const head = new DataView(buffer, 0, 8);
  if (buffer.byteLength < 8 || head.getUint32(0, true) !== MAGIC) throw new Error("not a .splatv file (no 0x674b magic)");
  const n = head.getUint32(4, true);
  const chunks = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 8, n)));
  let offset = 8 + n;
  const body = {};
  for (const c of chunks) {
    if (offset + c.size > buffer.byteLength) throw new Error(`.splatv file truncated in chunk ${c.type}`);
    body[c.type] = { desc: c, words: new Uint32Array(buffer.slice(offset, offset + c.size)) };
    offset += c.size;
  }
  const splat = body["splat"];
  if (!splat || !splat.desc.motion4d) throw new Error(".splatv file without a motion4d header");
  const sh = body["motion4d.sh"];
  return {
    meta: splat.desc.motion4d,
    splat: { words: splat.words, texwidth: splat.desc.texwidth, texheight: splat.desc.texheight },
    sh: sh && { words: sh.words, texwidth: sh.desc.texwidth, texheight: sh.desc.texheight, texelsPerRecord: sh.desc.texels_per_record },
  };
}

// f16 bits → number.
export function halfToFloat(h) {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

// What the depth sort needs of each record: position, motion coefficients, temporal centre / scale, opacity.
export function sortInputs(words, count) {
  const f32 = new Float32Array(words.buffer, words.byteOffset, words.length);
  const positions = new Float32Array(3 * count);
  const motion = new Float32Array(9 * count);
  const trbf = new Float32Array(2 * count);
  const opacity = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    const w = 16 * i;
    positions.set(f32.subarray(w, w + 3), 3 * i);
    for (let k = 0; k < 5; k++) {
      const u = words[w + 8 + k];
      motion[9 * i + 2 * k] = halfToFloat(u & 0xffff);
      if (2 * k + 1 < 9) motion[9 * i + 2 * k + 1] = halfToFloat(u >>> 16);
    }
    trbf[2 * i] = halfToFloat(words[w + 15] & 0xffff);
    trbf[2 * i + 1] = halfToFloat(words[w + 15] >>> 16);
    opacity[i] = (words[w + 7] >>> 24) / 255;
  }
  return { positions, motion, trbf, opacity };
}

// Record time τ of model time t (see record_time in splatv.py).
export function recordTime(meta, t) {
  const [t0, t1] = meta.time_range;
  return t1 > t0 ? (t - t0) / (t1 - t0) : 0;
}

// {start, count, segmented}: the records drawn at τ.
export function segmentRows(meta, tau) {
  const segs = meta.segments || [];
  if (!segs.length) return { start: 0, count: meta.count, segmented: false };
  let k = 0;
  while (k + 1 < segs.length && tau >= segs[k].tau1) k++;
  return { start: segs[k].start, count: segs[k].count, segmented: true };
}
