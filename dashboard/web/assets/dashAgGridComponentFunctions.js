/* Cell renderers for the device list. Values from the site database are passed to React as
   text children, never as HTML, so a device named "<img onerror=...>" shows as text. */
var dagcomponentfuncs = (window.dashAgGridComponentFunctions =
  window.dashAgGridComponentFunctions || {});

dagcomponentfuncs.DeviceLink = function (props) {
  if (!props.data) {
    return null;
  }
  var href =
    "/device/" + encodeURIComponent(props.data.resource_id) +
    "?site=" + encodeURIComponent(props.data.site);
  return React.createElement("a", { href: href, className: "device-link" }, String(props.value));
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
        { key: rule.id, className: "badge sev-" + rule.severity + " me-1", title: rule.severity },
        String(rule.id)
      );
    })
  );
};
