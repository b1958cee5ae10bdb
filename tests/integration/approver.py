"""A person who decides, as a browser does it: the one approver client of the tests.

Countersign lets only a signed-in approver vote (SPEC, security invariant 2):

1. a one-time sign-in link (``countersign approval links`` / ``batch links`` /
   ``approver signin-link``, or a notification) is opened with a GET, which
   shows "Continue as NAME" and changes nothing;
2. pressing Continue POSTs the same link: 303 with the ``cs_session`` cookie
   and a *local* ``Location`` (the approval's ``/status/<token>`` page or a
   ``/batch/<token>`` page), joined here with the link's origin;
3. the page holds the decision form ``<form method="post" class="card">`` with
   the session's hidden ``csrf`` (batch pages add ``digest``); every signed-in
   page also starts with a sign-out form holding the same csrf, which is not
   the decision form;
4. POSTing that form (csrf, decision, reason [, digest, except]) decides.

An :class:`Approver` is one browser: its own cookie jar, redirects followed by
hand so each step can be checked. POSTs carry ``Origin`` as a browser sends it
(the page's own origin unless a test says otherwise). :func:`vote` and
:func:`batch_vote` do the whole walk for a test that only needs the outcome.
"""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from harness import System
from services import scaled

DECISION_FORM = re.compile(r'<form method="post" class="card">(.*?)</form>', re.S)
HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')
ANY_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
SESSION_COOKIE = "cs_session"
SAME_ORIGIN = object()  # post(): send the page's own Origin, as a browser does


def origin_of(url: str) -> str:
    u = urlsplit(url)
    return f"{u.scheme}://{u.netloc}"


class Approver:
    """One person's browser: a cookie jar, no automatic redirects."""

    def __init__(self) -> None:
        self.http = httpx.Client(timeout=scaled(30), follow_redirects=False)

    def __enter__(self) -> Approver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    # ---- signing in and out ------------------------------------------------

    @property
    def session(self) -> str | None:
        """The cs_session cookie this browser holds (None when signed out)."""
        return self.http.cookies.get(SESSION_COOKIE)

    def plant_session(self, token: str, url: str) -> None:
        """Puts a cs_session cookie into the jar (as a fixation attacker would)."""
        self.http.cookies.set(SESSION_COOKIE, token, domain=urlsplit(url).hostname or "",
                              path="/")

    def continue_page(self, signin_url: str) -> str:
        """GETs a sign-in link: its "Continue as NAME" page (asserts 200)."""
        r = self.http.get(signin_url)
        assert r.status_code == 200 and "Continue as" in r.text, (r.status_code, r.text[:800])
        return r.text

    def spend(self, signin_url: str, origin: Any = SAME_ORIGIN) -> httpx.Response:
        """POSTs a sign-in link (pressing Continue); the raw answer."""
        return self.http.post(signin_url, headers=self._headers(signin_url, origin))

    def sign_in(self, signin_url: str) -> str:
        """Opens a one-time link, presses Continue, checks the cookie and the
        local redirect; returns the absolute URL of the page it leads to."""
        self.continue_page(signin_url)
        r = self.spend(signin_url)
        assert r.status_code == 303, (r.status_code, r.text[:800])
        location = r.headers["location"]
        assert location.startswith("/") and not location.startswith("//"), location
        cookie = next((h for h in r.headers.get_list("set-cookie")
                       if h.startswith(SESSION_COOKIE + "=")), "")
        for attr in ("HttpOnly", "SameSite=Lax", "Path=/", "Max-Age="):
            assert attr in cookie, f"the session cookie lacks {attr}: {cookie}"
        assert self.session, "no session cookie after sign-in"
        return urljoin(signin_url, location)

    def sign_out(self, page_url: str) -> httpx.Response:
        """Presses "Sign out" on a signed-in page."""
        csrf = self.session_csrf(page_url)
        return self.post(urljoin(page_url, "/signout"), {"csrf": csrf})

    # ---- pages and forms ---------------------------------------------------

    def page(self, url: str) -> str:
        """GETs a page (asserts 200); its HTML."""
        r = self.http.get(url)
        assert r.status_code == 200, (url, r.status_code, r.text[:800])
        return r.text

    def form(self, page_url: str) -> dict[str, str]:
        """The hidden fields (csrf [, digest]) of the page's decision form;
        fails the test when the page shows none."""
        text = self.page(page_url)
        for body in DECISION_FORM.findall(text):
            fields = {k: html.unescape(v) for k, v in HIDDEN.findall(body)}
            if "csrf" in fields:
                return fields
        raise AssertionError(f"no decision form on {page_url}:\n{text[-2000:]}")

    def session_csrf(self, page_url: str) -> str:
        """The session's form token from any form of a signed-in page (the
        sign-out bar has it even where there is no decision form)."""
        text = self.page(page_url)
        m = ANY_CSRF.search(text)
        assert m, f"no csrf on {page_url} (not signed in?):\n{text[:1500]}"
        return m.group(1)

    def post(self, url: str, data: dict[str, str], origin: Any = SAME_ORIGIN,
             headers: dict[str, str] | None = None) -> httpx.Response:
        """POSTs a form as a browser does (origin=None: no Origin header)."""
        return self.http.post(url, data=data, headers={**self._headers(url, origin),
                                                       **(headers or {})})

    def decide(self, page_url: str, decision: str, reason: str = "",
               **fields: str) -> httpx.Response:
        """Opens the page, fills its decision form and presses approve or deny.
        Extra fields (``**{"except": "id1\\nid2"}``) go with the form."""
        data = {**self.form(page_url), "decision": decision, "reason": reason, **fields}
        return self.post(page_url, data)

    @staticmethod
    def _headers(url: str, origin: Any) -> dict[str, str]:
        if origin is SAME_ORIGIN:
            return {"Origin": origin_of(url)}
        return {} if origin is None else {"Origin": str(origin)}


# ---- the links an operator hands out ---------------------------------------

def link(system: System, approval_id: str, approver: str) -> dict[str, Any]:
    """The slot of `approver` from ``countersign approval links`` (a fresh
    one-time sign-in link in ``url``, for whoever holds the slot now)."""
    links = system.links(str(approval_id))
    for x in links:
        if x["approver"] == approver:
            return x
    raise AssertionError(f"no slot of {approver} in {links}")


def batch_link(system: System, batch_id: str, approver: str,
               agent: str = "bot1") -> dict[str, Any]:
    """The same from ``countersign batch links AGENT BATCH_ID``."""
    links = system.batch_links(batch_id, agent)
    for x in links:
        if x["approver"] == approver:
            return x
    raise AssertionError(f"no batch slot of {approver} in {links}")


def _expected(r: httpx.Response, expect: int | None) -> httpx.Response:
    assert expect is None or r.status_code == expect, (r.status_code, r.text[:1000])
    return r


def vote(system: System, approval_id: str, approver: str, decision: str, reason: str = "", *,
         expect: int | None = None, **fields: str) -> httpx.Response:
    """Whoever holds `approver`'s slot signs in with a fresh link and decides on
    the approval's page; with `expect`, asserts the answer's status."""
    with Approver() as person:
        page = person.sign_in(link(system, approval_id, approver)["url"])
        assert urlsplit(page).path.startswith("/status/"), page
        return _expected(person.decide(page, decision, reason, **fields), expect)


def batch_vote(system: System, batch_id: str, approver: str, decision: str, reason: str = "", *,
               agent: str = "bot1", expect: int | None = None, **fields: str) -> httpx.Response:
    """The same on a batch page (``**{"except": "id1\\nid2"}`` lists the ids to deny)."""
    with Approver() as person:
        page = person.sign_in(batch_link(system, batch_id, approver, agent)["url"])
        assert urlsplit(page).path.startswith("/batch/"), page
        return _expected(person.decide(page, decision, reason, **fields), expect)
