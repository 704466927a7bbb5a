/* The device list keeps its sort and page in its URL (history.replaceState, so paging adds
   no history entries): Back from a device, a bookmark or a shared link shows the same rows.
   ``sort=name`` is ascending, ``sort=-name`` descending; the default (severity, descending)
   and page 1 are left out. A page asked for in the URL is kept until the grid reaches it. */
window.dash_clientside = Object.assign({}, window.dash_clientside, {
  devices: {
    keepState: function (info, request) {
      var noUpdate = window.dash_clientside.no_update;
      if (window.location.pathname !== "/devices") {
        return noUpdate;
      }
      var params = new URLSearchParams(window.location.search);
      var wanted = window.__devicesWantedPage;
      if (wanted === undefined) {  // first call on this page: the page the URL asked for
        wanted = window.__devicesWantedPage = Number(params.get("page") || "1");
      }
      if (request && request.sortModel) {
        var model = request.sortModel[0];
        var sort = model ? (model.sort === "desc" ? "-" : "") + model.colId : "";
        if (sort === "-severity" || sort === "") {
          params.delete("sort");
        } else {
          params.set("sort", sort);
        }
      }
      if (info && typeof info.currentPage === "number") {
        var page = info.currentPage + 1;
        if (info.totalPages && wanted > info.totalPages) {
          wanted = info.totalPages;  // a page past the end opens the last one
        }
        if (wanted > 1 && page !== wanted && page === 1) {
          return noUpdate;  // the grid has not yet opened the page from the URL
        }
        window.__devicesWantedPage = 1;
        if (page > 1) {
          params.set("page", String(page));
        } else {
          params.delete("page");
        }
      }
      var search = params.toString();
      var url = window.location.pathname + (search ? "?" + search : "");
      if (url !== window.location.pathname + window.location.search) {
        window.history.replaceState(window.history.state, "", url);
      }
      return search;
    },
  },
});

/* A new device-list page (Dash routes without reloading): forget the page wanted before. */
window.addEventListener("_dashprivate_pushstate", function () {
  window.__devicesWantedPage = undefined;
});
window.addEventListener("popstate", function () {
  window.__devicesWantedPage = undefined;
});
