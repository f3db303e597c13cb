// Service worker of one e-ticket page: network first (so a replaced or cancelled ticket shows
// at once when online), the last answer from the cache when offline. The event's logo and
// banner are kept too, cache first: their names carry their content's hash, so a stored copy
// is never stale (a new image is a new name, which the page names on its next load).
"use strict";
const PAGE = {{ page | tojson }};
const CACHE = "tessera-ticket-" + {{ link | tojson }};
const IMAGES = {{ images | tojson }};

const keyOf = (url) => url.pathname;
const same = (url) => url.origin === self.location.origin;
const ours = (url) => same(url) && (url.pathname === PAGE || url.pathname.startsWith(PAGE + "/"));
const image = (url) => same(url) && IMAGES.includes(url.pathname);

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches.open(CACHE)
      .then((cache) =>
        cache.add(PAGE).then(() =>
          Promise.all([PAGE + "/qr.svg", ...IMAGES].map((path) => cache.add(path).catch(() => {})))
        )
      )
      .then(() => self.skipWaiting())
  );
});

self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET") return;
  if (image(url)) {
    event.respondWith(
      caches.match(keyOf(url)).then(
        (cached) =>
          cached ||
          fetch(event.request).then((response) => {
            if (response.ok) {
              const copy = response.clone();
              caches.open(CACHE).then((cache) => cache.put(keyOf(url), copy));
            }
            return response;
          })
      )
    );
    return;
  }
  if (!ours(url) || url.pathname.endsWith("/sw.js")) return;
  event.respondWith(
    fetch(event.request)
      .then((response) => {
        // 410 and 423 are cached too: a QR that must no longer be shown leaves the cache.
        if (response.status < 500 && response.status !== 429) {
          const copy = response.clone();
          caches.open(CACHE).then((cache) => cache.put(keyOf(url), copy));
        }
        return response;
      })
      .catch(() => caches.match(keyOf(url)).then((cached) => cached || Response.error()))
  );
});
