/* Dash's date range picker puts aria-expanded on a <div> with no role, which assistive
   technology cannot interpret (axe: a critical violation). The div groups the two date fields
   and opens the calendar: give it the group role, which allows aria-expanded. */
(function () {
  function mend(root) {
    root.querySelectorAll(".dash-datepicker-input-wrapper[aria-expanded]:not([role])")
      .forEach(function (wrapper) { wrapper.setAttribute("role", "group"); });
  }
  new MutationObserver(function () { mend(document); })
    .observe(document.documentElement, {childList: true, subtree: true});
})();
