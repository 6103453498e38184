// beacon-gateway live view: polls /live/state and renders it. Plain DOM, no framework.
// Every string in the state comes from outside (beacons, subject files, config): it is only
// ever put into the page with textContent, never parsed as HTML.
"use strict";

(function () {
  const STATE_URL = "/live/state";
  const POLL_MS = 1000;
  const RETRY_MS = 2000;
  const REQUEST_TIMEOUT_MS = 4000;
  const COUNTERS = [
    ["total", "events"],
    ["present", "present now"],
    ["sightings", "sightings"],
    ["enter", "enter"],
    ["dwell", "dwell"],
    ["exit", "exit"],
    ["trigger", "trigger"],
    ["telemetry", "telemetry"],
    ["outbox_depth", "outbox depth"],
  ];

  const $ = (id) => document.getElementById(id);
  let lastUpdate = null;

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function subjectName(subject) {
    if (!subject) return { text: "unknown beacon", anonymous: true };
    const name = subject.alias || subject.id || subject.tag || subject.beacon;
    if (name) return { text: name, anonymous: false };
    return { text: subject.kind === "unknown" ? "unknown beacon" : "anonymous", anonymous: true };
  }

  function subjectDetails(subject) {
    if (!subject) return [];
    const parts = [];
    if (subject.alias && subject.id) parts.push(subject.id);
    for (const key of ["segment", "flight", "destination", "owner_alias"]) {
      if (subject[key]) parts.push(subject[key]);
    }
    if (subject.tag && subject.tag !== subjectName(subject).text) parts.push("tag " + subject.tag);
    if (subject.beacon && subject.beacon !== subjectName(subject).text) {
      parts.push("beacon " + subject.beacon);
    }
    return parts;
  }

  function duration(seconds) {
    if (typeof seconds !== "number" || !isFinite(seconds)) return "";
    const total = Math.max(0, Math.round(seconds));
    const h = Math.floor(total / 3600);
    const m = Math.floor((total % 3600) / 60);
    const s = total % 60;
    if (h > 0) return h + "h " + String(m).padStart(2, "0") + "m";
    if (m > 0) return m + "m " + String(s).padStart(2, "0") + "s";
    return s + "s";
  }

  function clockTime(iso) {
    const date = new Date(iso);
    if (isNaN(date.getTime())) return "";
    return date.toLocaleTimeString([], { hour12: false });
  }

  function replace(container, children) {
    container.replaceChildren(...children);
  }

  // --------------------------------------------------------------------------- header

  function problem(checks) {
    const c = checks || {};
    if (c.source_error) return "source: " + c.source_error;
    if (c.source_outage) return "source: " + c.source_outage;
    if (c.outbox_health && c.outbox_health !== "ok") {
      return "outbox " + c.outbox_health + (c.outbox_error ? ": " + c.outbox_error : "");
    }
    if (c.mqtt_connected === false) {
      return "MQTT " + (c.mqtt_state || "not connected") + (c.mqtt_error ? ": " + c.mqtt_error : "");
    }
    return "a check failed";
  }

  function renderHeader(state) {
    $("where").textContent = "site " + state.site + " · gateway " + state.gateway_id;
    const health = $("health");
    const ready = state.health && state.health.ready === true;
    health.className = "pill " + (ready ? "ready" : "not-ready");
    health.textContent = ready ? "ready" : "not ready — " + problem(state.health && state.health.checks);
    const clock = $("clock");
    clock.textContent = state.source_time ? clockTime(state.source_time) : "–";
    if (state.source_time) clock.dateTime = state.source_time;
  }

  // --------------------------------------------------------------------------- zones

  function renderSubject(listed) {
    const item = el("li", "subject");
    const name = subjectName(listed.subject);
    const title = el("span", "subject-name" + (name.anonymous ? " anonymous" : ""), name.text);
    title.title = name.text;
    item.append(title, el("span", "subject-dwell", duration(listed.dwell_s)));
    const meta = el("span", "subject-meta");
    const kind = (listed.subject && listed.subject.kind) || "unknown";
    meta.append(el("span", "kind " + kind, kind));
    const proximity = el("span", "prox " + (listed.proximity || ""), listed.proximity || "");
    meta.append(proximity);
    if (typeof listed.distance_m === "number") {
      meta.append(document.createTextNode(" · " + listed.distance_m.toFixed(1) + "\u00a0m"));
    }
    item.append(meta);
    const details = subjectDetails(listed.subject);
    if (details.length) {
      const line = el("span", "subject-details");
      details.forEach((detail, index) => {
        if (index) line.append(document.createTextNode(" · "));
        line.append(el("span", null, detail));
      });
      item.append(line);
    }
    return item;
  }

  function renderZone(zone) {
    const card = el("article", "zone" + (zone.present ? "" : " empty"));
    card.dataset.zone = zone.id;
    const head = el("div", "zone-head");
    head.append(el("h3", "zone-name", zone.id), el("span", "zone-count", zone.present));
    card.append(head);
    if (!zone.present) {
      card.append(el("p", "empty-note", "nobody here"));
      return card;
    }
    const list = el("ul", "subjects");
    replace(list, (zone.subjects || []).map(renderSubject));
    card.append(list);
    if (zone.hidden > 0) card.append(el("p", "more", "and " + zone.hidden + " more"));
    return card;
  }

  // --------------------------------------------------------------------------- events

  function eventDetail(event) {
    switch (event.type) {
      case "enter":
        return event.proximity ? event.proximity + (typeof event.distance_m === "number"
          ? ", " + event.distance_m.toFixed(1) + "\u00a0m" : "") : "";
      case "dwell":
        return "dwelled " + duration(event.dwell_s);
      case "exit":
        return "after " + duration(event.dwell_s) + (event.exit_reason ? " (" + event.exit_reason + ")" : "");
      case "trigger":
        return "rule " + event.rule + " → " + event.action + " (on " + event.cause + ")";
      case "telemetry": {
        const parts = ["battery " + event.battery_mv + "\u00a0mV"];
        if (typeof event.temperature_c === "number") parts.push(event.temperature_c.toFixed(1) + "\u00a0°C");
        if (event.encrypted) parts.push("eTLM");
        return parts.join(", ");
      }
      default:
        return "";
    }
  }

  function renderEvent(event) {
    const item = el("li", "event");
    item.dataset.type = event.type;
    const what = subjectName(event.subject).text + (event.zone ? " · " + event.zone : "");
    item.append(
      el("span", "event-time", clockTime(event.event_time)),
      el("span", "event-type " + event.type, event.type),
      el("span", "event-what", what),
    );
    const detail = eventDetail(event);
    if (detail) item.append(el("span", "event-detail", detail));
    return item;
  }

  // --------------------------------------------------------------------------- counters

  function renderCounts(state) {
    const values = Object.assign({}, state.counts || {});
    values.sightings = state.sightings;
    const checks = (state.health && state.health.checks) || {};
    values.outbox_depth = checks.outbox_depth;
    replace($("counts"), COUNTERS.map(([key, label]) => {
      const box = el("div", "counter");
      box.dataset.count = key;
      const value = values[key];
      box.append(el("dt", null, label), el("dd", null, typeof value === "number" ? value.toLocaleString() : "–"));
      return box;
    }));
  }

  // --------------------------------------------------------------------------- polling

  function render(state) {
    renderHeader(state);
    replace($("zones"), (state.zones || []).map(renderZone));
    const recent = state.recent || [];
    replace($("events"), recent.length ? recent.map(renderEvent) : [el("li", "empty-note", "no events yet")]);
    renderCounts(state);
    lastUpdate = new Date();
    $("updated").textContent = lastUpdate.toLocaleTimeString([], { hour12: false });
    document.body.classList.remove("stale");
    $("banner").hidden = true;
  }

  function disconnected(reason) {
    const health = $("health");
    health.className = "pill disconnected";
    health.textContent = "disconnected";
    document.body.classList.add("stale");
    const banner = $("banner");
    const since = lastUpdate ? " Last update " + lastUpdate.toLocaleTimeString([], { hour12: false }) + "; what is shown is stale." : "";
    banner.textContent = "Disconnected: the gateway is not answering (" + reason + ")." + since + " Retrying…";
    banner.hidden = false;
  }

  async function poll() {
    let delay = POLL_MS;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
    try {
      const response = await fetch(STATE_URL, { cache: "no-store", signal: controller.signal });
      if (!response.ok) throw new Error("HTTP " + response.status);
      render(await response.json());
    } catch (error) {
      disconnected(error && error.name === "AbortError" ? "timed out" : (error && error.message) || "error");
      delay = RETRY_MS;
    } finally {
      clearTimeout(timer);
    }
    setTimeout(poll, delay);
  }

  poll();
})();
