// The status page: fills in this server's URLs (with the token, if the page was opened with one)
// and polls /api/stats once a second.
"use strict";

(() => {
  const token = new URLSearchParams(location.search).get("token") || "";

  function absolute(path, scheme) {
    const url = new URL(path, location.href);
    if (scheme === "ws") url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    if (token) url.searchParams.set("token", token);
    return url.href;
  }

  for (const code of document.querySelectorAll("code[data-url]")) {
    code.textContent = absolute(code.dataset.url, code.dataset.scheme);
  }
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.addEventListener("click", async () => {
      const text = button.previousElementSibling.textContent;
      try {
        await navigator.clipboard.writeText(text);
        button.textContent = "copied";
      } catch {
        button.textContent = "select and copy";
      }
      setTimeout(() => { button.textContent = "copy"; }, 1500);
    });
  }

  const ms = (value) => (value === null || value === undefined ? "–" : `${Number(value).toFixed(1)} ms`);
  const rows = (s) => [
    ["frames per second", Number(s.fps || 0).toFixed(1)],
    ["pipeline latency p50 / p95 / p99",
      `${ms(s.latency_ms?.p50)} / ${ms(s.latency_ms?.p95)} / ${ms(s.latency_ms?.p99)}`],
    ["overlay delivery p50 / p95", `${ms(s.delivery_ms?.p50)} / ${ms(s.delivery_ms?.p95)}`],
    ["frames dropped by the pipeline", s.dropped],
    ["frames dropped for slow clients", s.server?.client_dropped],
    ["execution provider", s.provider || "–"],
    ["clients (overlays + streams)", s.clients],
  ];

  const body = document.querySelector("#stats tbody");
  const state = document.getElementById("stats-state");
  async function poll() {
    try {
      const response = await fetch(absolute("/api/stats"), { cache: "no-store" });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const stats = await response.json();
      body.replaceChildren(...rows(stats).map(([name, value]) => {
        const tr = document.createElement("tr");
        for (const text of [name, value]) {
          const td = document.createElement("td");
          td.textContent = String(text ?? "–");
          tr.append(td);
        }
        return tr;
      }));
      state.textContent = `updated ${new Date().toLocaleTimeString()}`;
    } catch (error) {
      state.textContent = `server unreachable (${error.message}); retrying`;
    }
  }
  poll();
  setInterval(poll, 1000);
})();
