/* Charts that are links show a pointer over their marks. Plotly draws bars under a drag layer
   that takes the mouse, so CSS alone cannot tell a bar from empty space: plotly's own hover
   events mark the layer while a point is under the mouse. */
(function () {
  function hook(gd) {
    if (gd.__pointerHooked || typeof gd.on !== "function") { return; }
    gd.__pointerHooked = true;
    function mark(on) {
      gd.querySelectorAll(".nsewdrag").forEach(function (layer) {
        layer.classList.toggle("mark-hover", on);
      });
    }
    gd.on("plotly_hover", function () { mark(true); });
    gd.on("plotly_unhover", function () { mark(false); });
  }
  document.addEventListener("mouseover", function (event) {
    var target = event.target;
    var gd = target && target.closest && target.closest(".clickable-graph .js-plotly-plot");
    if (gd) { hook(gd); }
  });
})();
