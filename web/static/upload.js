// kb — the upload page: send each chosen file on its own (each within the size limit), then follow each
// upload's progress until its reports are added and searchable. Without this file the form still works.
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  var box = document.getElementById("upload-status");
  if (!form || !box || !window.fetch || !window.FormData) return;
  var token = form.querySelector('input[name="csrf_token"]').value;
  var maxBytes = parseInt(form.getAttribute("data-max-bytes"), 10) || 0;
  var STATES = { queued: "排队中 queued", adding: "正在加入 adding", building: "正在重建索引 building the index",
                 done: "完成 done", failed: "未加入 nothing added" };

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text) e.textContent = text;
    return e;
  }

  function show(row, st) {
    row.querySelector(".state").textContent = STATES[st.state] || st.state;
    row.setAttribute("data-state", st.state);
    var detail = row.querySelector(".detail");
    detail.textContent = "";
    if (st.message) detail.appendChild(el("p", "", st.message));
    (st.added || []).forEach(function (a) {
      var link = el("a", "", a.source);
      link.href = "/doc/" + encodeURIComponent(a.doc_id);
      var li = el("li", "added");
      li.appendChild(link);
      detail.appendChild(li);
    });
    (st.errors || []).forEach(function (e) { detail.appendChild(el("li", "error", e)); });
    if (st.error) detail.appendChild(el("li", "error", st.error.message));
  }

  function poll(row, url) {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (st) {
        show(row, st);
        if (!st.done && !st.error) window.setTimeout(function () { poll(row, url); }, 700);
      })
      .catch(function () { window.setTimeout(function () { poll(row, url); }, 2000); });
  }

  function send(file) {
    var row = el("div", "upload-row");
    row.appendChild(el("h3", "", file.name));
    row.appendChild(el("span", "state", "上传中 uploading"));
    row.appendChild(el("ul", "detail"));
    box.appendChild(row);
    if (maxBytes && file.size > maxBytes) {
      show(row, { state: "failed", error: { message: file.name + ": larger than the " + (maxBytes / 1048576) + " MB limit" } });
      return;
    }
    var data = new FormData();
    data.append("files", file, file.name);
    fetch(form.action, { method: "POST", body: data, credentials: "same-origin",
                         headers: { Accept: "application/json", "X-CSRF-Token": token } })
      .then(function (r) { return r.json(); })
      .then(function (st) {
        if (st.error) { show(row, { state: "failed", error: st.error }); return; }
        show(row, st);
        poll(row, st.status_url);
      })
      .catch(function (err) { show(row, { state: "failed", error: { message: String(err) } }); });
  }

  form.addEventListener("submit", function (ev) {
    var input = form.querySelector('input[type="file"]');
    if (!input.files || !input.files.length) return;
    ev.preventDefault();
    box.textContent = "";
    Array.prototype.forEach.call(input.files, send);
    form.reset();
  });
})();
