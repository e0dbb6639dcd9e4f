// The control bar: play / pause, time slider, speed, camera, what to show, background colour.

function el(tag, attrs = {}, children = []) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.appendChild(c);
  return e;
}

function options(select, items, value) {
  select.innerHTML = "";
  for (const [v, label] of items) select.appendChild(el("option", { value: String(v), text: label }));
  select.value = String(value);
}

export function toHex(rgb) {
  return "#" + rgb.map((c) => Math.round(Math.min(Math.max(c, 0), 1) * 255).toString(16).padStart(2, "0")).join("");
}

export function fromHex(hex) {
  const n = parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255].map((c) => c / 255);
}

// `player`: {state, setTime(t), setPlaying(bool), setSpeed(x), setView(i), setMode(m), setBackground(rgb)};
// returns {update()} to call when the state changes from elsewhere.
export function buildUi(bar, player, config) {
  const [t0, t1] = config.time_range;
  const play = el("button", { id: "m4d-play", title: "play / pause (space)" });
  const slider = el("input", { id: "m4d-time", type: "range", min: String(t0), max: String(t1), step: String((t1 - t0) / 1000 || 1) });
  const label = el("span", { id: "m4d-tlabel" });
  const speed = el("select", { id: "m4d-speed", title: "speed" });
  options(speed, [0.25, 0.5, 1, 2, 4].map((s) => [s, `${s}×`]), 1);
  const view = el("select", { id: "m4d-view", title: "camera" });
  options(view, [[-1, "free"], ...config.cameras.map((c, i) => [i, c.name || `view ${i}`])], player.state.view);
  const mode = el("select", { id: "m4d-mode", title: "show" });
  const modes = [];
  if (config.has_splats) modes.push(["splats", "splats"]);
  if (config.glb) modes.push(["mesh", "mesh"]);
  if (config.has_splats && config.glb) modes.push(["both", "both"]);
  options(mode, modes, player.state.mode);
  const bg = el("input", { id: "m4d-bg", type: "color", title: "background", value: toHex(player.state.background) });
  for (const e of [play, slider, label, speed, view, mode, bg]) bar.appendChild(e);
  if (modes.length < 2) mode.style.display = "none";
  if (!(t1 > t0)) for (const e of [play, slider, label, speed]) e.style.display = "none";

  play.onclick = () => player.setPlaying(!player.state.playing);
  slider.oninput = () => {
    player.setPlaying(false);
    player.setTime(parseFloat(slider.value));
  };
  speed.onchange = () => player.setSpeed(parseFloat(speed.value));
  view.onchange = () => player.setView(parseInt(view.value, 10));
  mode.onchange = () => player.setMode(mode.value);
  bg.oninput = () => player.setBackground(fromHex(bg.value));
  window.addEventListener("keydown", (e) => {
    if (e.code === "Space" && e.target === document.body) {
      e.preventDefault();
      player.setPlaying(!player.state.playing);
    }
  });

  return {
    update() {
      const s = player.state;
      play.textContent = s.playing ? "❚❚" : "▶";
      slider.value = String(s.t);
      label.textContent = `t = ${s.t.toFixed(3)}`;
      view.value = String(s.view);
      mode.value = s.mode;
    },
  };
}
