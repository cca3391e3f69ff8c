// Progressive enhancement only: every page works without this file.
// It stops a form from being sent twice by a double click.
"use strict";
document.documentElement.classList.add("js");
document.addEventListener("submit", function (event) {
  var form = event.target;
  if (form.dataset.sent === "1") {
    event.preventDefault();
    return;
  }
  form.dataset.sent = "1";
  // Re-enable when the page is shown again from the back/forward cache.
  window.addEventListener("pageshow", function () { form.dataset.sent = ""; }, { once: true });
});

// Favorite buttons in lists change in place: the form is sent in the
// background and replaced by the button the server renders for the new
// state, so the reader keeps their place in the list. Should
// anything go wrong (signed out, offline), the form is sent the plain way.
document.addEventListener("submit", function (event) {
  var form = event.target;
  if (event.defaultPrevented || !form.dataset.favorite || !window.fetch) {
    return;
  }
  event.preventDefault();
  var headers = { "X-Conduit-Fragment": form.dataset.favorite };
  fetch(form.action, {
    method: "POST",
    body: new URLSearchParams(new FormData(form)),
    headers: headers,
    credentials: "same-origin",
    redirect: "manual"
  }).then(function (res) {
    if (res.status !== 200) {
      throw new Error("status " + res.status);
    }
    return res.text();
  }).then(function (html) {
    var t = document.createElement("template");
    t.innerHTML = html.trim();
    var next = t.content.firstElementChild;
    if (!next || next.tagName !== "FORM") {
      throw new Error("unexpected answer");
    }
    form.replaceWith(next);
    var button = next.querySelector("button");
    if (button) {
      button.focus();
    }
  }).catch(function () {
    form.submit();
  });
});
