// kb — small progressive enhancements; every page works without this file.
(function () {
  "use strict";

  // "/" focuses the search box (unless typing somewhere already).
  document.addEventListener("keydown", function (ev) {
    if (ev.key !== "/" || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    var t = ev.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable)) return;
    var box = document.querySelector('.searchform input[type="search"]');
    if (box) { ev.preventDefault(); box.focus(); box.select(); }
  });

  // Document view: bring the chosen passage to the middle of the screen.
  var mark = document.querySelector("mark.passage");
  if (mark) {
    var center = function () { mark.scrollIntoView({ block: "center" }); };
    if (document.readyState === "complete") center();
    else window.addEventListener("load", function () { window.setTimeout(center, 0); });
  }

  // Search results: "more from this locality" expands the card in place with that locality's passages.
  document.addEventListener("click", function (ev) {
    var link = ev.target.closest && ev.target.closest("a[data-expand]");
    if (!link || ev.button !== 0 || ev.ctrlKey || ev.metaKey || ev.shiftKey) return;
    var card = link.closest("section.card");
    if (!card || !window.fetch || !window.DOMParser) return;
    ev.preventDefault();
    link.setAttribute("aria-busy", "true");
    fetch(link.href, { headers: { Accept: "text/html" }, credentials: "same-origin" })
      .then(function (resp) {
        if (!resp.ok) throw new Error("HTTP " + resp.status);
        return resp.text();
      })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.querySelector("section.card.loc .passages");
        var list = card.querySelector(".passages");
        if (!fresh || !list) throw new Error("no passages");
        list.replaceWith(document.importNode(fresh, true));
        var done = document.createElement("span");
        done.className = "more muted";
        done.textContent = "已展开 expanded";
        link.replaceWith(done);
      })
      .catch(function () {
        window.location.href = link.href; // fall back to the filtered page
      });
  });
})();
