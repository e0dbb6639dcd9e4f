// The splat shaders: motion4d's rasterizer (render/projection.py, render/rasterization.py, render/sh.py) on
// instanced quads. Per record (data textures, see splatv.py): the position, rotation and temporal weight at
// record time τ; EWA projection with the Jacobian's field-of-view clamp; the 0.3 px² low-pass dilation
// (and, in "antialiased" mode, the opacity compensation); the opacity-aware box of half-sides
// ceil(min(3.33, √(2 ln(255 o)))·σ) as the quad; SH colour from the direction camera → centre. The fragment
// shader gives α = min(0.999, o·exp(−½ dᵀ Σ⁻¹ d)), dropped below 1/255, premultiplied, for front-to-back
// ("under") blending.

export const vertexShader = /* glsl */ `
precision highp float;
precision highp int;
precision highp usampler2D;

uniform usampler2D u_records;
uniform usampler2D u_sh;
uniform int u_shTexels;
uniform int u_shWidth;
uniform int u_shDegree;
uniform mat4 u_view;
uniform vec4 u_intr;
uniform vec2 u_size;
uniform vec3 u_campos;
uniform float u_tau;
uniform bool u_segmented;
uniform bool u_antialiased;

in vec3 position;
in float splatIndex;

out vec4 vColor;
out vec3 vConic;
out vec2 vCenter;

const float ALPHA_MIN = 1.0 / 255.0;

void cull() { gl_Position = vec4(0.0, 0.0, 2.0, 1.0); }

vec3 shColor(int index, vec3 dir) {
  float c[48];
  for (int k = 0; k < 6; k++) {
    if (k >= u_shTexels) break;
    int t = index * u_shTexels + k;
    uvec4 w = texelFetch(u_sh, ivec2(t % u_shWidth, t / u_shWidth), 0);
    vec2 a = unpackHalf2x16(w.x), b = unpackHalf2x16(w.y), d = unpackHalf2x16(w.z), e = unpackHalf2x16(w.w);
    c[8 * k + 0] = a.x; c[8 * k + 1] = a.y; c[8 * k + 2] = b.x; c[8 * k + 3] = b.y;
    c[8 * k + 4] = d.x; c[8 * k + 5] = d.y; c[8 * k + 6] = e.x; c[8 * k + 7] = e.y;
  }
  float basis[16];
  basis[0] = 0.28209479177387814;
  if (u_shDegree >= 1) {
    vec3 n = normalize(dir);
    float x = n.x, y = n.y, z = n.z;
    basis[1] = -0.4886025119029199 * y;
    basis[2] = 0.4886025119029199 * z;
    basis[3] = -0.4886025119029199 * x;
    if (u_shDegree >= 2) {
      float xx = x * x, yy = y * y, zz = z * z;
      basis[4] = 1.0925484305920792 * x * y;
      basis[5] = -1.0925484305920792 * y * z;
      basis[6] = 0.31539156525252005 * (2.0 * zz - xx - yy);
      basis[7] = -1.0925484305920792 * x * z;
      basis[8] = 0.5462742152960396 * (xx - yy);
      if (u_shDegree >= 3) {
        basis[9] = -0.5900435899266435 * y * (3.0 * xx - yy);
        basis[10] = 2.890611442640554 * x * y * z;
        basis[11] = -0.4570457994644658 * y * (4.0 * zz - xx - yy);
        basis[12] = 0.3731763325901154 * z * (2.0 * zz - 3.0 * xx - 3.0 * yy);
        basis[13] = -0.4570457994644658 * x * (4.0 * zz - xx - yy);
        basis[14] = 1.445305721320277 * z * (xx - yy);
        basis[15] = -0.5900435899266435 * x * (xx - 3.0 * yy);
      }
    }
  }
  int K = (u_shDegree + 1) * (u_shDegree + 1);
  vec3 rgb = vec3(0.0);
  for (int k = 0; k < 16; k++) {
    if (k >= K) break;
    rgb += basis[k] * vec3(c[3 * k], c[3 * k + 1], c[3 * k + 2]);
  }
  return max(rgb + 0.5, 0.0);
}

void main() {
  int index = int(splatIndex);
  uint ui = uint(index);
  ivec2 base = ivec2(int((ui & 1023u) << 2), int(ui >> 10));
  uvec4 w0 = texelFetch(u_records, base, 0);
  uvec4 w1 = texelFetch(u_records, base + ivec2(1, 0), 0);
  uvec4 w2 = texelFetch(u_records, base + ivec2(2, 0), 0);
  uvec4 w3 = texelFetch(u_records, base + ivec2(3, 0), 0);

  vec2 trbf = unpackHalf2x16(w3.w);
  float dt = u_tau - trbf.x;
  float opacity = float(w1.w >> 24) / 255.0;
  if (!u_segmented) opacity *= exp(-(dt / trbf.y) * (dt / trbf.y));
  if (opacity < ALPHA_MIN) { cull(); return; }

  vec2 m01 = unpackHalf2x16(w2.x), m23 = unpackHalf2x16(w2.y), m45 = unpackHalf2x16(w2.z), m67 = unpackHalf2x16(w2.w);
  float m8 = unpackHalf2x16(w3.x).x;
  vec3 mean = uintBitsToFloat(w0.xyz) + vec3(m01, m23.x) * dt + vec3(m23.y, m45) * (dt * dt) + vec3(m67, m8) * (dt * dt * dt);

  vec4 q = vec4(unpackHalf2x16(w0.w), unpackHalf2x16(w1.x)) + vec4(unpackHalf2x16(w3.y), unpackHalf2x16(w3.z)) * dt;
  q = normalize(q);
  float qw = q.x, qx = q.y, qy = q.z, qz = q.w;
  // rows of R (quat_to_rotmat), as GLSL columns, then transposed
  mat3 R = transpose(mat3(
    1.0 - 2.0 * (qy * qy + qz * qz), 2.0 * (qx * qy - qw * qz), 2.0 * (qx * qz + qw * qy),
    2.0 * (qx * qy + qw * qz), 1.0 - 2.0 * (qx * qx + qz * qz), 2.0 * (qy * qz - qw * qx),
    2.0 * (qx * qz - qw * qy), 2.0 * (qy * qz + qw * qx), 1.0 - 2.0 * (qx * qx + qy * qy)));
  vec3 s = vec3(unpackHalf2x16(w1.y), unpackHalf2x16(w1.z).x);
  mat3 M = R * mat3(s.x, 0.0, 0.0, 0.0, s.y, 0.0, 0.0, 0.0, s.z);
  mat3 W = mat3(u_view);
  mat3 Mc = W * M;
  mat3 cov = Mc * transpose(Mc);

  vec3 pc = (u_view * vec4(mean, 1.0)).xyz;
  if (!(pc.z > 0.01)) { cull(); return; }
  float fx = u_intr.x, fy = u_intr.y, cx = u_intr.z, cy = u_intr.w;
  float tanx = 0.5 * u_size.x / fx, tany = 0.5 * u_size.y / fy;
  float u = clamp(pc.x / pc.z, -(cx / fx + 0.3 * tanx), (u_size.x - cx) / fx + 0.3 * tanx);
  float v = clamp(pc.y / pc.z, -(cy / fy + 0.3 * tany), (u_size.y - cy) / fy + 0.3 * tany);
  vec3 j0 = vec3(fx / pc.z, 0.0, -fx * u / pc.z);
  vec3 j1 = vec3(0.0, fy / pc.z, -fy * v / pc.z);
  float a = dot(j0, cov * j0), b = dot(j0, cov * j1), c = dot(j1, cov * j1);
  float det0 = a * c - b * b;
  a += 0.3;
  c += 0.3;
  float det = a * c - b * b;
  if (!(det > 0.0)) { cull(); return; }
  if (u_antialiased) opacity *= sqrt(max(det0 / det, 0.0));
  if (opacity < ALPHA_MIN) { cull(); return; }

  vec2 center = vec2(fx * pc.x / pc.z + cx, fy * pc.y / pc.z + cy);
  float extent = min(3.33, sqrt(2.0 * log(max(opacity * 255.0, 1.0))));
  vec2 r = vec2(ceil(extent * sqrt(max(a, 0.0))), ceil(extent * sqrt(max(c, 0.0))));
  if ((r.x <= 0.0 && r.y <= 0.0) || center.x + r.x <= 0.0 || center.x - r.x >= u_size.x || center.y + r.y <= 0.0 || center.y - r.y >= u_size.y) {
    cull();
    return;
  }

  vColor = vec4(shColor(index, mean - u_campos), opacity);
  vConic = vec3(c / det, -b / det, a / det);
  vCenter = center;
  vec2 px = center + position.xy * r;
  gl_Position = vec4(2.0 * px.x / u_size.x - 1.0, 1.0 - 2.0 * px.y / u_size.y, 0.0, 1.0);
}
`;

export const fragmentShader = /* glsl */ `
precision highp float;

uniform vec2 u_size;

in vec4 vColor;
in vec3 vConic;
in vec2 vCenter;

out vec4 fragColor;

void main() {
  vec2 d = vec2(gl_FragCoord.x, u_size.y - gl_FragCoord.y) - vCenter;
  float sigma = 0.5 * (vConic.x * d.x * d.x + vConic.z * d.y * d.y) + vConic.y * d.x * d.y;
  if (sigma < 0.0) discard;
  float alpha = min(0.999, vColor.a * exp(-sigma));
  if (alpha < 1.0 / 255.0) discard;
  fragColor = vec4(vColor.rgb * alpha, alpha);
}
`;

// Composite the splat layer (premultiplied, in a float target) over what is on screen.
export const compositeVertex = /* glsl */ `
precision highp float;
in vec3 position;
out vec2 vUv;
void main() {
  vUv = position.xy * 0.5 + 0.5;
  gl_Position = vec4(position.xy, 0.0, 1.0);
}
`;

export const compositeFragment = /* glsl */ `
precision highp float;
uniform sampler2D u_layer;
in vec2 vUv;
out vec4 fragColor;
void main() {
  fragColor = texture(u_layer, vUv);
}
`;
