"""A trimmed index.html of the pinned OHIF build, as the npm package ships it (for unit tests)."""

#: The shape of @ohif/app's dist/index.html (3.12), shortened.
OHIF_INDEX = (
    '<!doctype html><html lang="en"><head><meta charset="UTF-8"/>'
    '<meta name="msapplication-TileImage" content="/assets/mstile-144x144.png"/>'
    "<script>console.time('scriptToView');\n      window.PUBLIC_URL = '/';</script>"
    '<link rel="manifest" href="/manifest.json"/>'
    '<link rel="shortcut icon" href="/assets/favicon.ico"/>'
    '<link rel="preconnect" href="//fonts.example.org"/>'
    '<link rel="help" href="https://ohif.org/"/>'
    '<script rel="preload" as="script" src="/app-config.js"></script>'
    '<script rel="preload" as="script" type="module" src="/init-service-worker.js"></script>'
    "<title>OHIF Viewer</title><script>function browserImportFunction(moduleId) {\n"
    "        return import(moduleId);\n      }\n\n      window.PUBLIC_URL = '/';</script>"
    '<script defer="defer" src="/app.bundle.096daabbdde29bd851ab.js"></script>'
    '<link href="/app.bundle.css" rel="stylesheet"></head><body><div id="root"></div></body></html>'
)
