// console.js -- live updates for the operator console (served as /static/console.js).
//
// Every console page works as plain HTML. With this script, each element
// with an id and a data-live attribute is refreshed every data-refresh
// seconds (CS_CONSOLE_REFRESH_SECONDS, on <body>; 0: never): the page is
// fetched again from its own URL and those elements are swapped for their
// new versions. Nothing refreshes while the tab is hidden or while a form
// field has focus, so nobody loses what they are typing.
'use strict';

(function () {
  const seconds = Number(document.body.dataset.refresh || '0');
  if (!(seconds > 0) || !document.querySelector('[data-live][id]')) return;
  let busy = false;

  function typing() {
    const a = document.activeElement;
    return a && ['INPUT', 'TEXTAREA', 'SELECT'].includes(a.tagName);
  }

  async function refresh() {
    if (busy || document.hidden || typing()) return;
    busy = true;
    try {
      const r = await fetch(location.href, {
        credentials: 'same-origin',
        headers: { 'X-Console-Live': '1' },
        cache: 'no-store',
      });
      if (!r.ok || !(r.headers.get('content-type') || '').startsWith('text/html')) return;
      const doc = new DOMParser().parseFromString(await r.text(), 'text/html');
      for (const el of document.querySelectorAll('[data-live][id]')) {
        const fresh = doc.getElementById(el.id);
        if (fresh && fresh.innerHTML !== el.innerHTML) el.innerHTML = fresh.innerHTML;
      }
      document.body.dataset.refreshed = String(Date.now());
    } catch (e) {
      // A failed refresh leaves the page as it is; the next one tries again.
    } finally {
      busy = false;
    }
  }

  setInterval(refresh, seconds * 1000);
})();
