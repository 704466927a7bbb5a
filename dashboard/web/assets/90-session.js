/* When the sign-in has ended (expired, signed out in another tab, account removed), Dash's
   next callback gets 401: reload once, so the server shows the sign-in page (and comes back
   here after it) instead of a page that silently stops updating. */
(function () {
  var original = window.fetch;
  if (!original) {
    return;
  }
  var reloading = false;
  var dashRoutes = window.location.origin + "/_dash-";
  window.fetch = function () {
    return original.apply(this, arguments).then(function (response) {
      if (response.status === 401 && !reloading && response.url.indexOf(dashRoutes) === 0) {
        reloading = true;
        window.location.reload();
      }
      return response;
    });
  };
})();
