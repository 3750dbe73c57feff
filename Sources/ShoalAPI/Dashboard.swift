/// The live dashboard: one page, no external assets. It holds no fleet data itself — everything
/// comes from `/api/v1/status` and `/api/v1/rollouts`, fetched every second with the bearer token
/// the operator passes in the URL fragment (`/dashboard#token=…`; a fragment never reaches the
/// server or its logs). The page moves the token into `sessionStorage` (this tab only) and
/// removes it from the address bar.
enum Dashboard {
    static let page = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Shoal coordinator</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1em 2em; color: #222; background: #fafafa; }
  h1 { font-size: 1.3em; margin: 0 0 .3em; }
  h2 { font-size: 1.1em; margin: 1.2em 0 .4em; border-bottom: 1px solid #ccc; }
  h3 { font-size: 1em; margin: .8em 0 .3em; }
  #state { color: #666; font-size: .9em; }
  #unauthorized { background: #fee; border: 1px solid #c33; padding: .8em; margin: 1em 0; }
  table { border-collapse: collapse; margin-bottom: .5em; }
  td, th { padding: 2px 8px; text-align: left; vertical-align: middle; }
  th { font-weight: 600; color: #555; font-size: .9em; }
  tr:nth-child(even) td { background: #f0f0f0; }
  .bar { width: 180px; height: 12px; background: #ddd; border-radius: 3px; overflow: hidden; display: inline-block; vertical-align: middle; }
  .bar > span { display: block; height: 100%; background: #3a7; }
  .bar.big { width: 320px; height: 16px; }
  .dead { color: #a33; }
  .alive { color: #282; }
  .failed, .refused { color: #b00; font-weight: 600; }
  .succeeded { color: #282; }
  .running, .reverting { color: #05a; }
  .log { font: 12px monospace; white-space: pre-wrap; background: #fff; border: 1px solid #ddd; padding: .4em; margin: .2em 0 .8em; }
  svg { background: #fff; border: 1px solid #ddd; }
  svg text { font: 11px sans-serif; }
  .legend span { display: inline-block; margin-right: 1em; }
  .throughput-site { display: inline-block; vertical-align: top; margin: 0 1.5em .8em 0; }
  .muted { color: #888; }
</style>
</head>
<body>
<h1>Shoal coordinator</h1>
<div id="state">connecting…</div>
<div id="unauthorized" hidden></div>
<div id="content" hidden>
  <h2>Distribution and conversion by site</h2>
  <div id="sites"></div>
  <h2>Throughput</h2>
  <div class="legend"><span style="color:#c60">■ WAN in</span><span style="color:#60c">■ WAN out</span><span style="color:#3a7">■ swarm (served)</span></div>
  <div id="throughput"></div>
  <h2>Rollouts</h2>
  <div id="rollouts"></div>
  <h2>Failures</h2>
  <div id="failures"></div>
</div>
<script>
"use strict";
(function () {
  // The token: from the fragment (then kept in this tab's sessionStorage and removed from the
  // address bar), else from sessionStorage.
  const params = new URLSearchParams(location.hash.replace(/^#/, ""));
  if (params.get("token")) {
    sessionStorage.setItem("shoalToken", params.get("token"));
    history.replaceState(null, "", location.pathname + location.search);
  }
  const token = sessionStorage.getItem("shoalToken");
  const $ = (id) => document.getElementById(id);
  const esc = (s) => String(s == null ? "" : s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  const history_ = []; // {t, sites: {site: {in, out, served}}} per poll, rates derived
  const maxPoints = 120;
  let timer = null;

  function unauthorized(message) {
    $("content").hidden = true;
    $("content").querySelectorAll("div[id]").forEach((d) => (d.innerHTML = ""));
    const u = $("unauthorized");
    u.hidden = false;
    u.textContent = "unauthorized: " + message + " Open this page as /dashboard#token=TOKEN (the token in the coordinator's --http-token-file).";
    $("state").textContent = "not connected";
    if (timer) { clearInterval(timer); timer = null; }
  }

  async function get(path) {
    const r = await fetch(path, { headers: { Authorization: "Bearer " + token }, cache: "no-store" });
    if (r.status === 401) throw { unauthorized: true };
    if (!r.ok) throw new Error(path + ": HTTP " + r.status);
    return r.json();
  }

  function bar(fraction, big) {
    const pct = Math.max(0, Math.min(1, fraction || 0)) * 100;
    return '<span class="bar' + (big ? " big" : "") + '" title="' + pct.toFixed(1) + '%"><span style="width:' + pct.toFixed(1) + '%"></span></span>';
  }

  function bytes(n) {
    const u = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return n.toFixed(i ? 1 : 0) + " " + u[i];
  }

  function rate(n) { return bytes(n) + "/s"; }

  // A host's newest rollout phase, by host name.
  function phases(rollouts) {
    const out = {};
    rollouts.slice().sort((a, b) => a.createdAt - b.createdAt).forEach((r) =>
      r.hosts.forEach((h) => (out[h.host] = { rollout: r.spec.id, phase: h.phase, wave: h.wave, message: h.message })));
    return out;
  }

  function renderSites(status, rollouts) {
    const ph = phases(rollouts);
    const bySite = {};
    status.hosts.forEach((h) => (bySite[h.site] = bySite[h.site] || []).push(h));
    let html = "";
    Object.keys(bySite).sort().forEach((site) => {
      const hosts = bySite[site];
      let have = 0, total = 0, alive = 0;
      hosts.forEach((h) => { if (h.alive) alive++; h.bundles.forEach((b) => { have += b.have; total += b.total; }); });
      html += '<h3>site ' + esc(site) + ' <span class="muted">(' + alive + "/" + hosts.length + " alive)</span></h3>";
      html += '<div class="site-progress" data-site="' + esc(site) + '">' + bar(total ? have / total : 0, true) +
        " " + have + " / " + total + " chunks</div>";
      html += "<table><tr><th>host</th><th>state</th><th>distribution</th><th>bundles</th><th>operation</th><th>rollout phase</th></tr>";
      hosts.forEach((h) => {
        let hv = 0, tt = 0;
        h.bundles.forEach((b) => { hv += b.have; tt += b.total; });
        const bundles = h.bundles.map((b) => esc(b.bundleID.slice(0, 8)) + " " + b.have + "/" + b.total +
          (b.complete ? " ✓" : "") + (b.staged ? " staged" : "") + (b.error ? ' <span class="failed">' + esc(b.error) + "</span>" : "")).join("<br>");
        const p = h.operation && h.operation.progress;
        const op = p ? esc(p.kind) + ' <span class="' + esc(p.status) + '">' + esc(p.status) + "</span> " + esc(p.step) :
          (h.operation && h.operation.pending ? esc(h.operation.order.kind) + " ordered" : '<span class="muted">—</span>');
        const r = ph[h.host];
        const phase = r ? '<span class="' + esc(r.phase) + '">' + esc(r.phase) + "</span> " + esc(r.rollout) + (r.wave ? " w" + r.wave : "") : '<span class="muted">—</span>';
        html += '<tr class="host-row" data-host="' + esc(h.host) + '"><td class="host">' + esc(h.host) + "</td>" +
          '<td class="' + (h.alive ? "alive" : "dead") + '">' + (h.alive ? "alive" : "dead") + "</td>" +
          "<td>" + bar(tt ? hv / tt : 0) + "</td><td>" + (bundles || '<span class="muted">none</span>') + "</td><td>" + op + "</td><td>" + phase + "</td></tr>";
      });
      html += "</table>";
    });
    $("sites").innerHTML = html || '<p class="muted">no hosts</p>';
  }

  function renderThroughput(status) {
    const now = Date.now() / 1000;
    const sites = {};
    status.hosts.forEach((h) => {
      const s = (sites[h.site] = sites[h.site] || { in: 0, out: 0, served: 0 });
      h.bundles.forEach((b) => { s.in += b.wanInBytes || 0; s.out += b.wanOutBytes || 0; s.served += b.servedBytes || 0; });
    });
    const prev = history_.length ? history_[history_.length - 1] : null;
    const point = { t: now, sites: sites, rates: {} };
    if (prev && now > prev.t) {
      const dt = now - prev.t;
      Object.keys(sites).forEach((s) => {
        const p = prev.sites[s] || sites[s];
        point.rates[s] = {
          in: Math.max(0, (sites[s].in - p.in) / dt),
          out: Math.max(0, (sites[s].out - p.out) / dt),
          served: Math.max(0, (sites[s].served - p.served) / dt),
        };
      });
    }
    history_.push(point);
    while (history_.length > maxPoints) history_.shift();
    const W = 360, H = 70;
    let html = "";
    Object.keys(sites).sort().forEach((s) => {
      const pts = history_.filter((p) => p.rates[s]);
      let max = 1;
      pts.forEach((p) => { max = Math.max(max, p.rates[s].in, p.rates[s].out, p.rates[s].served); });
      const t0 = now - maxPoints;
      const line = (key, color) => {
        if (!pts.length) return "";
        const xy = pts.map((p) => ((p.t - t0) / maxPoints * W).toFixed(1) + "," + (H - p.rates[s][key] / max * (H - 12)).toFixed(1)).join(" ");
        return '<polyline fill="none" stroke="' + color + '" stroke-width="1.5" points="' + xy + '"/>';
      };
      const last = pts.length ? pts[pts.length - 1].rates[s] : { in: 0, out: 0, served: 0 };
      html += '<div class="throughput-site" data-site="' + esc(s) + '"><b>' + esc(s) + "</b> WAN in " + rate(last.in) + ", out " + rate(last.out) +
        ", served " + rate(last.served) + ' <span class="muted">(totals ' + bytes(sites[s].in) + " / " + bytes(sites[s].out) + " / " + bytes(sites[s].served) + ")</span><br>" +
        '<svg width="' + W + '" height="' + H + '" viewBox="0 0 ' + W + " " + H + '"><text x="4" y="11" class="muted">max ' + rate(max) + "</text>" +
        line("in", "#c60") + line("out", "#60c") + line("served", "#3a7") + "</svg></div>";
    });
    $("throughput").innerHTML = html || '<p class="muted">no sites</p>';
  }

  function renderRollouts(rollouts) {
    const now = Date.now() / 1000;
    let html = "";
    rollouts.forEach((r) => {
      const counts = {};
      r.hosts.forEach((h) => (counts[h.phase] = (counts[h.phase] || 0) + 1));
      html += '<div class="rollout" data-rollout="' + esc(r.spec.id) + '"><h3>' + esc(r.spec.id) + " — " + esc(r.spec.kind) + ' <span class="' + esc(r.status) + '">' + esc(r.status) + "</span></h3>";
      html += "<div>" + Object.keys(counts).sort().map((k) => esc(k) + ": " + counts[k]).join(", ") + (r.haltReason ? ' <span class="failed">halted: ' + esc(r.haltReason) + "</span>" : "") + "</div>";
      // Timeline: one row per wave, from the rollout's creation to now (or its last update).
      const start = r.createdAt;
      const end = Math.max(r.status === "running" || r.status === "paused" ? now : r.updatedAt, start + 1);
      // Bars use the left part; each row's counts are written after its bar.
      const W = 680, rowH = 18, H = 24 + rowH * Math.max(1, r.waves.length), span = W - 240;
      const x = (t) => 60 + (t - start) / (end - start) * span;
      let svg = '<svg class="timeline" width="' + W + '" height="' + H + '" viewBox="0 0 ' + W + " " + H + '">';
      svg += '<text x="60" y="12">' + esc(new Date(start * 1000).toISOString().slice(11, 19)) + '</text><text x="' + (60 + span) + '" y="12" text-anchor="end">' + esc(new Date(end * 1000).toISOString().slice(11, 19)) + "</text>";
      if (!r.waves.length) svg += '<text x="60" y="34" class="muted">no wave yet (waiting for data or a window)</text>';
      r.waves.forEach((w, i) => {
        const y = 20 + i * rowH;
        const x0 = x(w.startedAt), x1 = Math.max(x(w.endedAt || end), x0 + 3);
        const color = w.failed ? "#c33" : w.endedAt ? "#3a7" : "#59c";
        svg += '<g class="wave" data-wave="' + w.index + '"><text x="2" y="' + (y + 12) + '">wave ' + w.index + "</text>" +
          '<rect x="' + x0.toFixed(1) + '" y="' + y + '" width="' + (x1 - x0).toFixed(1) + '" height="' + (rowH - 4) + '" fill="' + color + '"><title>wave ' + w.index + ": " +
          w.hosts.length + " hosts, " + w.converted + " converted, " + w.failed + " failed, " + w.reverted + " reverted</title></rect>" +
          '<text x="' + (x1 + 4).toFixed(1) + '" y="' + (y + 12) + '">' + w.hosts.length + " hosts · " + w.converted + " ok · " + w.failed + " failed</text></g>";
      });
      svg += "</svg>";
      html += svg;
      if (r.events && r.events.length) html += '<div class="log">' + r.events.slice(-8).map(esc).join("\n") + "</div>";
      html += "</div>";
    });
    $("rollouts").innerHTML = html || '<p class="muted">no rollouts</p>';
  }

  function renderFailures(status, rollouts) {
    let html = "";
    status.hosts.forEach((h) => {
      const p = h.operation && h.operation.progress;
      if (p && (p.status === "failed" || p.status === "refused")) {
        html += '<div class="failure" data-host="' + esc(h.host) + '"><b>' + esc(h.host) + "</b> " + esc(p.kind) + " " + esc(p.id) + ' <span class="failed">' + esc(p.status) + "</span>" +
          (p.message ? ": " + esc(p.message) : "") + (p.hostLeftIn ? " (left in " + esc(p.hostLeftIn) + ")" : "") +
          '<div class="log">' + (p.log || []).map(esc).join("\n") + "</div></div>";
      }
      h.bundles.forEach((b) => { if (b.error) html += "<div><b>" + esc(h.host) + "</b> bundle " + esc(b.bundleID.slice(0, 12)) + ': <span class="failed">' + esc(b.error) + "</span></div>"; });
    });
    rollouts.forEach((r) => r.hosts.forEach((h) => {
      if (h.phase === "failed" && !status.hosts.some((s) => s.host === h.host && s.operation && s.operation.progress && s.operation.progress.status === "failed"))
        html += "<div><b>" + esc(h.host) + "</b> failed in rollout " + esc(r.spec.id) + (h.message ? ": " + esc(h.message) : "") + "</div>";
    }));
    if (status.badPeerReports.length) html += "<h3>bad-peer reports</h3><div class=\"log\">" + status.badPeerReports.slice(-20).map(esc).join("\n") + "</div>";
    $("failures").innerHTML = html || '<p class="muted">none</p>';
  }

  async function poll() {
    try {
      const [status, rollouts] = await Promise.all([get("/api/v1/status"), get("/api/v1/rollouts")]);
      $("unauthorized").hidden = true;
      $("content").hidden = false;
      renderSites(status, rollouts);
      renderThroughput(status);
      renderRollouts(rollouts);
      renderFailures(status, rollouts);
      $("state").textContent = "live · " + status.hosts.length + " hosts · " + status.bundles.length + " bundles · updated " + new Date().toISOString().slice(11, 19) + " UTC";
    } catch (e) {
      if (e && e.unauthorized) unauthorized("the coordinator refused the token.");
      else $("state").textContent = "error: " + (e && e.message ? e.message : e) + " (retrying)";
    }
  }

  if (!token) {
    unauthorized("no token.");
  } else {
    poll();
    timer = setInterval(poll, 1000);
  }
})();
</script>
</body>
</html>
"""#
}
