/* The duty inbox: renders the escalations as text (textContent only) and refreshes on server-sent events. */
(function () {
  "use strict";

  var csrf = document.querySelector('meta[name="csrf-token"]').getAttribute("content");
  var list = document.getElementById("escalations");
  var empty = document.getElementById("empty");
  var announce = document.getElementById("announce");
  var liveState = document.getElementById("live-state");
  var known = null;
  var loading = false;
  var again = false;

  var CATEGORY_WORDS = {};
  /* a data protection officer can start a request about an escalation's conversation from its card */
  var isDpo = !!document.querySelector('.duty-nav a[href="/duty/privacy"]:not(.hidden)');

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function words(value) {
    return String(value || "").replace(/_/g, " ");
  }

  function age(seconds) {
    seconds = Number(seconds) || 0;
    if (seconds < 60) return "just now";
    var minutes = Math.floor(seconds / 60);
    if (minutes < 60) return minutes + (minutes === 1 ? " minute ago" : " minutes ago");
    var hours = Math.floor(minutes / 60);
    if (hours < 48) return hours + (hours === 1 ? " hour ago" : " hours ago");
    return Math.floor(hours / 24) + " days ago";
  }

  function when(iso) {
    try { return new Date(iso).toLocaleString("en-GB"); } catch (e) { return String(iso); }
  }

  function row(dl, label, value) {
    dl.appendChild(el("dt", null, label));
    dl.appendChild(el("dd", null, value));
  }

  function hidden(name, value) {
    var input = document.createElement("input");
    input.type = "hidden";
    input.name = name;
    input.value = value;
    return input;
  }

  function actionForm(e, action, label, className) {
    var form = el("form", className || "");
    form.method = "post";
    form.action = "/duty/escalations/" + encodeURIComponent(e.id) + "/" + action;
    form.appendChild(hidden("csrf", csrf));
    if (action === "note") {
      var id = "note-" + e.id;
      var lab = el("label", null, "Add a note");
      lab.htmlFor = id;
      var area = document.createElement("textarea");
      area.id = id;
      area.name = "note";
      area.rows = 2;
      area.maxLength = 4000;
      area.required = true;
      form.appendChild(lab);
      form.appendChild(area);
    }
    var button = el("button", action === "close" ? "secondary" : "primary", label);
    button.type = "submit";
    button.setAttribute("aria-describedby", "title-" + e.id);
    form.appendChild(button);
    return form;
  }

  function contactText(contact) {
    if (!contact) return "None given";
    if (typeof contact !== "object") return String(contact);
    return Object.keys(contact).map(function (k) { return words(k) + ": " + contact[k]; }).join("; ");
  }

  function item(e) {
    var li = el("li", "escalation " + e.urgency + " " + e.status);
    li.id = "esc-" + e.id;
    var title = el("h2");
    title.id = "title-" + e.id;
    title.appendChild(el("span", "badge " + e.urgency, e.urgency === "immediate" ? "Immediate danger" : "Urgent"));
    title.appendChild(el("span", "badge " + e.status, e.status === "acknowledged" ? "Acknowledged" : "Open"));
    title.appendChild(document.createTextNode(e.area_name + ", " + age(e.age_seconds)));
    li.appendChild(title);
    li.appendChild(el("p", "excerpt", e.excerpt));
    var dl = el("dl");
    row(dl, "Concerns", (e.categories || []).map(words).join(", ") || "Not classified");
    row(dl, "Contact given", contactText(e.contact));
    row(dl, "Received", when(e.created_at));
    row(dl, "Reference", e.id);
    if (e.acknowledged_by) row(dl, "Acknowledged by", e.acknowledged_by + " at " + when(e.acknowledged_at));
    li.appendChild(dl);
    var details = el("details");
    details.appendChild(el("summary", null, "History (" + (e.history || []).length + ")"));
    var ol = el("ol", "history");
    (e.history || []).forEach(function (h) {
      ol.appendChild(el("li", null, when(h.at) + ": " + words(h.action) + " by " + h.actor + (h.note ? ": " + h.note : "")));
    });
    details.appendChild(ol);
    li.appendChild(details);
    if (e.status === "open") li.appendChild(actionForm(e, "ack", "Acknowledge"));
    li.appendChild(actionForm(e, "note", "Add note", "note-form"));
    li.appendChild(actionForm(e, "close", "Close"));
    if (isDpo) {
      var request = el("p", "dpo-link");
      var link = el("a", null, "Data protection request about this conversation");
      link.href = "/duty/privacy?ref=" + encodeURIComponent(e.id);
      link.setAttribute("aria-describedby", "title-" + e.id);
      request.appendChild(link);
      li.appendChild(request);
    }
    return li;
  }

  function render(items) {
    var drafts = {};
    Array.prototype.forEach.call(list.querySelectorAll("textarea"), function (t) { if (t.value) drafts[t.id] = t.value; });
    var active = document.activeElement && list.contains(document.activeElement) ? document.activeElement.id : null;
    while (list.firstChild) list.removeChild(list.firstChild);
    items.forEach(function (e) { list.appendChild(item(e)); });
    Object.keys(drafts).forEach(function (id) { var t = document.getElementById(id); if (t) t.value = drafts[id]; });
    if (active && document.getElementById(active)) document.getElementById(active).focus();
    empty.hidden = items.length > 0;
    var ids = items.map(function (e) { return e.id; });
    if (known !== null) {
      var fresh = ids.filter(function (id) { return known.indexOf(id) < 0; }).length;
      if (fresh) announce.textContent = fresh === 1 ? "A new escalation has arrived." : fresh + " new escalations have arrived.";
    }
    known = ids;
  }

  function refresh() {
    if (loading) { again = true; return; }
    loading = true;
    fetch("/duty/escalations", { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) {
        if (response.status === 401) { window.location.assign("/duty/login"); throw new Error("logged out"); }
        return response.json();
      })
      .then(function (doc) { render(Array.isArray(doc.escalations) ? doc.escalations : []); })
      .catch(function () { /* the next event tries again */ })
      .then(function () {
        loading = false;
        if (again) { again = false; refresh(); }
      });
  }

  list.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement)) return;
    event.preventDefault();
    var button = form.querySelector("button");
    if (button) button.disabled = true;
    fetch(form.action, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Accept": "application/json" },
      body: new URLSearchParams(new FormData(form))
    }).then(function (response) {
      return response.json().then(function (doc) { return { ok: response.ok, doc: doc }; });
    }).then(function (result) {
      announce.textContent = result.ok ? result.doc.message : (result.doc.error || "That did not work.");
      if (result.ok) {
        var note = form.querySelector("textarea");
        if (note) note.value = "";
      }
      refresh();
    }).catch(function () {
      announce.textContent = "That did not work. Reload the page and try again.";
    }).then(function () {
      if (button) button.disabled = false;
    });
  });

  function connect() {
    if (!window.EventSource) {
      liveState.textContent = "Live updates are not available in this browser; reload to see new escalations.";
      setInterval(refresh, 10000);
      return;
    }
    var source = new EventSource("/duty/events");
    source.addEventListener("changed", function () {
      liveState.textContent = "Live: new escalations appear here by themselves.";
      refresh();
    });
    source.addEventListener("logout", function () {
      source.close();
      window.location.assign("/duty/login");
    });
    source.onerror = function () {
      liveState.textContent = "Reconnecting for live updates…";
    };
  }

  refresh();
  connect();
})();
