'use strict';
// The plotly.js the dashboard serves: the core (with scatter) and the traces it draws
// (dashboard/web/figures.py, trend_figures.py, intune_*.py). A figure with any other trace
// type would draw nothing: add the trace here, rebuild, and commit the bundle.
var Plotly = require('plotly.js/lib/core');

Plotly.register([
    require('plotly.js/lib/bar'),
    require('plotly.js/lib/pie'),
    require('plotly.js/lib/funnel'),
]);

module.exports = Plotly;
