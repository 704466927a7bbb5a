/* The device list from the keyboard: AG Grid is one Tab stop whose cells the arrow keys move
   between; Enter on a row's cell opens that row's device page (the link in its Name cell),
   as a click on the name does. */
(function () {
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" || event.altKey || event.ctrlKey || event.metaKey) { return; }
    var cell = event.target && event.target.closest && event.target.closest(".ag-cell");
    if (!cell) { return; }
    var row = cell.closest(".ag-row");
    var grid = cell.closest(".ag-root-wrapper");
    if (!row || !grid) { return; }
    var index = row.getAttribute("row-index");
    var link = grid.querySelector('.ag-row[row-index="' + index + '"] a.device-link');
    if (link) {
      event.preventDefault();
      event.stopPropagation();
      link.click();
    }
  }, true);
})();
