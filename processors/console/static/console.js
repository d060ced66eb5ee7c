// The console's only script: draws the charts whose data the page carries in
// <script type="application/json"> blocks (never executed), with uPlot served by the console.
// No inline script, no eval: the Content-Security-Policy allows script from this origin only.
(function () {
  "use strict";
  var COLOURS = { info: "#2f6fb3", warning: "#b36b00", critical: "#b3261e" };

  function drawAlerts() {
    var source = document.getElementById("alerts-chart-data");
    var target = document.getElementById("alerts-chart");
    if (!source || !target || typeof uPlot === "undefined") { return; }
    var chart = JSON.parse(source.textContent);
    var names = Object.keys(chart.series);
    var data = [chart.times].concat(names.map(function (name) { return chart.series[name]; }));
    var series = [{}].concat(names.map(function (name) {
      return { label: name, stroke: COLOURS[name] || "#444", width: 2 };
    }));
    new uPlot({
      width: Math.max(target.clientWidth, 320),
      height: 220,
      series: series,
      axes: [{}, { label: "alerts" }],
      scales: { y: { range: function (u, min, max) { return [0, Math.max(max, 1)]; } } },
    }, data, target);
  }

  document.addEventListener("DOMContentLoaded", drawAlerts);
})();
