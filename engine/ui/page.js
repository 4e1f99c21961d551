// The timeline's interactivity: virtualized lanes, zoom, filters, details, live updates.
(function () {
  "use strict";
  window.scriptStartAt = performance.now();
  var ROW = TimelineShapes.ROW, BUFFER = 12, SVGNS = "http://www.w3.org/2000/svg";
  var root = document.documentElement;
  root.classList.add("js");
  var data = JSON.parse(document.getElementById("timeline-data").textContent);
  var lanesBox = document.getElementById("lanes");
  var overlayBox = document.getElementById("overlay-box");
  var ticks = document.getElementById("ticks");
  // what a lane's JSON leaves out, derived once: see page_data.lane_json
  function known(l) {
    var path = l.id.split("#")[0].split("/");
    if (path.length >= 4) { l.ns = path[path.length - 2]; l.name = path[path.length - 1]; l.kind = path[path.length - 3]; }
    else { l.ns = ""; l.name = l.id; l.kind = ""; }
    l.label = l.ns ? l.ns + "/" + l.name : l.name;
    l.states = l.spans.map(function (s) { return s[0]; });
    l.outcomes = l.attempts.map(function (a) { return a[3]; });
    return l;
  }
  var all = data.lanes;
  all.forEach(function (l, i) { known(l); l.index = i; });
  var shown = [];
  var rendered = new Map();
  var filters = { name: "", ns: "", state: "", outcome: "" };
  var full = function () { return Math.max(data.end, 0.001) * 1.06; };
  var view = { start: 0, end: full(), following: true };
  var selectedPos = null;

  Array.prototype.slice.call(lanesBox.querySelectorAll(".lane")).forEach(function (el) { el.remove(); });

  function matches(l) {
    return (!filters.name || l.label.toLowerCase().indexOf(filters.name) >= 0) &&
      (!filters.ns || l.ns === filters.ns) &&
      (!filters.state || l.states.indexOf(filters.state) >= 0) &&
      (!filters.outcome || l.outcomes.indexOf(filters.outcome) >= 0);
  }

  // `changed` (live updates): only those lanes, and lanes that moved, are drawn again
  function refilter(changed) {
    shown = all.filter(matches);
    var at = new Map();
    shown.forEach(function (l, i) { at.set(l.id, i); });
    rendered.forEach(function (el, id) {
      var i = at.get(id);
      if (!changed || changed.has(id) || i === undefined || el.style.top !== i * ROW + "px") {
        el.remove();
        rendered.delete(id);
      }
    });
    lanesBox.style.height = Math.max(shown.length, 1) * ROW + "px";
    document.getElementById("shown").textContent = shown.length + " of " + all.length + " resources";
    draw();
  }

  function viewBox() {
    return view.start.toFixed(3) + " 0 " + Math.max(view.end - view.start, 0.001).toFixed(3) + " " + ROW;
  }

  function laneElement(l, i) {
    var div = document.createElement("div");
    div.className = "lane";
    div.dataset.id = l.id;
    div.dataset.state = l.state;
    div.dataset.label = l.label;
    div.style.top = i * ROW + "px";
    var label = document.createElement("div");
    label.className = "label";
    label.title = l.id;
    var a = document.createElement("a");
    if (l.index >= 0 && document.getElementById("res-" + l.index)) a.href = "#res-" + l.index;
    a.textContent = l.label;
    var state = document.createElement("span");
    state.className = "state s-" + l.state;
    state.textContent = l.state;
    label.appendChild(a);
    label.appendChild(document.createTextNode(" "));
    label.appendChild(state);
    var svg = document.createElementNS(SVGNS, "svg");
    svg.setAttribute("class", "track");
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("viewBox", viewBox());
    svg.innerHTML = TimelineShapes.fragment(l);
    div.appendChild(label);
    div.appendChild(svg);
    if (selectedPos !== null) mark(div);
    return div;
  }

  function draw() {
    var top = lanesBox.getBoundingClientRect().top;
    var first = Math.max(0, Math.floor(-top / ROW) - BUFFER);
    var last = Math.min(shown.length, Math.ceil((window.innerHeight - top) / ROW) + BUFFER);
    var keep = new Set();
    for (var i = first; i < last; i++) keep.add(shown[i].id);
    rendered.forEach(function (el, id) { if (!keep.has(id)) { el.remove(); rendered.delete(id); } });
    var box = document.createDocumentFragment();
    for (var j = first; j < last; j++) {
      var l = shown[j];
      if (!rendered.has(l.id)) { var el = laneElement(l, j); rendered.set(l.id, el); box.appendChild(el); }
    }
    lanesBox.insertBefore(box, overlayBox);
    drawOverlay(first, last);
  }

  function drawOverlay(first, last) {
    var svg = document.getElementById("overlay");
    svg.setAttribute("height", Math.max(shown.length, 1) * ROW);
    var defs = svg.querySelector("defs").outerHTML;
    svg.innerHTML = defs + TimelineShapes.overlay(shown, first, last, data.deadlocks, view);
  }

  function drawTicks() { ticks.innerHTML = TimelineShapes.ticks(view, data.origin_ms); }

  function drawWindow() {
    var chart = document.getElementById("summary-chart");
    if (!chart) return;
    var box = chart.viewBox.baseVal, rect = chart.querySelector("#window");
    if (!rect) {
      rect = document.createElementNS(SVGNS, "rect");
      rect.id = "window";
      rect.setAttribute("class", "window");
      rect.setAttribute("style", "fill:#0969da1a;stroke:#0969da;stroke-width:1px;vector-effect:non-scaling-stroke");
      chart.appendChild(rect);
    }
    rect.setAttribute("x", view.start);
    rect.setAttribute("y", 0);
    rect.setAttribute("width", Math.max(view.end - view.start, 0.001));
    rect.setAttribute("height", box.height);
  }

  function setView(start, end, following) {
    var whole = full();
    start = Math.max(0, Math.min(start, whole));
    end = Math.max(start + 0.001, Math.min(end, whole));
    view = { start: start, end: end, following: !!following };
    var vb = viewBox();
    rendered.forEach(function (el) { el.querySelector("svg").setAttribute("viewBox", vb); });
    document.getElementById("z-from").value = start.toFixed(2);
    document.getElementById("z-to").value = end.toFixed(2);
    drawTicks();
    drawWindow();
    draw();
  }

  function zoom(factor) {
    var mid = (view.start + view.end) / 2, half = (view.end - view.start) * factor / 2;
    setView(mid - half, mid + half, false);
  }

  function dragZoom(element, toTime) {
    var from = null;
    element.addEventListener("mousedown", function (e) { from = toTime(e); e.preventDefault(); });
    window.addEventListener("mouseup", function (e) {
      if (from === null) return;
      var to = toTime(e), a = Math.min(from, to), b = Math.max(from, to);
      from = null;
      if (b - a > 0.0005) setView(a, b, false);
    });
  }

  function fraction(e, el) {
    var r = el.getBoundingClientRect();
    return Math.max(0, Math.min(1, (e.clientX - r.left) / r.width));
  }

  dragZoom(ticks, function (e) { return view.start + fraction(e, ticks) * (view.end - view.start); });
  var chartBox = document.querySelector("#summary .chart");
  dragZoom(chartBox, function (e) {
    var chart = document.getElementById("summary-chart");
    return fraction(e, chartBox) * chart.viewBox.baseVal.width;
  });

  function mark(scope) {
    Array.prototype.slice.call(scope.querySelectorAll(".selected")).forEach(function (el) { el.classList.remove("selected"); });
    if (selectedPos === null) return;
    Array.prototype.slice.call(scope.querySelectorAll('[data-pos="' + selectedPos + '"]')).forEach(function (el) { el.classList.add("selected"); });
  }

  function showDetails(pos, shape) {
    selectedPos = pos;
    mark(lanesBox);
    var panel = document.getElementById("details"), body = document.getElementById("details-body");
    body.textContent = "";
    var title = shape.querySelector("title");
    var heading = document.createElement("h3");
    heading.textContent = title ? title.textContent : "position " + pos;
    body.appendChild(heading);
    var record = data.details[pos];
    if (record) fill(body, record);
    else if (data.live) {
      fetch("record/" + pos).then(function (r) { return r.ok ? r.json() : null; }).then(function (rec) {
        if (rec && selectedPos === pos) { data.details[pos] = rec; fill(body, rec); }
      });
    }
    panel.hidden = false;
  }

  function fill(body, record) {
    var meta = document.createElement("p");
    meta.className = "record-meta";
    meta.textContent = record.type + " · position " + record.position + " · " + record.at + " · " + record.stream + " v" + record.version;
    body.appendChild(meta);
    var links = document.createElement("p");
    var row = document.getElementById("rec-" + record.position);
    if (row) { var a = document.createElement("a"); a.href = "#rec-" + record.position; a.textContent = "row in the table"; links.appendChild(a); }
    if (record.trace_id) {
      links.appendChild(document.createTextNode(" trace "));
      var code = document.createElement("code");
      code.textContent = record.trace_id;
      if (data.jaeger_url) {
        var t = document.createElement("a");
        t.className = "jaeger";
        t.href = data.jaeger_url.replace(/\/+$/, "") + "/trace/" + encodeURIComponent(record.trace_id);
        t.appendChild(code);
        links.appendChild(t);
      } else links.appendChild(code);
    }
    body.appendChild(links);
    var pre = document.createElement("pre");
    pre.className = "record-data";
    pre.textContent = JSON.stringify(record.data, null, 1);
    body.appendChild(pre);
  }

  lanesBox.addEventListener("click", function (e) {
    var shape = e.target.closest ? e.target.closest("[data-pos]") : null;
    if (!shape) return;
    e.preventDefault();
    showDetails(shape.getAttribute("data-pos"), shape);
  });
  document.getElementById("details-close").addEventListener("click", function () {
    document.getElementById("details").hidden = true;
    selectedPos = null;
    mark(lanesBox);
  });

  function bind(id, key, lower) {
    var el = document.getElementById(id);
    var changed = function () {
      var value = lower ? el.value.toLowerCase() : el.value;
      if (value !== filters[key]) { filters[key] = value; refilter(); }
    };
    el.addEventListener("input", changed);
    el.addEventListener("change", changed);
  }
  bind("f-name", "name", true);
  bind("f-ns", "ns", false);
  bind("f-state", "state", false);
  bind("f-outcome", "outcome", false);
  function typedView() {
    var a = parseFloat(document.getElementById("z-from").value), b = parseFloat(document.getElementById("z-to").value);
    if (!isNaN(a) && !isNaN(b) && b > a) setView(a, b, false);
  }
  document.getElementById("z-from").addEventListener("change", typedView);
  document.getElementById("z-to").addEventListener("change", typedView);
  document.getElementById("z-in").addEventListener("click", function () { zoom(0.5); });
  document.getElementById("z-out").addEventListener("click", function () { zoom(2); });
  document.getElementById("z-reset").addEventListener("click", function () { setView(0, full(), true); });

  var pending = false;
  function soon() { if (!pending) { pending = true; requestAnimationFrame(function () { pending = false; draw(); }); } }
  window.addEventListener("scroll", soon, { passive: true });
  window.addEventListener("resize", soon);

  function order(a, b) {
    return a.ns < b.ns ? -1 : a.ns > b.ns ? 1 : a.name < b.name ? -1 : a.name > b.name ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
  }

  function update(msg) {
    var byId = new Map(all.map(function (l) { return [l.id, l]; }));
    msg.lanes.forEach(function (l) {
      known(l);
      var before = byId.get(l.id);
      l.index = before ? before.index : -1;
      byId.set(l.id, l);
    });
    all = Array.from(byId.values()).sort(order);
    data.deadlocks = msg.deadlocks;
    data.end = msg.end;
    data.last_position = msg.last_position;
    if (data.origin_ms === 0) data.origin_ms = msg.origin_ms;
    Object.assign(data.details, msg.details || {});
    var chart = document.getElementById("summary-chart");
    if (chart && msg.summary) chart.outerHTML = msg.summary;
    document.getElementById("summary-text").textContent = msg.summary_text || "";
    document.getElementById("counts").textContent = all.length + " resources, " + msg.records.toLocaleString("en") + " records";
    document.getElementById("span-text").textContent = msg.end.toFixed(3) + " s";
    refilter(new Set(msg.lanes.map(function (l) { return l.id; })));
    if (view.following) setView(0, full(), true); else drawWindow();
  }

  if (data.live && window.EventSource) {
    var status = document.getElementById("live-status");
    var source = new EventSource("events?from=" + data.last_position);
    source.addEventListener("open", function () { status.textContent = "● live"; });
    source.addEventListener("error", function () { status.textContent = "reconnecting…"; });
    source.addEventListener("update", function (e) {
      var msg = JSON.parse(e.data);
      if (msg.last_position <= data.last_position && msg.lanes.length === 0) return;
      update(msg);
    });
    // reconnects resume after what the page already has
    window.addEventListener("beforeunload", function () { source.close(); });
  }

  refilter();
  setView(0, full(), true);
  window.timelineReadyAt = performance.now();
  root.dataset.ready = "1";
})();
