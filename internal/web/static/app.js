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
