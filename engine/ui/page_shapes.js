// The timeline's shapes as SVG text: a lane's spans, attempts and marks, the arrows
// between lanes, the axis labels (pure; page.js places them).
var TimelineShapes = (function () {
  "use strict";
  var ROW = 28;

  var FAR = 1e7;
  function n3(x) { return x.toFixed(3); }
  function title(text) { return "<title>" + esc(text) + "</title>"; }

  // a lane's shapes, as lane_svg.lane_fragment draws them on the server
  function fragment(l) {
    var out = [];
    l.spans.forEach(function (s) {
      var end = s[2] === null ? FAR : s[2];
      var until = s[2] === null ? "now" : "+" + n3(s[2]) + " s";
      out.push('<rect class="span s-' + s[0] + '" data-pos="' + s[3] + '" x="' + n3(s[1]) +
        '" y="1" width="' + n3(Math.max(end - s[1], 0)) + '" height="' + (ROW - 2) + '">' +
        title(s[0] + " from +" + n3(s[1]) + " s to " + until + " (position " + s[3] + ")") + "</rect>");
    });
    l.attempts.forEach(function (a) {
      var end = a[2] === null ? l.last_at : a[2], top = a[0] ? 4 : 15;
      var text = a[7] + " attempt " + a[5] + ": " + a[3].replace("_", " ");
      if (a[2] !== null) text += ", " + Math.round((a[2] - a[1]) * 1000).toLocaleString("en") + " ms";
      if (a[8]) text += " \u2014 " + a[8];
      if (a[6] !== null) text += "; retry in " + n3(a[6]) + " s";
      out.push('<g class="bar o-' + a[3] + '" data-pos="' + a[4] + '" data-outcome="' + a[3] + '">' +
        title(text) + '<rect x="' + n3(a[1]) + '" y="' + top + '" width="' + n3(Math.max(end - a[1], 1e-4)) +
        '" height="9"/><line x1="' + n3(a[1]) + '" x2="' + n3(a[1]) + '" y1="' + top + '" y2="' + (top + 9) + '"/></g>');
      if (a[6] !== null && a[2] !== null) {
        var y = a[0] ? 8 : 19;
        out.push('<line class="gap" x1="' + n3(a[2]) + '" x2="' + n3(a[2] + a[6]) + '" y1="' + y + '" y2="' + y + '">' +
          title("retry delay " + n3(a[6]) + " s") + "</line>");
      }
    });
    l.marks.forEach(function (m) {
      out.push('<line class="mark m-' + m[0] + '" data-pos="' + m[2] + '" x1="' + n3(m[1]) + '" x2="' + n3(m[1]) +
        '" y1="0" y2="' + ROW + '">' + title(m[3]) + "</line>");
    });
    return out.join("");
  }

  function pct(at, view) { return ((at - view.start) / Math.max(view.end - view.start, 0.001) * 100).toFixed(3) + "%"; }

  function line(css, x, y1, y2, marker, title, extra) {
    return '<line class="' + css + '" x1="' + x + '" x2="' + x + '" y1="' + y1 + '" y2="' + y2 +
      '" marker-end="url(#' + marker + ')"' + (extra || "") + "><title>" + esc(title) + "</title></line>";
  }

  function esc(text) {
    return String(text).replace(/[&<>"]/g, function (c) { return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]; });
  }

  // the arrows between lanes `first`..`last` of `shown`: waits, and deadlock cycles
  function overlay(shown, first, last, deadlocks, view) {
    var rowOf = new Map();
    shown.forEach(function (l, i) { rowOf.set(l.label, i); });
    var parts = [];
    var mid = ROW / 2;
    for (var i = first; i < last; i++) {
      var l = shown[i];
      l.waits.forEach(function (w) {
        var t = rowOf.get(w[1]);
        if (t === undefined || t === i) return;
        parts.push(line("wait", pct(w[0], view), i * ROW + mid, t * ROW + mid, "arrow", l.label + " waits for " + w[1]));
      });
    }
    deadlocks.forEach(function (d) {
      var n = d.cycle.length, span = view.end - view.start;
      var rows = d.cycle.map(function (m) { return rowOf.get(m); });
      if (rows.every(function (r) { return r !== undefined; })) {
        parts.push('<text class="deadlock-label" x="' + pct(d.at + n * span * 0.012, view) + '" y="' +
          (Math.min.apply(null, rows) * ROW + 12) + '">deadlock</text>');
      }
      d.cycle.forEach(function (member, k) {
        var next = d.cycle[(k + 1) % n], a = rowOf.get(member), b = rowOf.get(next);
        if (a === undefined || b === undefined) return;
        parts.push(line("deadlock-edge", pct(d.at + k * span * 0.012, view), a * ROW + mid, b * ROW + mid, "arrow-dead",
          "deadlock: " + member + " waits for " + next,
          ' data-from="' + esc(member) + '" data-to="' + esc(next) + '"'));
      });
    });
    return parts.join("");
  }

  // about eight time labels across the window, as page.axis_ticks draws them
  function ticks(view, originMs) {
    var span = Math.max(view.end - view.start, 0.001), raw = span / 8;
    var mag = Math.pow(10, Math.floor(Math.log10(raw)));
    var step = [1, 2, 5, 10].map(function (m) { return m * mag; }).filter(function (s) { return s >= raw; })[0];
    var html = [];
    for (var t = Math.ceil(view.start / step) * step; t <= view.start + span * 0.95; t += step) {
      var d = new Date(originMs + t * 1000), text = d.toISOString().slice(11, step < 1 ? 23 : 19);
      html.push('<span class="tick" style="left:' + ((t - view.start) / span * 100).toFixed(3) + '%">' + text + "</span>");
    }
    return html.join("");
  }

  return { ROW: ROW, esc: esc, fragment: fragment, overlay: overlay, ticks: ticks };
})();
