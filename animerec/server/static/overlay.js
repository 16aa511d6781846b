// The OBS overlay: draws the newest frame's faces from /ws and acknowledges each message.
//
// Query parameters (all optional):
//   font=20          label font size in px          line=3        box line width in px
//   box=#00e676      box colour                     unknown=#ff9100  box colour for "unknown"
//   text=#ffffff     label text colour              label=rgba(0,0,0,0.65)  label background
//   confidence=1     show the confidence            top3=0        show the three best candidates
//   fit=contain      contain: keep the frame's aspect ratio, centred; stretch: fill the page
//   stale=1.5        seconds without a message before the boxes are hidden
//   preview=0        show the source frame under the boxes (alignment checks in a normal browser)
//   debug=0          show the connection state       token=T       the server's token
// Colours take any CSS colour; in a URL write # as %23 (box=%23ff0000).
"use strict";

(() => {
  const params = new URLSearchParams(location.search);
  const token = params.get("token") || "";
  const colour = (name, fallback) => {
    const value = params.get(name);
    return value && CSS.supports("color", value) ? value : fallback;
  };
  const number = (name, fallback, low, high) => {
    const value = Number(params.get(name));
    return params.has(name) && Number.isFinite(value) ? Math.min(high, Math.max(low, value)) : fallback;
  };
  const flag = (name, fallback) =>
    params.has(name) ? !["0", "false", "no", "off"].includes(params.get(name).toLowerCase()) : fallback;

  const style = {
    font: number("font", 20, 6, 200),
    line: number("line", 3, 0, 40),
    box: colour("box", "#00e676"),
    unknown: colour("unknown", "#ff9100"),
    text: colour("text", "#ffffff"),
    label: colour("label", "rgba(0, 0, 0, 0.65)"),
    confidence: flag("confidence", true),
    top3: flag("top3", false),
    stretch: params.get("fit") === "stretch",
    stale: number("stale", 1.5, 0.1, 3600),
    preview: flag("preview", false),
    debug: flag("debug", false),
  };
  const root = document.documentElement.style;
  root.setProperty("--font", `${style.font}px`);
  root.setProperty("--line", `${style.line}px`);
  root.setProperty("--box", style.box);
  root.setProperty("--unknown", style.unknown);
  root.setProperty("--text", style.text);
  root.setProperty("--label", style.label);

  const stage = document.getElementById("stage");
  const preview = document.getElementById("preview");
  const status = document.getElementById("status");
  status.style.display = style.debug ? "block" : "none";
  const withToken = (path, extra = {}) => {
    const url = new URL(path, location.href);
    if (token) url.searchParams.set("token", token);
    for (const [key, value] of Object.entries(extra)) url.searchParams.set(key, value);
    return url;
  };

  // ---- drawing: a pool of absolutely positioned divs, placed in % of the frame ----------------
  const pool = [];
  let frameSize = { width: 0, height: 0 };

  function fit() {
    // Keep the frame's aspect ratio (like OBS's own "fit to screen") unless asked to stretch.
    if (style.stretch || !frameSize.width || !frameSize.height) {
      Object.assign(stage.style, { left: "0", top: "0", width: "100%", height: "100%" });
      return;
    }
    const scale = Math.min(innerWidth / frameSize.width, innerHeight / frameSize.height);
    const width = frameSize.width * scale;
    const height = frameSize.height * scale;
    Object.assign(stage.style, {
      left: `${(innerWidth - width) / 2}px`, top: `${(innerHeight - height) / 2}px`,
      width: `${width}px`, height: `${height}px`,
    });
  }
  addEventListener("resize", fit);

  function faceView(i) {
    while (pool.length <= i) {
      const box = document.createElement("div");
      const label = document.createElement("div");
      const name = document.createElement("span");
      const confidence = document.createElement("span");
      const top3 = document.createElement("span");
      box.className = "face";
      label.className = "label";
      name.className = "name";
      confidence.className = "confidence";
      top3.className = "top3";
      label.append(name, confidence, top3);
      box.append(label);
      stage.append(box);
      pool.push({ box, label, name, confidence, top3 });
    }
    return pool[i];
  }

  const percent = (value) => `${(Number(value) * 100).toFixed(4)}%`;

  function draw(message) {
    if (message.width !== frameSize.width || message.height !== frameSize.height) {
      frameSize = { width: message.width, height: message.height };
      fit();
    }
    const faces = Array.isArray(message.faces) ? message.faces : [];
    faces.forEach((face, i) => {
      const view = faceView(i);
      const [x, y, w, h] = face.box;
      Object.assign(view.box.style, { left: percent(x), top: percent(y), width: percent(w), height: percent(h) });
      view.box.hidden = false;
      view.box.dataset.name = face.name;
      view.box.classList.toggle("unknown", face.name === "unknown");
      view.label.classList.toggle("below", y < 0.08); // no room above a face at the top edge
      view.name.textContent = face.name; // textContent: a name is never HTML
      view.confidence.textContent = style.confidence ? ` ${Math.round(face.confidence * 100)}%` : "";
      view.top3.textContent = style.top3 && Array.isArray(face.top)
        ? face.top.map(([name, p]) => `${name} ${Math.round(p * 100)}%`).join("\n")
        : "";
    });
    for (let i = faces.length; i < pool.length; i++) pool[i].box.hidden = true;
    stage.dataset.index = String(message.index);
  }

  function clearFaces() {
    for (const view of pool) view.box.hidden = true;
  }

  // ---- preview: the raw frame under the boxes, one request at a time --------------------------
  let previewBusy = false;
  function refreshPreview(index) {
    if (previewBusy) return;
    previewBusy = true;
    preview.style.display = "block";
    preview.onload = preview.onerror = () => { previewBusy = false; };
    preview.src = withToken("/snapshot.jpg", { raw: "1", i: String(index) }).href;
  }

  // ---- connection: reconnect with capped, jittered backoff; hide stale boxes -----------------
  let delay = 250;
  let staleTimer = 0;

  function setStatus(state) {
    status.dataset.state = state;
    status.textContent = state;
  }

  function armStale() {
    clearTimeout(staleTimer);
    staleTimer = setTimeout(clearFaces, style.stale * 1000);
  }

  function connect() {
    setStatus("connecting");
    const url = withToken("/ws");
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(url);
    socket.onopen = () => {
      delay = 250;
      setStatus("connected");
    };
    socket.onmessage = (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (!message || !Number.isInteger(message.index)) return;
      draw(message);
      socket.send(JSON.stringify({ ack: message.index })); // after drawing: delivery includes it
      armStale();
      if (style.preview) refreshPreview(message.index);
    };
    socket.onclose = () => {
      setStatus("reconnecting");
      clearFaces();
      const wait = delay * (0.8 + 0.4 * Math.random()); // jitter: many overlays, one server
      delay = Math.min(delay * 2, 5000);
      setTimeout(connect, wait);
    };
  }

  connect();
})();
