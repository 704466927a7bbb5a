// Builds dashboard/web/vendor/plotly-comanage.min.js from entry.js with plotly.js's own
// bundler settings (its esbuild-config.js), minified. Run from this folder:
//     npm ci && node build.mjs
// The plotly.js version in package.json must equal the one the installed `plotly` Python
// package ships (python -c "import plotly.offline as o; print(o.get_plotlyjs_version())"):
// tests/web/test_plotly_bundle.py checks it.
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';

const version = JSON.parse(
    readFileSync(new URL('./node_modules/plotly.js/package.json', import.meta.url)),
).version;

await build({
    entryPoints: ['entry.js'],
    outfile: '../../dashboard/web/vendor/plotly-comanage.min.js',
    format: 'iife',
    globalName: 'Plotly',
    bundle: true,
    minify: true,
    // Only map traces import a stylesheet (MapLibre's); none is drawn here.
    loader: { '.css': 'empty' },
    alias: { regl: '@plotly/regl', stream: 'stream-browserify' },
    define: { global: 'window', 'define.amd': 'false', 'process.env.NODE_DEBUG': 'false' },
    target: 'es2016',
    banner: {
        js:
            `/*! plotly.js v${version} (traces: scatter, bar, pie, funnel) ` +
            '| (c) Plotly Technologies Inc. | MIT License: PLOTLY-LICENSE.txt */',
    },
    legalComments: 'none',
    logLevel: 'info',
});
