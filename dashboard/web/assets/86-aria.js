/* Dash's date range picker puts aria-expanded on a <div> with no role, which assistive
   technology cannot interpret (axe: a critical violation). The div groups the two date fields
   and opens the calendar: give it the group role, which allows aria-expanded.
   A live collection checked twice a second: watching every DOM change instead (plotly makes
   thousands while drawing) cost the overview more than two seconds to first draw. */
(function () {
  var wrappers = document.getElementsByClassName("dash-datepicker-input-wrapper");
  window.setInterval(function () {
    for (var i = 0; i < wrappers.length; i++) {
      if (!wrappers[i].hasAttribute("role")) { wrappers[i].setAttribute("role", "group"); }
    }
  }, 500);
})();
