/* Narrow screens: a legend at a chart's right leaves the chart itself almost no room on a
   phone (the enrollment-status donut, the attention trends), so there it goes below the chart;
   80-narrow.css gives those charts the height. Wider screens and the report page, which is
   photographed at 1200 px, are left as they are. */
(function () {
  "use strict";
  var narrow = window.matchMedia("(max-width: 767.98px)");
  var BELOW = {"legend.orientation": "h", "legend.x": 0, "legend.xanchor": "left",
               "legend.y": -0.05, "legend.yanchor": "top"};

  function below(gd) {
    var full = gd._fullLayout;
    if (!narrow.matches || !window.Plotly || !full || !full.showlegend || !full.legend) {
      return;
    }
    if (full.legend.orientation !== "v" || full.legend.x < 1 || gd.closest("#report")) {
      return;  // already below, inside the plot, or the fixed-size report
    }
    window.Plotly.relayout(gd, BELOW);
  }

  function watch() {
    scheduled = false;
    document.querySelectorAll(".js-plotly-plot").forEach(function (gd) {
      if (gd.dataset.narrowLegend || typeof gd.on !== "function") {
        return;
      }
      gd.dataset.narrowLegend = "1";
      // Dash redraws a chart whenever its figure changes: move the legend after each draw.
      gd.on("plotly_afterplot", function () { below(gd); });
      below(gd);
    });
  }

  var scheduled = false;
  new MutationObserver(function () {
    if (!scheduled) {
      scheduled = true;
      window.requestAnimationFrame(watch);
    }
  }).observe(document.documentElement, {childList: true, subtree: true});
})();
