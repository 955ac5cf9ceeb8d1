// Refreshes the status page from /status.json. Every server string goes in
// through textContent, never as HTML.
"use strict";
(function () {
  function visible(s) {
    return String(s).replace(/[\u0000-\u001f\u007f-\u009f]/g, function (c) {
      return "\\x" + c.charCodeAt(0).toString(16).padStart(2, "0");
    });
  }
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }
  function mib(n) { return (n / 1048576).toFixed(1) + " MiB"; }
  function rate(r) { return r > 0 ? (r / 1048576).toFixed(1) + " MiB/s" : "-"; }
  function hms(t) { return t.slice(11, 19); }
  function image(im) {
    var s = el("section", undefined, "image");
    var h = el("h2", visible(im.name) + " ");
    h.appendChild(el("small", im.kind + " image, " + mib(im.size) + ", " + im.pieces + " pieces"));
    s.appendChild(h);
    var hp = el("p", "source: ", "health");
    hp.appendChild(el("span", im.health, im.bad_pieces.length ? "bad" : ""));
    im.bad_pieces.forEach(function (b) {
      var t = " \u00b7 piece " + b.piece;
      if (b.partition) t += " of " + visible(b.partition);
      if (b.reason) t += ": " + visible(b.reason);
      hp.appendChild(document.createTextNode(t));
    });
    s.appendChild(hp);
    if (im.stuck_clients && im.stuck_clients.length) {
      s.appendChild(el("p", im.stuck_clients.length + " stuck on a damaged piece (" +
        im.stuck_clients.map(function (c) { return c.addr; }).join(", ") + "): " + im.advice, "bad stuck"));
    }
    var cp = el("p");
    cp.appendChild(el("code", "ezio deploy " + visible(im.url) + " TARGET"));
    s.appendChild(cp);
    var tb = el("table");
    var hr = el("tr");
    ["client", "progress", "rate", "state"].forEach(function (c) { hr.appendChild(el("th", c)); });
    tb.appendChild(el("thead")).appendChild(hr);
    var body = tb.appendChild(el("tbody"));
    if (!im.fleet.length) {
      var td = el("td", "no clients yet");
      td.colSpan = 4;
      body.appendChild(el("tr")).appendChild(td);
    }
    im.fleet.forEach(function (m) {
      var tr = el("tr", undefined, m.state);
      tr.appendChild(el("td", m.addr));
      tr.appendChild(el("td", Math.round(100 * m.done) + "%", "n"));
      tr.appendChild(el("td", rate(m.rate), "n"));
      tr.appendChild(el("td", m.state, "state"));
      body.appendChild(tr);
    });
    s.appendChild(tb);
    return s;
  }
  function render(st) {
    document.title = "ezio: " + st.summary;
    document.getElementById("summary").textContent = st.summary;
    document.getElementById("counts").textContent =
      st.clients + " seen, " + st.done + " done, " + st.failed + " gone before done";
    document.getElementById("updated").textContent = "at " + hms(st.time) + " UTC, live";
    var box = document.getElementById("images");
    box.textContent = "";
    if (!st.images.length) box.appendChild(el("p", "No image is served."));
    st.images.forEach(function (im) { box.appendChild(image(im)); });
    machines(st.machines || []);
    document.body.setAttribute("data-live", "1");
  }
  function machines(list) {
    var box = document.getElementById("machines");
    box.textContent = "";
    if (!list.length) return;
    box.appendChild(el("h2", "Machines booted from the network"));
    var t = el("table"), hr = el("tr");
    ["MAC", "address", "firmware", "progress", "state"].forEach(function (c) { hr.appendChild(el("th", c)); });
    t.appendChild(hr);
    list.forEach(function (m) {
      var tr = el("tr", undefined, m.state);
      tr.appendChild(el("td", m.mac));
      tr.appendChild(el("td", m.ip || ""));
      tr.appendChild(el("td", m.arch || ""));
      tr.appendChild(el("td", m.bytes_total ? mib(m.bytes_done) + " of " + mib(m.bytes_total) : "", "n"));
      tr.appendChild(el("td", m.state + (m.reason ? ": " + visible(m.reason) : ""), "state"));
      t.appendChild(tr);
    });
    box.appendChild(t);
  }
  var failedSince = "";
  function tick() {
    fetch("/status.json", { cache: "no-store" })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (st) { failedSince = ""; render(st); })
      .catch(function () {
        if (!failedSince) failedSince = new Date().toTimeString().slice(0, 8);
        document.getElementById("updated").textContent = "server not answering since " + failedSince;
      })
      .finally(function () { setTimeout(tick, 2000); });
  }
  tick();
})();
