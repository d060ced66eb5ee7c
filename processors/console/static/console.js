// The console's only script: draws every chart whose data the page carries in a
// <script type="application/json"> block (never executed), named by the chart's data-chart
// attribute, with uPlot served by the console. No inline script, no eval: the
// Content-Security-Policy allows script from this origin only.
// A chart's data: {times: [epoch seconds], series: {label: [value or null]}, unit, stepped}.
(function () {
  "use strict";
  var PALETTE = ["#2f6fb3", "#b3261e", "#1d6b30", "#8a5200", "#6a3fa0", "#00727a", "#5c5c5c", "#a0307a"];

  function draw(target) {
    var source = document.getElementById(target.getAttribute("data-chart"));
    if (!source || typeof uPlot === "undefined") { return; }
    var chart = JSON.parse(source.textContent);
    var names = Object.keys(chart.series);
    var data = [chart.times].concat(names.map(function (name) { return chart.series[name]; }));
    var stepped = chart.stepped && uPlot.paths && uPlot.paths.stepped ? uPlot.paths.stepped({ align: 1 }) : null;
    var series = [{}].concat(names.map(function (name, n) {
      var line = { label: name, stroke: PALETTE[n % PALETTE.length], width: 2, spanGaps: !!chart.stepped };
      if (stepped) { line.paths = stepped; }
      return line;
    }));
    new uPlot({
      width: Math.max(target.clientWidth, 320),
      height: 240,
      series: series,
      axes: [{}, { label: chart.unit }],
      scales: { y: { range: function (u, min, max) { return [Math.min(0, min), Math.max(max, 1)]; } } },
    }, data, target);
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("[data-chart]"), draw);
  });
})();
