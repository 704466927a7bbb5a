/* Cell renderers for the device list. Values from the site database are passed to React as
   text children, never as HTML, so a device named "<img onerror=...>" shows as text. */
var dagcomponentfuncs = (window.dashAgGridComponentFunctions =
  window.dashAgGridComponentFunctions || {});

/* The device's page, with the list it was opened from (filters, sort and page: the list's
   URL at the moment of the click), so that its "Device list" link comes back here. */
function deviceHref(data) {
  var href =
    "/device/" + encodeURIComponent(data.resource_id) + "?site=" + encodeURIComponent(data.site);
  var list = window.location.search.replace(/^\?/, "");
  return list ? href + "&list=" + encodeURIComponent(list) : href;
}

dagcomponentfuncs.DeviceLink = function (props) {
  if (!props.data) {
    return null;
  }
  var data = props.data;
  function refresh(event) {  // the page may have changed since the row was drawn
    event.currentTarget.setAttribute("href", deviceHref(data));
  }
  return React.createElement(
    "a",
    { href: deviceHref(data), className: "device-link", onMouseDown: refresh, onFocus: refresh,
      onClick: refresh },
    String(props.value)
  );
};

dagcomponentfuncs.AttentionBadges = function (props) {
  if (!props.value || !props.value.length) {
    return null;
  }
  return React.createElement(
    "span",
    null,
    props.value.map(function (rule) {
      return React.createElement(
        "span",
        { key: rule.id, className: "badge sev-" + rule.severity + " me-1",
          title: rule.severity + " severity", "data-rule": rule.id },
        String(rule.title || rule.id)
      );
    })
  );
};
