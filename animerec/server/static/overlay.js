// The OBS overlay: draws the newest frame's faces from /ws and acknowledges each message.
//
// Labels read and sit as in the burnt-in overlay (animerec/realtime/overlay.py): the same text
// (`gura 93%`, `unknown (gura? 9%)`), the same colours (palette.json) and the same layout
// (label_layout.js), so no label hides another face or label.
//
// Query parameters (all optional):
//   font=20          label font size in px          line=3        box line width in px
//   box=COLOUR       every named face's colour      unknown=COLOUR  unknown faces' colour
//   text=COLOUR      label text colour              label=COLOUR  label background
//                    (colours default to the shared palette: one colour per character, grey for unknown)
//   confidence=1     show the confidence            top3=0        show the other candidates
//   track=0          show the track id
//   fit=contain      contain: keep the frame's aspect ratio, centred; stretch: fill the page
//   stale=1.5        seconds without a message before the boxes are hidden
//   preview=0        show the source frame under the boxes (alignment checks in a normal browser)
//   debug=0          show the connection state       token=T       the server's token
// Colours take any CSS colour; in a URL write # as %23 (box=%23ff0000).
"use strict";

(() => {
  const params = new URLSearchParams(location.search);
  const token = params.get("token") || "";
  const colour = (name) => {
    const value = params.get(name);
    return value && CSS.supports("color", value) ? value : null; // null: the palette's
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
    box: colour("box"),
    unknown: colour("unknown"),
    text: colour("text"),
    label: colour("label"),
    confidence: flag("confidence", true),
    top3: flag("top3", false),
    track: flag("track", false),
    stretch: params.get("fit") === "stretch",
    stale: number("stale", 1.5, 0.1, 3600),
    preview: flag("preview", false),
    debug: flag("debug", false),
  };
  const root = document.documentElement.style;
  root.setProperty("--font", `${style.font}px`);
  root.setProperty("--line", `${style.line}px`);

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

  // ---- what a label says, in which colours (overlay.py's label_for and swatch_for) -------------
  let palette = { unknown: { box: "#b0bec5", text: "#000000" }, named: [{ box: "#00e676", text: "#000000" }] };

  function fnv1a(text) {
    let hash = 0x811c9dc5;
    for (const byte of new TextEncoder().encode(text)) hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
    return hash;
  }

  function swatch(name) {
    if (name === "unknown") {
      return { box: style.unknown || palette.unknown.box, text: style.text || palette.unknown.text };
    }
    const own = palette.named[fnv1a(name) % palette.named.length];
    return { box: style.box || own.box, text: style.text || own.text };
  }

  const percent = (p) => {
    const value = Math.round(100 * p);
    return value === 0 && p > 0 ? "<1%" : `${value}%`;
  };

  function labelFor(face) {
    const top = Array.isArray(face.top) ? face.top : [];
    const unknown = face.name === "unknown";
    const guess = unknown ? (top.length ? top[0][0] : "") : face.name;
    let head = face.name;
    if (unknown && top.length) head += style.confidence ? ` (${guess}? ${percent(top[0][1])})` : ` (${guess}?)`;
    if (!unknown && style.confidence) head += ` ${percent(face.confidence)}`;
    if (style.track && Number.isInteger(face.track)) head += `  #${face.track}`;
    const details = style.top3 ? top.filter(([name]) => name !== guess).map(([n, p]) => `${n} ${percent(p)}`) : [];
    return { head, details };
  }

  // ---- drawing: a pool of absolutely positioned divs, placed in % of the frame ----------------
  const pool = [];
  const placer = new LabelLayout.Placer();
  let frameSize = { width: 0, height: 0 };
  let shown = null; // the message on screen, laid out again when the page is resized

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
  addEventListener("resize", () => {
    fit();
    if (shown) draw(shown);
  });

  function faceView(i) {
    while (pool.length <= i) {
      const box = document.createElement("div");
      const label = document.createElement("div");
      const head = document.createElement("span");
      const top3 = document.createElement("span");
      box.className = "face";
      label.className = "label";
      head.className = "head";
      top3.className = "top3";
      label.append(head, top3);
      stage.append(box, label);
      pool.push({ box, label, head, top3 });
    }
    return pool[i];
  }

  const pct = (value) => `${(Number(value) * 100).toFixed(4)}%`;
  // The label's sizes, largest first, as overlay.py's FaceAnnotator.blocks: the full label,
  // smaller text, then without the top-3 lines.
  const FULL = [[], ["small"]];
  const BARE = [["bare"], ["small", "bare"]];

  function setVariant(view, classes) {
    view.label.className = ["label", ...classes].join(" ");
  }

  function draw(message) {
    shown = message;
    if (message.width !== frameSize.width || message.height !== frameSize.height) {
      frameSize = { width: message.width, height: message.height };
      fit();
    }
    const faces = Array.isArray(message.faces) ? message.faces : [];
    const views = faces.map((face, i) => {
      const view = faceView(i);
      const [x, y, w, h] = face.box;
      const colours = swatch(face.name);
      Object.assign(view.box.style, { left: pct(x), top: pct(y), width: pct(w), height: pct(h),
        borderColor: colours.box });
      Object.assign(view.label.style, { background: style.label || colours.box, color: colours.text });
      view.box.hidden = false;
      view.box.dataset.name = face.name;
      view.box.classList.toggle("unknown", face.name === "unknown");
      const label = labelFor(face);
      view.head.textContent = label.head; // textContent: a name is never HTML
      view.top3.textContent = label.details.join("\n");
      view.variants = label.details.length ? [...FULL, ...BARE] : BARE;
      view.label.hidden = false;
      return view;
    });
    for (let i = faces.length; i < pool.length; i++) pool[i].box.hidden = pool[i].label.hidden = true;
    placeLabels(faces, views);
    stage.dataset.index = String(message.index);
  }

  function placeLabels(faces, views) {
    // Frame pixels per CSS pixel: the layout works in the frame's pixels, as the burnt-in one does.
    const sx = frameSize.width / (stage.clientWidth || 1);
    const sy = frameSize.height / (stage.clientHeight || 1);
    const sizes = views.map(() => []);
    for (let v = 0; v < 4; v++) { // one style change and one read per size for all labels: 4 reflows
      views.forEach((view) => { if (v < view.variants.length) setVariant(view, view.variants[v]); });
      views.forEach((view, i) => {
        if (v >= view.variants.length) return;
        const { width, height } = view.label.getBoundingClientRect(); // fractional: no rounding overlap
        sizes[i].push([width * sx, height * sy]);
      });
    }
    const requests = faces.map((face, i) => {
      const [x, y, w, h] = face.box;
      const box = { x: x * frameSize.width, y: y * frameSize.height, w: w * frameSize.width, h: h * frameSize.height };
      return { box, sizes: sizes[i], track: Number.isInteger(face.track) ? face.track : null };
    });
    placer.gap = style.line * sx;
    const layout = placer.place(requests, frameSize.width, frameSize.height);
    views.forEach((view, i) => {
      const placement = layout.placements[i];
      view.label.hidden = placement === null;
      if (placement === null) return;
      setVariant(view, view.variants[placement.size]);
      const { rect } = placement;
      Object.assign(view.label.style, { left: pct(rect.x / frameSize.width), top: pct(rect.y / frameSize.height) });
    });
    stage.dataset.dropped = String(layout.dropped);
  }

  function clearFaces() {
    for (const view of pool) view.box.hidden = view.label.hidden = true;
    shown = null;
  }

  // ---- preview: the frame under the boxes, drawn with the boxes of that very frame -------------
  // A canvas keeps its picture until the next one is drawn, so the preview never blinks blank.
  const recent = new Map(); // index -> message, for the frame the snapshot turns out to be
  let previewIndex = -1;
  let previewBusy = false;

  function paint(image, width, height) {
    if (preview.width !== width || preview.height !== height) Object.assign(preview, { width, height });
    preview.getContext("2d").drawImage(image, 0, 0);
    preview.style.display = "block";
  }

  function firstPreview() {
    // An image in the document holds the page's load event until it has arrived, so a screenshot
    // taken at load (chromium --headless --screenshot) shows the frame. Its index is unknown: the
    // boxes come with the next frame, which is fetched with its index.
    const image = document.createElement("img");
    image.hidden = true;
    image.onload = () => {
      if (previewIndex < 0) paint(image, image.naturalWidth, image.naturalHeight);
      image.remove();
    };
    image.onerror = () => image.remove(); // no frame yet: the first message fetches one
    image.src = withToken("/snapshot.jpg", { raw: "1" }).href;
    document.body.append(image);
  }

  async function refreshPreview() {
    if (previewBusy) return;
    previewBusy = true;
    try {
      const response = await fetch(withToken("/snapshot.jpg", { raw: "1" }), { cache: "no-store" });
      if (!response.ok) return; // 503 before the first frame: the next message asks again
      const index = Number(response.headers.get("X-Frame-Index"));
      const bitmap = await createImageBitmap(await response.blob());
      paint(bitmap, bitmap.width, bitmap.height);
      bitmap.close();
      previewIndex = index;
      preview.dataset.index = String(index);
      // This frame's boxes, if its message is here; otherwise the message handler draws them.
      if (recent.has(index)) draw(recent.get(index));
    } catch {
      // a network hiccup or a frame that did not decode: the next message tries again
    } finally {
      previewBusy = false;
    }
  }

  function remember(message) {
    recent.set(message.index, message);
    for (const index of recent.keys()) {
      if (recent.size <= 64) break;
      recent.delete(index);
    }
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
      if (style.preview) { // the boxes are drawn with their frame
        remember(message);
        if (message.index === previewIndex) draw(message);
        refreshPreview();
      } else {
        draw(message);
      }
      socket.send(JSON.stringify({ ack: message.index })); // after drawing: delivery includes it
      armStale();
    };
    socket.onclose = () => {
      setStatus("reconnecting");
      clearFaces();
      const wait = delay * (0.8 + 0.4 * Math.random()); // jitter: many overlays, one server
      delay = Math.min(delay * 2, 5000);
      setTimeout(connect, wait);
    };
  }

  if (style.preview) firstPreview();
  // The shared colours first; without them (an old server) the built-in ones above serve.
  fetch(withToken("/static/palette.json"))
    .then((response) => (response.ok ? response.json() : null))
    .then((loaded) => { if (loaded && loaded.named && loaded.named.length) palette = loaded; })
    .catch(() => {})
    .finally(connect);
})();
