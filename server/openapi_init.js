// Starts Swagger UI on the API docs page. A file rather than an inline script, so the page's
// Content-Security-Policy allows scripts from this origin only. `validatorUrl: null`: Swagger UI
// would otherwise ask validator.swagger.io (another origin) for a badge about the document.
"use strict";
(() => {
  const root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.openapiUrl,
    domNode: root,
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
})();
