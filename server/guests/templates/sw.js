// Service worker of one e-ticket page: network first (so a replaced or cancelled ticket shows
// at once when online), the last answer from the cache when offline.
"use strict";
const PAGE = {{ page | tojson }};
const CACHE = "tessera-ticket-" + {{ link | tojson }};

const keyOf = (url) => url.pathname;
const ours = (url) =>
  url.origin === self.location.origin && (url.pathname === PAGE || url.pathname.startsWith(PAGE + "/"));

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches.open(CACHE)
      .then((cache) => cache.add(PAGE).then(() => cache.add(PAGE + "/qr.svg").catch(() => {})))
      .then(() => self.skipWaiting())
  );
});

self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || !ours(url) || url.pathname.endsWith("/sw.js")) return;
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
