/* The Early Help chat widget. No build step, no dependencies.
 * Everything the server says is put on the page as text (textContent), never as HTML. */
(function () {
  "use strict";

  var csrf = document.querySelector('meta[name="csrf-token"]').getAttribute("content");
  var log = document.getElementById("log");
  var form = document.getElementById("composer");
  var input = document.getElementById("message");
  var typing = document.getElementById("typing");
  var errorBanner = document.getElementById("error");
  var privacy = document.getElementById("privacy");
  var starters = document.getElementById("starters");
  var exitButton = document.getElementById("quick-exit");
  var exitUrl = exitButton.getAttribute("data-exit-url") || "https://www.bbc.co.uk/weather";
  var deleteButton = document.getElementById("delete-chat");
  var deleteConfirm = document.getElementById("delete-confirm");
  var chatStatus = document.getElementById("chat-status");
  var busy = false;
  var lastEscape = 0;

  /* Return visits, without an id: one flag in this browser says it has used the assistant before. The
   * chat sends only yes or no (whether the flag was there when this chat began); the Leave and Delete
   * buttons remove the flag. Storage may be switched off: then nothing is sent. */
  var USED_BEFORE = "eh_used_before";
  var THIS_CHAT = "eh_chat_returning";

  function store(kind) {
    try { return kind === "local" ? window.localStorage : window.sessionStorage; } catch (e) { return null; }
  }

  function chatReturning() {
    var local = store("local");
    var tab = store("session");
    if (!local || !tab) return null;
    try {
      var known = tab.getItem(THIS_CHAT);
      if (known === "1" || known === "0") return known === "1";
      var value = local.getItem(USED_BEFORE) === "1";
      tab.setItem(THIS_CHAT, value ? "1" : "0");
      return value;
    } catch (e) {
      return null;
    }
  }

  function rememberUse() {
    try { var local = store("local"); if (local) local.setItem(USED_BEFORE, "1"); } catch (e) { /* not kept */ }
  }

  function forgetUse(newChat) {
    try {
      var local = store("local");
      var tab = store("session");
      if (local) local.removeItem(USED_BEFORE);
      if (tab) { if (newChat) tab.setItem(THIS_CHAT, "0"); else tab.removeItem(THIS_CHAT); }
    } catch (e) { /* nothing kept to remove */ }
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function safeUrl(value) {
    try {
      var url = new URL(String(value), window.location.href);
      return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
    } catch (e) {
      return null;
    }
  }

  /* A tel: link for a number as written ("0800 1111", "+44 (0)1452 427224"), or null: the same rule as
   * the server's bot.replies.tel_link. */
  function telHref(phone) {
    var digits = String(phone).replace("(0)", "").replace(/[^0-9+]/g, "");
    digits = digits.charAt(0) + digits.slice(1).replace(/\+/g, "");
    return digits.replace("+", "").length >= 3 ? "tel:" + digits : null;
  }

  /* The card's own tel: link when it is one (digits, an optional leading +), else one made from the number. */
  function cardTel(given, phone) {
    return typeof given === "string" && /^tel:\+?[0-9]{3,20}$/.test(given) ? given : telHref(phone);
  }

  function mailHref(address) {
    var text = String(address).trim();
    return /^[A-Za-z0-9._+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$/.test(text) ? "mailto:" + text : null;
  }

  /* A link with the given text; a web address opens in a new tab without telling the site where from. */
  function link(text, href) {
    var a = el("a", null, text);
    a.href = href;
    if (/^https?:/.test(href)) {
      a.rel = "noopener noreferrer";
      a.target = "_blank";
    }
    return a;
  }

  /* Text with web addresses made into links; everything else stays plain text. */
  function appendText(parent, text) {
    var pattern = /https?:\/\/[^\s<>"')]+/g;
    var last = 0;
    var match;
    text = String(text);
    while ((match = pattern.exec(text)) !== null) {
      var href = match[0].replace(/[.,;:]+$/, "");
      parent.appendChild(document.createTextNode(text.slice(last, match.index)));
      var safe = safeUrl(href);
      if (safe) {
        parent.appendChild(link(href, safe));
      } else {
        parent.appendChild(document.createTextNode(href));
      }
      last = match.index + href.length;
    }
    parent.appendChild(document.createTextNode(text.slice(last)));
  }

  function scrollToEnd() {
    var reduce = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    log.lastElementChild && log.lastElementChild.scrollIntoView({ block: "end", behavior: reduce ? "auto" : "smooth" });
  }

  function addUserMessage(text) {
    var item = el("div", "message from-user");
    item.appendChild(el("span", "visually-hidden", "You said: "));
    var body = el("p", "bubble");
    body.textContent = text;
    item.appendChild(body);
    log.appendChild(item);
    scrollToEnd();
  }

  /* One "label: value" pair of a card; kind "tel", "url" or "email" makes the value a link when it is a
   * safe one (href given for "tel" when the server made it), plain text otherwise. */
  function field(list, label, value, kind, href) {
    if (value === undefined || value === null || value === "") return;
    var dd = el("dd");
    var target = null;
    if (kind === "tel") target = cardTel(href, value);
    else if (kind === "url") target = safeUrl(value);
    else if (kind === "email") target = mailHref(value);
    if (target) dd.appendChild(link(String(value), target));
    else dd.textContent = String(value);
    list.appendChild(el("dt", null, label));
    list.appendChild(dd);
  }

  function whoFor(service) {
    var parts = [];
    if (Array.isArray(service.ages) && service.ages.length === 2) {
      parts.push("Ages " + service.ages[0] + " to " + service.ages[1]);
    }
    var who = service.who_for || service.for_whom;
    if (who) parts.push(String(who).charAt(0).toUpperCase() + String(who).slice(1));
    if (service.area === "national") parts.push("Anywhere in the UK");
    return parts.join(". ");
  }

  var cardCount = 0;

  function textLines(value) {
    return (Array.isArray(value) ? value : [value]).filter(function (line) {
      return (typeof line === "string" && line.trim()) || typeof line === "number";
    });
  }

  /* One service: its name as a heading, what it does, who it is for, how to reach it (phone as a tel:
   * link, website, email), hours and cost, then the lines that say what to check before relying on it. */
  function serviceCard(service) {
    var id = "service-" + (++cardCount);
    var card = el("article", "card service-card" + (service.complete === false ? " incomplete" : ""));
    card.setAttribute("aria-labelledby", id);
    var name = el("h3", null, service.name || "Service");
    name.id = id;
    card.appendChild(name);
    if (service.organization && service.organization !== service.name) card.appendChild(el("p", "org", service.organization));
    if (service.weak_match === true) {
      card.appendChild(el("p", "match-note", "Not a close match for what you told me: check that it fits."));
    }
    var list = el("dl");
    field(list, "What it does", service.description);
    field(list, "Who it is for", whoFor(service));
    field(list, "Phone", service.phone, "tel", service.tel);
    field(list, "Website", service.url, "url");
    field(list, "Email", service.email, "email");
    field(list, "Opening hours", service.hours);
    field(list, "Cost", service.cost);
    card.appendChild(list);
    var cautions = textLines(service.caution);
    if (cautions.length) {
      var box = el("div", "caution");
      box.appendChild(el("p", "caution-title", "Please check"));
      box.firstChild.id = id + "-check";
      var ul = el("ul");
      ul.setAttribute("aria-labelledby", id + "-check");
      cautions.forEach(function (line) { ul.appendChild(el("li", null, line)); });
      box.appendChild(ul);
      card.appendChild(box);
    }
    return card;
  }

  function serviceCards(custom) {
    var wrap = el("ul", "cards");
    wrap.setAttribute("aria-label", "Services");
    (Array.isArray(custom.services) ? custom.services : []).forEach(function (service) {
      if (!service || typeof service !== "object") return;
      var item = el("li");
      item.appendChild(serviceCard(service));
      wrap.appendChild(item);
    });
    return wrap;
  }

  function pathwayCard(custom) {
    var doc = custom.pathway || {};
    var card = el("article", "card pathway-card");
    card.appendChild(el("h3", null, (doc.area_name || "Your area") + ": level " + (doc.level || "?") + (doc.label ? " (" + doc.label + ")" : "")));
    if (doc.summary) card.appendChild(el("p", null, doc.summary));
    if (Array.isArray(doc.steps) && doc.steps.length) {
      var ol = el("ol");
      doc.steps.forEach(function (step) { ol.appendChild(el("li", null, step)); });
      card.appendChild(ol);
    }
    var list = el("dl");
    field(list, "Form or assessment", doc.form);
    field(list, "Who decides", doc.decides);
    field(list, "Consent", doc.consent);
    (Array.isArray(doc.timescales) ? doc.timescales : []).forEach(function (t) {
      if (t && t.what) field(list, "Timescale: " + t.what, t.within);
    });
    card.appendChild(list);
    var contacts = (Array.isArray(doc.contacts) ? doc.contacts : []).filter(function (c) { return c && typeof c === "object"; });
    if (contacts.length) {
      var id = "pathway-" + (++cardCount);
      var heading = el("h4", null, "Who to contact");
      heading.id = id;
      card.appendChild(heading);
      var ul = el("ul", "pathway-contacts");
      ul.setAttribute("aria-labelledby", id);
      contacts.forEach(function (c) { ul.appendChild(pathwayContact(c)); });
      card.appendChild(ul);
    }
    var source = el("dl");
    field(source, "Source", doc.source);
    card.appendChild(source);
    card.appendChild(el("p", "danger", "If a child is in immediate danger, call 999."));
    return card;
  }

  /* One contact of a pathway: who it is and what for, every way to reach it, its hours, and whether it
   * was open when this answer was given. */
  function pathwayContact(c) {
    var li = el("li");
    li.appendChild(el("strong", null, c.name || "Contact"));
    if (c.role) li.appendChild(document.createTextNode(": " + c.role));
    var list = el("dl");
    field(list, "Phone", c.phone, "tel", c.tel);
    field(list, "Email", c.email, "email");
    field(list, "Website", c.url, "url");
    field(list, "Hours", c.hours);
    if (typeof c.answering_now === "boolean") field(list, "When I answered", c.answering_now ? "Open" : "Closed");
    field(list, "Note", c.phone_note);
    li.appendChild(list);
    return li;
  }

  /* The safeguarding interrupt: 999 and who to call now, first and as links a phone can dial. */
  function safetyCard(custom) {
    var card = el("section", "card safety-card");
    card.setAttribute("role", "alert");
    card.appendChild(el("h3", null, custom.title || "If a child is in danger, call 999."));
    var call = el("a", "call-999", "Call 999");
    call.href = "tel:999";
    card.appendChild(call);
    var contacts = Array.isArray(custom.contacts) ? custom.contacts : [];
    if (contacts.length) {
      card.appendChild(el("p", null, custom.area_known ? "To talk to someone about a child at risk now:" : "To talk to someone about a child at risk now, call your council:"));
      var list = el("ul", "safety-contacts");
      contacts.forEach(function (c) {
        if (!c || typeof c !== "object") return;
        var li = el("li");
        li.appendChild(document.createTextNode((c.area_name ? c.area_name + ", " : "") + (c.name || "Children's services") + ": "));
        var href = c.phone ? telHref(c.phone) : null;
        if (href) {
          li.appendChild(link(String(c.phone), href));
        } else if (c.phone) {
          li.appendChild(document.createTextNode(String(c.phone)));
        }
        if (c.hours) li.appendChild(document.createTextNode(" (" + c.hours + ")"));
        list.appendChild(li);
      });
      card.appendChild(list);
    }
    return card;
  }

  function addBotMessage(message) {
    var item = el("div", "message from-bot");
    item.appendChild(el("span", "visually-hidden", "Assistant said: "));
    var custom = message.custom && typeof message.custom === "object" ? message.custom : null;
    var hasCards = custom && (custom.type === "service_cards" || custom.type === "pathway" || custom.type === "safety");
    if (typeof message.text === "string" && message.text && !hasCards) {
      var body = el("p", "bubble");
      appendText(body, message.text);
      item.appendChild(body);
    } else if (hasCards && typeof message.text === "string") {
      var heading = String(message.text).split("\n")[0];
      if (custom.type === "service_cards" && heading) item.appendChild(el("p", "bubble", heading));
    }
    if (custom && custom.type === "service_cards") item.appendChild(serviceCards(custom));
    if (custom && custom.type === "pathway") item.appendChild(pathwayCard(custom));
    if (custom && custom.type === "safety") {
      item.className += " safety";
      item.appendChild(safetyCard(custom));
    }
    if (Array.isArray(message.buttons) && message.buttons.length) {
      var group = el("div", "quick-replies");
      group.setAttribute("role", "group");
      group.setAttribute("aria-label", "Suggested answers");
      message.buttons.forEach(function (button) {
        if (!button || typeof button.title !== "string") return;
        var b = el("button", "quick-reply", button.title);
        b.type = "button";
        b.setAttribute("data-payload", typeof button.payload === "string" ? button.payload : button.title);
        b.setAttribute("data-title", button.title);
        group.appendChild(b);
      });
      item.appendChild(group);
    }
    if (item.childNodes.length > 1) log.appendChild(item);
  }

  function showError(text) {
    errorBanner.textContent = text;
    errorBanner.hidden = !text;
  }

  function setBusy(value) {
    busy = value;
    typing.hidden = !value;
    form.setAttribute("aria-busy", value ? "true" : "false");
  }

  function send(text, shown) {
    if (busy) return;
    text = String(text || "");
    if (!text.trim()) return;
    privacy.classList.add("seen");
    starters.hidden = true;
    addUserMessage(shown || text);
    showError("");
    chatStatus.textContent = "";
    setBusy(true);
    var id = (window.crypto && window.crypto.randomUUID) ? window.crypto.randomUUID() : String(Date.now()) + Math.random().toString(16).slice(2);
    var body = { message: text, message_id: id.replace(/[^A-Za-z0-9_-]/g, "").slice(0, 64) };
    var returning = chatReturning();
    if (returning !== null) body.returning = returning;
    fetch("/api/chat", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf, "Accept": "application/json" },
      body: JSON.stringify(body)
    }).then(function (response) {
      if (response.ok) rememberUse();
      return response.json().catch(function () { return {}; }).then(function (doc) {
        if (!response.ok) throw new Error(doc && doc.error ? doc.error : "Something went wrong.");
        return doc;
      });
    }).then(function (doc) {
      (Array.isArray(doc.messages) ? doc.messages : []).forEach(addBotMessage);
      scrollToEnd();
    }).catch(function (err) {
      showError((err && err.message ? err.message : "Something went wrong.") + " If a child is in danger, call 999.");
    }).then(function () {
      setBusy(false);
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value;
    if (!text.trim() || busy) return;
    input.value = "";
    send(text);
    input.focus();
  });

  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event("submit", { cancelable: true }));
    }
  });

  document.addEventListener("click", function (event) {
    var target = event.target;
    if (!(target instanceof Element)) return;
    var button = target.closest(".quick-reply");
    if (!button || busy) return;
    var group = button.closest(".quick-replies");
    if (group) {
      Array.prototype.forEach.call(group.querySelectorAll("button"), function (b) { b.disabled = true; });
      button.classList.add("chosen");
    }
    send(button.getAttribute("data-payload"), button.getAttribute("data-title"));
    input.focus();
  });

  function clearChat() {
    while (log.firstChild) log.removeChild(log.firstChild);
    privacy.classList.remove("seen");
    starters.hidden = false;
    showError("");
    input.value = "";
  }

  function closeConfirm() {
    deleteConfirm.hidden = true;
    deleteButton.setAttribute("aria-expanded", "false");
  }

  deleteButton.addEventListener("click", function () {
    deleteConfirm.hidden = false;
    deleteButton.setAttribute("aria-expanded", "true");
    document.getElementById("delete-yes").focus();
  });

  document.getElementById("delete-no").addEventListener("click", function () {
    closeConfirm();
    deleteButton.focus();
  });

  document.getElementById("delete-yes").addEventListener("click", function () {
    var yes = this;
    yes.disabled = true;
    fetch("/api/chat/delete", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf, "Accept": "application/json" },
      body: "{}"
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (doc) {
        if (!response.ok) throw new Error(doc && doc.error ? doc.error : "The chat could not be deleted.");
        return doc;
      });
    }).then(function (doc) {
      if (doc.csrf) csrf = doc.csrf;
      forgetUse(true);
      clearChat();
      closeConfirm();
      chatStatus.textContent = doc.message || "Your chat has been deleted.";
      input.focus();
    }).catch(function (err) {
      closeConfirm();
      showError((err && err.message ? err.message : "The chat could not be deleted.") + " Please try again. If a child is in danger, call 999.");
    }).then(function () {
      yes.disabled = false;
    });
  });

  document.getElementById("start-again").addEventListener("click", function () {
    fetch("/api/chat/reset", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: "{}"
    }).then(function (response) { return response.json(); }).then(function (doc) {
      if (doc && doc.csrf) csrf = doc.csrf;
      clearChat();
      chatStatus.textContent = "";
      input.focus();
    }).catch(function () {
      showError("Could not start again. Reload the page. If a child is in danger, call 999.");
    });
  });

  function quickExit() {
    forgetUse(false);
    try {
      while (log.firstChild) log.removeChild(log.firstChild);
      input.value = "";
      fetch("/api/chat/reset", {
        method: "POST", keepalive: true, credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf }, body: "{}"
      }).catch(function () { /* leaving matters more */ });
    } catch (e) { /* leaving matters more */ }
    window.location.replace(exitUrl);
  }

  exitButton.addEventListener("click", quickExit);
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    var now = Date.now();
    if (now - lastEscape < 1000) {
      quickExit();
    }
    lastEscape = now;
  });
})();
