// The live dashboard: follows the page's server-sent events and puts each `update` into the
// page (counters and table rows, as plain text). Without it the page reloads every 10 s.
(function () {
  "use strict";
  var root = document.getElementById("dashboard");
  if (!root || !window.EventSource) return;

  function fill(table, rows) {
    var body = table.tBodies[0];
    var heads = table.tHead.rows[0].cells;
    var width = heads.length;
    var fresh = document.createElement("tbody");
    if (!rows.length) {
      var empty = fresh.insertRow();
      var cell = empty.insertCell();
      cell.colSpan = width;
      cell.textContent = table.getAttribute("data-empty") || "";
    }
    rows.forEach(function (row) {
      var tr = fresh.insertRow();
      if (row.cls) tr.className = row.cls;
      row.cells.forEach(function (value, i) {
        var cell = document.createElement(i === 0 ? "th" : "td");
        if (i === 0) cell.scope = "row";
        else cell.setAttribute("data-label", heads[i] ? heads[i].textContent : "");
        cell.textContent = String(value);
        tr.appendChild(cell);
      });
    });
    table.replaceChild(fresh, body);
  }

  function update(data) {
    Object.keys(data.counters).forEach(function (key) {
      var node = root.querySelector('[data-count="' + key + '"]');
      if (node) node.textContent = String(data.counters[key]);
    });
    Object.keys(data.tables).forEach(function (id) {
      var table = document.getElementById(id);
      if (table) fill(table, data.tables[id]);
    });
    root.setAttribute("data-updated", String(Date.now()));
  }

  var source = new EventSource(root.getAttribute("data-stream"));
  source.addEventListener("update", function (event) {
    try {
      update(JSON.parse(event.data));
    } catch (e) {
      // a broken event changes nothing; the next one carries the whole dashboard again
    }
  });
})();
