// livedenoise dashboard: polls the REST API of the server that serves this page; no library, no build step.
// Server data is only ever inserted as text (textContent), never as HTML: stream ids and names are user input.
"use strict";

(() => {
  const TOKEN_KEY = "livedenoise.token";
  const PREVIEW_MS = 250; // a few frames per second, one request at a time
  const COLORS = { a: "#2563eb", b: "#94a3b8", warn: "#d97706", bad: "#b91c1c" };

  const state = {
    selected: null, // stream id
    needToken: false,
    history: [], // status samples, oldest first
    keepS: 300,
    lastT: null,
    jobLog: null, // job id whose log is shown
  };

  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "onclick") node.addEventListener("click", value);
      else if (key.startsWith("data-")) node.setAttribute(key, String(value));
      else node[key] = value;
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  // -- token: asked for once when a call answers 401, kept in this tab (sessionStorage) ------------------
  function takeTokenFromFragment() {
    const match = /(?:^#|&)token=([^&]*)/.exec(location.hash);
    if (match) {
      sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
      history.replaceState(null, "", location.pathname + location.search); // out of the address bar
    }
  }
  const token = () => sessionStorage.getItem(TOKEN_KEY) || "";

  function showTokenState() {
    $("token-state").textContent = token() ? "token set" : "";
    $("token-forget").hidden = !token();
  }

  function needToken() {
    if (!state.needToken) {
      state.needToken = true;
      $("token-banner").hidden = false;
      if (token()) showMessage("The server refused the token: enter the current one.", true);
      $("token-input").focus();
    }
  }

  function saveToken() {
    const value = $("token-input").value.trim();
    if (!value) return;
    sessionStorage.setItem(TOKEN_KEY, value);
    $("token-input").value = "";
    $("token-banner").hidden = true;
    state.needToken = false;
    hideMessage();
    showTokenState();
  }

  // -- API -----------------------------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function api(path, options = {}) {
    const headers = Object.assign({}, options.headers || {});
    if (token()) headers.Authorization = "Bearer " + token();
    const response = await fetch(path, Object.assign({}, options, { headers, cache: "no-store" }));
    let body = null;
    try {
      body = await response.json();
    } catch (_) {
      body = null;
    }
    if (response.status === 401) needToken();
    if (!response.ok) {
      const error = (body && body.error) || {};
      throw new ApiError(response.status, error.code || "http_" + response.status, error.message || response.statusText);
    }
    return body;
  }

  function showMessage(text, isError) {
    const box = $("message");
    box.textContent = text;
    box.className = isError ? "error" : "";
    box.hidden = false;
    clearTimeout(showMessage.timer);
    if (!isError) showMessage.timer = setTimeout(hideMessage, 6000);
  }
  function hideMessage() {
    $("message").hidden = true;
  }

  function every(ms, task) {
    const run = async () => {
      try {
        await task();
      } catch (error) {
        if (!(error instanceof ApiError)) console.error(error);
      }
      setTimeout(run, ms);
    };
    run();
  }

  const fmt = (value, digits = 1) => (value === null || value === undefined ? "–" : Number(value).toFixed(digits));
  const fmtMs = (value) => fmt(value, value !== null && value !== undefined && value >= 100 ? 0 : 1);

  // -- status and streams ----------------------------------------------------------------------------------
  async function refreshStatus() {
    let status;
    try {
      status = await api("/v1/status");
    } catch (error) {
      const pill = $("server-state");
      pill.textContent = error.status === 503 ? "ingest unavailable" : "server unreachable";
      pill.className = "pill bad";
      throw error;
    }
    const pill = $("server-state");
    pill.textContent = `serving · ${status.provider} ${status.precision}`;
    pill.className = "pill ok";
    $("served-model").textContent = status.model
      ? `model ${status.model.id} (${status.model.method})`
      : "no model loaded";
    $("served-model").dataset.model = status.model ? status.model.id : "";
    renderStreams(status.streams);
  }

  function renderStreams(streams) {
    const names = Object.keys(streams).sort();
    if (state.selected === null && names.length) select(names[0]);
    const body = $("streams").tBodies[0];
    body.replaceChildren(
      ...names.map((name) => {
        const s = streams[name];
        return el(
          "tr",
          { "data-stream": name, class: name === state.selected ? "selected" : "", onclick: () => select(name) },
          el("td", {}, name, el("br"), el("span", { class: "muted small" }, s.series || "–", s.open ? "" : " (ended)")),
          el("td", {}, `${fmt(s.fps_in)} / ${fmt(s.fps_out)}`),
          el("td", {}, `${fmtMs(s.latency_ms_p50)} / ${fmtMs(s.latency_ms_p99)}`),
          el("td", {}, s.skipped),
          el("td", {}, s.backlog),
        );
      }),
    );
    $("no-streams").hidden = names.length > 0;
  }

  function select(name) {
    if (state.selected === name) return;
    state.selected = name;
    $("preview-stream").textContent = "· " + name;
    for (const row of $("streams").tBodies[0].rows) row.classList.toggle("selected", row.dataset.stream === name);
    for (const id of ["preview-raw", "preview-denoised"]) {
      $(id).removeAttribute("src");
      $(id).dataset.index = "";
    }
    $("preview-note").textContent = `Waiting for frames of ${name}…`;
    drawCharts();
  }

  // -- preview ---------------------------------------------------------------------------------------------
  function showImage(img, caption, image, label) {
    if (!image) return;
    if (img.dataset.index !== String(image.index) || img.dataset.series !== image.series) {
      img.src = image.png;
      img.dataset.index = String(image.index);
      img.dataset.series = image.series;
    }
    let text = `${label} · frame ${image.index} · ${image.shape[1]}×${image.shape[0]} ${image.dtype}`;
    if (image.model) text += ` · ${image.model} · ${fmtMs(image.latency_ms)} ms`;
    caption.textContent = text;
  }

  async function refreshPreview() {
    const stream = state.selected;
    if (stream === null || state.needToken) return;
    const p = await api(`/v1/preview?stream=${encodeURIComponent(stream)}&max_side=512`);
    if (stream !== state.selected) return; // the selection changed while the request ran
    showImage($("preview-raw"), $("caption-raw"), p.raw, "raw");
    showImage($("preview-denoised"), $("caption-denoised"), p.denoised, "denoised");
    let note;
    if (!p.raw && !p.denoised) note = `Waiting for frames of ${stream}…`;
    else if (!p.paired) note = "Latest raw and latest denoised frame (not yet one frame).";
    else note = `Raw and denoised frame ${p.raw.index} of series ${p.raw.series}`;
    if (p.display) note += ` · shown range ${fmt(p.display[0], 0)}–${fmt(p.display[1], 0)}`;
    $("preview-note").textContent = note;
    $("preview-note").dataset.paired = String(p.paired);
  }

  // -- history charts (canvas, drawn here) -----------------------------------------------------------------
  async function refreshHistory() {
    const query = state.lastT === null ? "" : `?since=${state.lastT}`;
    const h = await api("/v1/status/history" + query);
    state.keepS = h.keep_s;
    if (h.samples.length) {
      state.history.push(...h.samples);
      state.lastT = h.samples[h.samples.length - 1].t;
      const horizon = state.lastT - state.keepS;
      while (state.history.length && state.history[0].t < horizon) state.history.shift();
    }
    drawCharts();
  }

  function seriesOf(field) {
    return state.history.map((sample) => {
      const s = sample.up && state.selected !== null ? sample.streams[state.selected] : undefined;
      const value = s ? s[field] : null;
      return [sample.t, value === undefined ? null : value];
    });
  }

  function drawCharts() {
    drawChart($("chart-fps"), "frames / s", "", [
      { label: "in", color: COLORS.b, points: seriesOf("fps_in") },
      { label: "out", color: COLORS.a, points: seriesOf("fps_out") },
    ]);
    drawChart($("chart-latency"), "latency", "ms", [
      { label: "p50", color: COLORS.a, points: seriesOf("latency_ms_p50") },
      { label: "p99", color: COLORS.warn, points: seriesOf("latency_ms_p99") },
    ]);
    drawChart($("chart-skips"), "skips", "per s", [
      { label: "skipped", color: COLORS.warn, points: seriesOf("skipped_per_s") },
      { label: "errors", color: COLORS.bad, points: seriesOf("errors_per_s") },
    ]);
    drawChart($("chart-backlog"), "backlog", "frames", [
      { label: "backlog", color: COLORS.a, points: seriesOf("backlog") },
    ]);
  }

  function niceMax(value) {
    if (!(value > 0)) return 1;
    const step = Math.pow(10, Math.floor(Math.log10(value)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * step >= value) return m * step;
    return 10 * step;
  }

  function drawChart(canvas, title, unit, series) {
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth || canvas.width;
    const height = canvas.clientHeight || canvas.height;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);

    const pad = { left: 40, right: 8, top: 20, bottom: 16 };
    const plotW = width - pad.left - pad.right;
    const plotH = height - pad.top - pad.bottom;
    const tEnd = state.lastT === null ? Date.now() / 1000 : state.lastT;
    const tStart = tEnd - state.keepS;
    let top = 0;
    let count = 0;
    for (const s of series)
      for (const [, v] of s.points)
        if (v !== null) {
          top = Math.max(top, v);
          count += 1;
        }
    const yMax = niceMax(top * 1.05);
    const x = (t) => pad.left + ((t - tStart) / (tEnd - tStart)) * plotW;
    const y = (v) => pad.top + plotH - (v / yMax) * plotH;

    ctx.font = "11px system-ui, sans-serif";
    ctx.textBaseline = "middle";
    ctx.strokeStyle = "#e5e7eb";
    ctx.fillStyle = "#6b7385";
    ctx.lineWidth = 1;
    for (let i = 0; i <= 2; i++) {
      const v = (yMax * i) / 2;
      const py = Math.round(y(v)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(pad.left, py);
      ctx.lineTo(pad.left + plotW, py);
      ctx.stroke();
      ctx.textAlign = "right";
      ctx.fillText(v >= 100 ? v.toFixed(0) : String(+v.toPrecision(3)), pad.left - 4, py);
    }
    ctx.textAlign = "left";
    ctx.fillText(`−${Math.round(state.keepS / 60)} min`, pad.left, height - 7);
    ctx.textAlign = "right";
    ctx.fillText("now", pad.left + plotW, height - 7);

    ctx.textAlign = "left";
    ctx.fillStyle = "#1d2330";
    ctx.font = "600 11.5px system-ui, sans-serif";
    ctx.fillText(unit ? `${title} (${unit})` : title, pad.left, 9);
    ctx.font = "11px system-ui, sans-serif";
    let lx = pad.left + plotW;
    for (const s of [...series].reverse()) {
      const w = ctx.measureText(s.label).width;
      lx -= w;
      ctx.fillStyle = "#1d2330";
      ctx.fillText(s.label, lx, 9);
      lx -= 12;
      ctx.fillStyle = s.color;
      ctx.fillRect(lx, 5, 9, 9);
      lx -= 10;
    }

    ctx.save();
    ctx.beginPath();
    ctx.rect(pad.left, pad.top - 1, plotW, plotH + 2);
    ctx.clip();
    for (const s of series) {
      ctx.strokeStyle = s.color;
      ctx.lineWidth = 1.6;
      ctx.beginPath();
      let drawing = false;
      for (const [t, v] of s.points) {
        if (v === null || t < tStart) {
          drawing = false;
          continue;
        }
        if (drawing) ctx.lineTo(x(t), y(v));
        else ctx.moveTo(x(t), y(v));
        drawing = true;
      }
      ctx.stroke();
    }
    ctx.restore();
    canvas.dataset.points = String(count);
  }

  // -- models ----------------------------------------------------------------------------------------------
  function score(spec) {
    const v = spec && spec.extra && spec.extra.validation;
    if (!v || v.model_gain_db === undefined) return ["–"];
    const sign = (d) => (d >= 0 ? "+" : "") + Number(d).toFixed(2) + " dB";
    return [sign(v.model_gain_db), el("br"), el("span", { class: "muted" }, "filter " + sign(v.best_filter_gain_db))];
  }

  function scoreTitle(spec) {
    const v = spec && spec.extra && spec.extra.validation;
    return v && v.best_filter ? `best classical filter: ${v.best_filter}` : "no held-out score in this model";
  }

  async function refreshModels() {
    const list = await api("/v1/models");
    const body = $("models").tBodies[0];
    body.replaceChildren(
      ...list.models.map((m) => {
        const w = m.spec.window || {};
        const active = m.id === list.active;
        const button = el(
          "button",
          { type: "button", class: "swap", "data-swap": m.id, disabled: active, onclick: () => swap(m, button) },
          active ? "serving" : "serve",
        );
        return el(
          "tr",
          { "data-model": m.id, class: active ? "active" : "" },
          el("td", { title: m.id }, m.name),
          el("td", {}, m.spec.method || "–"),
          el("td", {}, `${w.before} · ${w.out_frames} · ${w.after}`),
          el("td", { title: scoreTitle(m.spec) }, ...score(m.spec)),
          el("td", {}, button),
        );
      }),
    );
  }

  async function swap(model, button) {
    button.disabled = true;
    button.textContent = "loading…";
    try {
      const loaded = await api(`/v1/models/${encodeURIComponent(model.id)}/load`, { method: "POST" });
      showMessage(`Now serving ${loaded.model.name} (${loaded.ingest.method}); no frame was lost in the swap.`);
    } catch (error) {
      showMessage(`Hot swap to ${model.name} failed: ${error.message}`, true);
    }
    await Promise.allSettled([refreshModels(), refreshStatus()]);
  }

  // -- jobs ------------------------------------------------------------------------------------------------
  async function refreshJobs() {
    const list = await api("/v1/jobs?limit=20");
    const body = $("jobs").tBodies[0];
    body.replaceChildren(
      ...list.jobs.map((job) => {
        const live = job.state === "queued" || job.state === "running";
        const pct = Math.round(100 * (job.progress || 0));
        const detail = job.epoch !== null && job.epochs ? ` · ${job.epoch}/${job.epochs}` : "";
        const loss = job.loss !== null && job.loss !== undefined ? ` · loss ${Number(job.loss).toPrecision(3)}` : "";
        const bar = el("span", { class: "bar" }, el("span", {}));
        bar.firstChild.style.width = pct + "%";
        return el(
          "tr",
          { "data-job": job.id, class: job.id === state.jobLog ? "selected" : "" },
          el(
            "td",
            { title: job.created },
            job.kind === "compare" ? "compare" : job.method,
            el("br"),
            el("span", { class: "muted small" }, job.id),
          ),
          el("td", { class: "job-state state-" + job.state, title: job.error || "" }, job.state),
          el("td", {}, bar, ` ${pct}%${detail}${loss}`),
          el(
            "td",
            {},
            el("button", { type: "button", "data-log": job.id, onclick: () => showLog(job.id) }, "log"),
            " ",
            live
              ? el("button", { type: "button", class: "danger", "data-cancel": job.id, onclick: () => cancel(job.id) }, "cancel")
              : null,
          ),
        );
      }),
    );
    $("no-jobs").hidden = list.jobs.length > 0;
  }

  function showLog(jobId) {
    state.jobLog = state.jobLog === jobId ? null : jobId;
    $("job-log-box").hidden = state.jobLog === null;
    $("job-log-id").textContent = state.jobLog || "";
    $("job-log").textContent = "";
    refreshLog();
    refreshJobs();
  }

  async function refreshLog() {
    const jobId = state.jobLog;
    if (jobId === null) return;
    const logs = await api(`/v1/jobs/${encodeURIComponent(jobId)}/logs?tail=40`);
    if (jobId !== state.jobLog) return;
    const pre = $("job-log");
    const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.textContent = logs.log + (logs.output.trim() ? "\n── process output ──\n" + logs.output : "");
    if (atBottom) pre.scrollTop = pre.scrollHeight;
  }

  async function cancel(jobId) {
    try {
      await api(`/v1/jobs/${encodeURIComponent(jobId)}/cancel`, { method: "POST" });
      showMessage(`Job ${jobId} cancelled.`);
    } catch (error) {
      showMessage(`Cancel of ${jobId} failed: ${error.message}`, true);
    }
    refreshJobs();
  }

  // -- start -----------------------------------------------------------------------------------------------
  function start() {
    takeTokenFromFragment();
    showTokenState();
    $("token-save").addEventListener("click", saveToken);
    $("token-input").addEventListener("keydown", (event) => {
      if (event.key === "Enter") saveToken();
    });
    $("token-forget").addEventListener("click", () => {
      sessionStorage.removeItem(TOKEN_KEY);
      showTokenState();
    });
    window.addEventListener("resize", drawCharts);
    every(1000, refreshStatus);
    every(2000, refreshHistory);
    every(PREVIEW_MS, refreshPreview);
    every(5000, refreshModels);
    every(2000, refreshJobs);
    every(2000, refreshLog);
  }

  document.addEventListener("DOMContentLoaded", start);
})();
