/* Flywheel's in-product kit (docs/in-product.md): one ES module, no dependencies, no build step.

     <script type="module" src="https://flywheel.example/kit/v1/kit.js"></script>
     <flywheel-kit token="<jwt>" token-url="/flywheel-token"></flywheel-kit>

   A product asks for a feature when the person reaches for it: `await kit.requestFeature("github-sync")`
   resolves { entitled }; when the organization lacks it, the kit shows what grants it.
   It reports what the person does with `kit.track("card_created")`: queued with an id of the
   kit's own and sent in batches (a second after the first, or when the page is hidden or left,
   with fetch keepalive: sendBeacon cannot carry the session's Authorization header).

   The element exchanges the product's token for a session, asks Flywheel for the one message
   due now, shows it in its shadow root and reports what the person did with it. Flywheel's
   address comes from this module's own URL, so the same file works on every Flywheel.

   Why it is written the way it is:
   - Strict CSP: no inline script, no eval, no style attributes, no innerHTML. The styles are a
     constructed stylesheet (adoptedStyleSheets), which style-src does not govern; the DOM is
     built with createElement and textContent, so no message text is ever parsed as HTML.
   - The product's CSS cannot reach inside the shadow root; `:host { all: initial !important }`
     also undoes what the page puts on the element itself (an !important rule of the shadow
     tree beats the page's, even an !important one). Only the --flywheel-* properties, which
     `all` leaves alone, come in: that is the theming interface.
   - Accessibility: a polite live region announces a new message without taking the focus away
     from the product; Esc or the close button dismiss it; after an action the focus moves to
     its outcome, and back to where it came from when the card closes. */

const API = new URL("./", import.meta.url);
const TRACK_NAME = /^[a-z][a-z0-9_]{0,63}$/;
const FLUSH_MS = 1000; // a batch leaves this long after its first event, or when the page is hidden
const BATCH = 50;
const FEATURE_NAME = /^[a-z0-9][a-z0-9_.-]{0,63}$/;
const EYEBROW = { prompt: "Billing", survey: "Feedback", invite_nudge: "Your team", try_product: "More products", feature_offer: "Your plan" };

const CSS = `
:host{all:initial!important;display:block!important;
--fw-a:var(--flywheel-accent,#3446c4);--fw-at:var(--flywheel-accent-text,#fff);
--fw-s:var(--flywheel-surface,#fff);--fw-t:var(--flywheel-text,#1b2230);
--fw-r:var(--flywheel-radius,12px);
--fw-f:var(--flywheel-font,system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif);
--fw-m:color-mix(in srgb,var(--fw-t) 76%,var(--fw-s));
--fw-l:color-mix(in srgb,var(--fw-t) 14%,var(--fw-s));
--fw-c:color-mix(in srgb,var(--fw-t) 58%,var(--fw-s));
--fw-sev:var(--fw-a)}
*,*::before,*::after{box-sizing:border-box}
[hidden]{display:none!important}
.sr{position:absolute!important;width:1px;height:1px;margin:-1px;padding:0;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap;border:0}
.card{position:fixed;z-index:2147483000;right:20px;bottom:20px;width:min(384px,calc(100vw - 40px));
max-height:calc(100vh - 40px);max-height:calc(100dvh - 40px);overflow:auto;overscroll-behavior:contain;
margin:0;padding:16px 20px 20px;background:var(--fw-s);color:var(--fw-t);
font:400 15px/1.5 var(--fw-f);text-align:start;border:1px solid var(--fw-l);border-top:4px solid var(--fw-sev);
border-radius:var(--fw-r);box-shadow:0 16px 40px rgba(16,24,40,.18),0 2px 6px rgba(16,24,40,.08);
animation:fw-in .2s ease-out}
.critical{--fw-sev:#c0271b}.warning{--fw-sev:#c66a00}
@keyframes fw-in{from{opacity:0;transform:translateY(12px)}}
@media (max-width:480px){.card{left:8px;right:8px;bottom:8px;width:auto;max-height:calc(100vh - 16px);max-height:calc(100dvh - 16px);padding:14px 16px 16px}}
:host([placement=inline]) .card{position:relative;inset:auto;z-index:auto;width:auto;max-height:none;box-shadow:none;animation:none}
@media (prefers-reduced-motion:reduce){.card{animation:none}}
.top{display:flex;align-items:center;justify-content:space-between;gap:8px;margin:-4px -8px 4px 0}
.eyebrow{margin:0;font-size:12px;font-weight:600;letter-spacing:.06em;text-transform:uppercase;color:var(--fw-m)}
h2{margin:0 0 6px;font-size:17px;line-height:1.3;font-weight:650;color:inherit}
p{margin:0 0 8px}
.body{color:var(--fw-m)}
.note{font-size:13px;color:var(--fw-m)}
.price{margin:8px 0 0;font-weight:600}
a{color:var(--fw-a)}
button,input,select,textarea{font:inherit;color:inherit;margin:0}
.button{display:inline-flex;align-items:center;justify-content:center;gap:6px;min-height:40px;padding:8px 16px;
border:1px solid transparent;border-radius:calc(var(--fw-r) * .6);background:none;font-size:14px;font-weight:600;
line-height:1.2;text-align:center;text-decoration:none;cursor:pointer}
.primary{background:var(--fw-a);border-color:var(--fw-a);color:var(--fw-at)}
.primary:hover{background:color-mix(in srgb,var(--fw-a) 86%,#000)}
.secondary{color:var(--fw-t);border-color:var(--fw-c)}
.secondary:hover{background:var(--fw-l)}
[aria-disabled=true]{opacity:.6;cursor:progress}
:focus-visible{outline:2px solid var(--fw-a);outline-offset:2px}
.close{flex:none;display:grid;place-items:center;width:36px;height:36px;padding:0;border:0;border-radius:50%;
background:none;color:var(--fw-m);cursor:pointer}
.close:hover{background:var(--fw-l);color:var(--fw-t)}
.close svg{width:18px;height:18px}
.actions{display:flex;flex-wrap:wrap;gap:8px;margin-top:12px}
.outcome{margin:12px 0 0;padding:10px 12px;border-radius:calc(var(--fw-r) * .6);background:var(--fw-l)}
.outcome:empty{display:none}
.outcome:focus{outline:none}
.outcome:focus-visible{outline:2px solid var(--fw-a)}
.error{background:color-mix(in srgb,#c0271b 12%,var(--fw-s))}
.done{background:color-mix(in srgb,#16a34a 14%,var(--fw-s))}
.outcome+p{margin-top:10px}
.field-error{margin:4px 0 0;font-size:13px;font-weight:600;color:color-mix(in srgb,#c0271b 60%,var(--fw-t))}
.field-error:empty{display:none}
[aria-invalid=true]{border-color:#c0271b}
ul{list-style:none;margin:12px 0 0;padding:0;display:grid;gap:8px}
li{display:flex;flex-wrap:wrap;align-items:center;justify-content:space-between;gap:8px 12px;padding:12px;
border:1px solid var(--fw-l);border-radius:calc(var(--fw-r) * .6)}
li div{flex:1 1 160px;min-width:0}
li strong{display:block;font-weight:650}
li span{display:block;font-size:13px;color:var(--fw-m)}
fieldset{margin:8px 0 0;padding:0;border:0;min-width:0}
legend{padding:0;margin-bottom:8px;font-weight:600}
.scale{display:grid;grid-template-columns:repeat(11,minmax(0,1fr));gap:4px}
.scale label{display:flex;align-items:center;justify-content:center;min-height:38px;border:1px solid var(--fw-c);
border-radius:6px;font-size:14px;font-weight:600;cursor:pointer;user-select:none}
.scale label:hover{background:var(--fw-l)}
.scale input:checked+label{background:var(--fw-a);border-color:var(--fw-a);color:var(--fw-at)}
.scale input:focus-visible+label{outline:2px solid var(--fw-a);outline-offset:2px}
.ends{display:flex;justify-content:space-between;gap:8px;margin-top:4px;font-size:12px;color:var(--fw-m)}
.field{display:block;margin:12px 0 4px;font-size:14px;font-weight:600}
.field span{font-weight:400;color:var(--fw-m)}
select,textarea{width:100%;padding:8px 10px;border:1px solid var(--fw-c);border-radius:calc(var(--fw-r) * .5);
background:var(--fw-s);font-size:15px;font-weight:400}
select{min-height:40px}
textarea{resize:vertical;min-height:72px}
.check{display:flex;align-items:flex-start;gap:8px;margin-top:12px;font-size:14px;cursor:pointer}
.check input{width:18px;height:18px;margin-top:2px;accent-color:var(--fw-a)}
`;

let sheet = null;

function adoptStyles(root) {
  if ("adoptedStyleSheets" in root && "replaceSync" in CSSStyleSheet.prototype) {
    if (!sheet) {
      sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
    }
    root.adoptedStyleSheets = [sheet];
  } else {
    // Browsers without constructed stylesheets: a <style> element, which style-src governs.
    const style = document.createElement("style");
    style.textContent = CSS;
    root.append(style);
  }
}

// An element with attributes (on* are listeners) and children (strings become text).
function h(tag, attributes, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : value);
  }
  element.append(...children.flat().filter((child) => child !== null && child !== undefined && child !== false));
  return element;
}

function closeIcon() {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 20 20");
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", "M5 5l10 10M15 5L5 15");
  path.setAttribute("stroke", "currentColor");
  path.setAttribute("stroke-width", "2");
  path.setAttribute("stroke-linecap", "round");
  svg.append(path);
  return svg;
}

function withReturn(url) {
  const target = new URL(url, API);
  target.searchParams.set("return_to", location.href);
  return target.href;
}

// Whom a token names (its claims, unverified: only to notice a change of person).
function personOf(token) {
  try {
    const claims = JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
    return `${claims.iss} ${claims.org} ${claims.sub}`;
  } catch {
    return token;
  }
}

// An event's id: 128 random bits, base64url (crypto.randomUUID needs a secure context).
function eventId() {
  return btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))))
    .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function names(list) {
  return new Intl.ListFormat("en", { type: "conjunction" }).format(list);
}

class KitError extends Error {
  constructor(message, status = 0, url = "") {
    super(message);
    this.status = status;
    this.url = url; // where to go about it, when Flywheel says (a spent trial: buying)
  }
}

class FlywheelKit extends HTMLElement {
  static observedAttributes = ["token"];

  #root;
  #live;
  #session = null; // a promise of the session credential
  #spentToken = null; // the token attribute's value once exchanged (a token is good once)
  #started = false;
  #context = null; // the exchange's answer: product, user, organization
  #message = null;
  #card = null;
  #outcome = null; // once an action has closed the message: "clicked" | "answered"
  #busy = false;
  #returnFocus = null;
  #queue = []; // tracked events not yet sent: { id, name, at, resolve, reject }
  #timer = 0;

  constructor() {
    super();
    this.#root = this.attachShadow({ mode: "open" });
    adoptStyles(this.#root);
    this.#live = h("div", { class: "sr", role: "status", "aria-live": "polite" });
    this.#root.append(this.#live);
    this.addEventListener("focusin", (event) => {
      const from = event.relatedTarget;
      if (from && from !== this && !this.contains(from)) this.#returnFocus = from;
    });
    this.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && this.#card && (this.#outcome || this.#message.dismissible)) {
        event.stopPropagation();
        this.#dismiss();
      }
    });
    // What was tracked leaves before the page does (a hidden page may never come back).
    addEventListener("pagehide", () => this.#flush());
    document.addEventListener("visibilitychange", () => document.visibilityState === "hidden" && this.#flush());
  }

  disconnectedCallback() {
    this.#flush();
  }

  connectedCallback() {
    // A page cached for everyone (a CDN) carries no token: token-url alone is enough.
    if (!this.#started && (this.getAttribute("token") || this.getAttribute("token-url"))) this.#start();
  }

  attributeChangedCallback(name, previous, value) {
    if (!value || value === previous) return;
    if (!this.#started) {
      if (this.isConnected) this.#start();
      return;
    }
    // A new token gets a new session; a token for someone else (a single-page app after a
    // sign-in) also gets that person's message instead of the one on screen. What the previous
    // person did leaves first, on their session.
    this.#flush(personOf(previous || ""));
    this.#session = null;
    if (previous !== null && personOf(previous) !== personOf(value)) {
      this.#card?.remove();
      this.#card = this.#message = this.#outcome = null;
      this.#live.textContent = "";
      this.#start();
    }
  }

  /** Report what the person did (e.g. "card_created", "first_success"), batched to POST
   * /kit/v1/activity; resolves once Flywheel has it (rejects with why it refused it). */
  track(name) {
    if (typeof name !== "string" || !TRACK_NAME.test(name)) {
      return Promise.reject(new TypeError("track(name): the name is 1 to 64 of a-z, 0-9 and _, starting with a letter."));
    }
    return new Promise((resolve, reject) => {
      this.#queue.push({ id: eventId(), name, at: Date.now(), resolve, reject });
      if (this.#queue.length >= BATCH) this.#flush();
      else this.#timer ||= setTimeout(() => this.#flush(), FLUSH_MS);
    });
  }

  /** The person reached for a feature of the product: resolves { entitled }. When the
   * organization lacks it, the kit shows what grants it (its price, how to get it). */
  async requestFeature(name) {
    if (typeof name !== "string" || !FEATURE_NAME.test(name)) {
      throw new TypeError("requestFeature(name): the feature's code, such as github-sync.");
    }
    const { entitled, message } = await this.#call("feature", { feature: name });
    if (!entitled && message) {
      this.#card?.remove();
      this.#outcome = null;
      this.#show(message);
    }
    return { entitled: !!entitled };
  }

  async #start() {
    this.#started = true;
    try {
      const { message } = await this.#call("message");
      if (message && !this.#card) this.#show(message);
    } catch (error) {
      this.#fail(error);
    }
  }

  // The network -------------------------------------------------------------------------------

  async #token(fresh) {
    const token = this.getAttribute("token");
    if (!fresh && token && token !== this.#spentToken) {
      this.#spentToken = token;
      return token;
    }
    const url = this.getAttribute("token-url");
    if (!url) throw new KitError("Your Flywheel session has expired: reload the page.", 401);
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    const body = await response.json().catch(() => ({}));
    if (!response.ok || typeof body.token !== "string") {
      throw new KitError(`The token-url ${url} answered ${response.status} without a token.`, response.status);
    }
    return body.token;
  }

  async #exchange() {
    let answer;
    try {
      answer = await this.#request("session", { token: await this.#token(false) });
    } catch (error) {
      // A page restored from the browser's cache carries a token already used or expired.
      if (error.status !== 401 || !this.getAttribute("token-url")) throw error;
      answer = await this.#request("session", { token: await this.#token(true) });
    }
    this.#context = answer;
    return answer.session;
  }

  #credential() {
    if (!this.#session) {
      const pending = this.#exchange();
      this.#session = pending;
      pending.catch(() => {
        if (this.#session === pending) this.#session = null; // the next call tries again
      });
    }
    return this.#session;
  }

  async #request(path, body, credential, keepalive = false) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (credential) headers.Authorization = `Bearer ${credential}`;
    let response;
    try {
      response = await fetch(new URL(path, API), {
        method: body === undefined ? "GET" : "POST",
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        mode: "cors",
        credentials: "omit",
        keepalive,
      });
    } catch {
      throw new KitError(`Flywheel (${API.origin}) could not be reached.`);
    }
    const answer = response.status === 204 ? {} : await response.json().catch(() => ({}));
    if (!response.ok) throw new KitError(answer.detail || `Flywheel answered ${response.status}.`, response.status, answer.url);
    return answer;
  }

  // A call with the session credential; an expired credential is renewed once.
  async #call(path, body, keepalive = false) {
    const credential = await this.#credential();
    try {
      return await this.#request(path, body, credential, keepalive);
    } catch (error) {
      if (error.status !== 401) throw error;
      if (this.#session && (await this.#session.catch(() => null)) === credential) this.#session = null;
      return this.#request(path, body, await this.#credential(), keepalive);
    }
  }

  // Send what was tracked, on the session of the person it was tracked for (`person`).
  #flush(person = personOf(this.getAttribute("token") || "")) {
    clearTimeout(this.#timer);
    this.#timer = 0;
    if (!this.#queue.length) return;
    // The previous person's events (the token just changed) go on their session only, never on
    // one exchanged with the new person's token; without one they are refused, not misfiled.
    const session =
      person === personOf(this.getAttribute("token") || "")
        ? this.#credential()
        : this.#session || Promise.reject(new KitError("The person who did this signed out before it could be sent.", 401));
    while (this.#queue.length) this.#send(this.#queue.splice(0, BATCH), session, person);
  }

  async #send(batch, session, person) {
    // Each event's age on this page's clock: Flywheel dates it by its own (a wrong clock moves nothing).
    const body = () => ({ events: batch.map(({ id, name, at }) => ({ id, name, age_ms: Math.max(0, Date.now() - at) })) });
    try {
      let answer;
      try {
        const credential = await session;
        answer = await this.#request("activity", body(), credential, true);
      } catch (error) {
        // An expired credential is renewed once, and only while the same person is signed in.
        if (error.status !== 401 || person !== personOf(this.getAttribute("token") || "")) throw error;
        if (this.#session === session) this.#session = null;
        const credential = await this.#credential();
        answer = await this.#request("activity", body(), credential, true);
      }
      const refused = new Map((answer.errors || []).map((row) => [row.index, row.error]));
      batch.forEach((event, index) => (refused.has(index) ? event.reject(new KitError(refused.get(index), 400)) : event.resolve()));
    } catch (error) {
      for (const event of batch) event.reject(error);
    }
  }

  #report(action) {
    const message = this.#message;
    return this.#call("message/events", { message: message.id, action }, true).catch((error) => this.#fail(error));
  }

  #emit(name, detail) {
    this.dispatchEvent(new CustomEvent(`flywheel:${name}`, { detail, bubbles: true, composed: true }));
  }

  #fail(error) {
    console.warn(`<flywheel-kit>: ${error.message}`);
    this.#emit("error", { detail: error.message, status: error.status || 0 });
  }

  // The message -------------------------------------------------------------------------------

  #show(message) {
    this.#message = message;
    const titleId = "fw-title";
    const card = h(
      "section",
      { class: `card ${message.severity || "info"}`, "aria-labelledby": titleId, "data-message": message.id },
      h(
        "div",
        { class: "top" },
        h("p", { class: "eyebrow" }, EYEBROW[message.type] || ""),
        message.dismissible
          ? h("button", { type: "button", class: "close", "aria-label": "Dismiss", onclick: () => this.#dismiss() }, closeIcon())
          : null,
      ),
      h("h2", { id: titleId }, message.title),
      message.body ? h("p", { class: "body" }, message.body) : null,
      message.offer ? h("p", { class: "price" }, `${message.offer.name}: ${message.offer.price_text}`) : null,
    );
    const content = { survey: () => this.#survey(message), try_product: () => this.#products(message) }[message.type];
    card.append(...(content ? content() : this.#actions(message)));
    card.append(h("p", { class: "outcome", role: "status", tabindex: "-1" }));
    this.#card = card;
    this.#root.append(card);
    this.#live.textContent = `${EYEBROW[message.type] || "Message"}: ${message.title}`;
    this.#report("shown");
    this.#emit("shown", { id: message.id, type: message.type });
  }

  #actions(message) {
    const nodes = [];
    const actions = message.actions || [];
    const asks = actions.some((action) => action.kind === "ask_admins");
    if (asks && message.admins?.length) {
      const organization = this.#context?.organization?.name;
      nodes.push(h("p", { class: "note" }, `${organization ? `Admins of ${organization}` : "Your admins"}: ${names(message.admins)}`));
    }
    nodes.push(
      h(
        "div",
        { class: "actions" },
        actions.map((action, index) => {
          const look = `button ${index ? "secondary" : "primary"}`;
          if (action.kind === "ask_admins") {
            return h("button", { type: "button", class: look, onclick: (event) => this.#askAdmins(event.currentTarget) }, action.label);
          }
          if (action.kind === "trial") {
            return h("button", { type: "button", class: look, onclick: (event) => this.#addonTrial(event.currentTarget, action) }, action.label);
          }
          return action.url ? h("a", { class: look, href: withReturn(action.url), onclick: (event) => this.#follow(event) }, action.label) : null;
        }),
      ),
    );
    return nodes;
  }

  #products(message) {
    return [
      h(
        "ul",
        {},
        (message.products || []).map((product) =>
          h(
            "li",
            {},
            h("div", {}, h("strong", {}, product.name), product.tagline ? h("span", {}, product.tagline) : null),
            h("button", { type: "button", class: `button ${message.products.length > 1 ? "secondary" : "primary"}`, onclick: (event) => this.#trial(event.currentTarget, product) }, product.label),
          ),
        ),
      ),
    ];
  }

  #survey(message) {
    const survey = message.survey;
    const scale = h("div", { class: "scale" });
    for (let score = 0; score <= 10; score++) {
      const hint = { 0: " (not at all likely)", 10: " (extremely likely)" }[score];
      scale.append(
        h("input", { type: "radio", class: "sr", name: "score", id: `fw-score-${score}`, value: String(score) }),
        h("label", { for: `fw-score-${score}` }, String(score), hint ? h("span", { class: "sr" }, hint) : null),
      );
    }
    const roles = h("select", { id: "fw-role", name: "role", "aria-describedby": "fw-role-error", onchange: () => this.#fieldError(roles, "") },
      h("option", { value: "" }, "Choose your role"),
      (survey.roles || []).map((role) => h("option", { value: role.value }, role.label)),
    );
    const more = h("div", { hidden: true },
      h("label", { class: "field", for: "fw-role" }, "Your role"),
      roles,
      h("p", { class: "field-error", id: "fw-role-error", role: "alert" }),
      h("label", { class: "field", for: "fw-comment" }, "What is the main reason for your score? ", h("span", {}, "(optional)")),
      h("textarea", { id: "fw-comment", name: "comment", rows: "3", maxlength: "5000" }),
      h("label", { class: "check" }, h("input", { type: "checkbox", name: "may_contact" }), "You may contact me about my answer"),
      h("div", { class: "actions" }, h("button", { type: "submit", class: "button primary" }, "Send")),
    );
    const sameAsTitle = survey.question === message.title;
    const form = h("form", { novalidate: true, onsubmit: (event) => this.#answer(event, survey) },
      h("fieldset", {},
        h("legend", { class: sameAsTitle ? "sr" : null }, survey.question),
        scale,
        h("div", { class: "ends", "aria-hidden": "true" }, h("span", {}, "Not at all likely"), h("span", {}, "Extremely likely")),
      ),
      more,
    );
    form.addEventListener("change", (event) => {
      if (event.target.name === "score") more.hidden = false;
    });
    return [form];
  }

  // What the person does ----------------------------------------------------------------------

  #say(text, { error = false, done = false, focus = false } = {}) {
    if (!this.#card) return; // closed while Flywheel was answering
    const outcome = this.#card.querySelector(".outcome");
    outcome.textContent = text;
    outcome.classList.toggle("error", error);
    outcome.classList.toggle("done", done);
    if (focus) outcome.focus();
  }

  // Run `work` once at a time, the control showing that it is busy; its error is said.
  async #act(control, work) {
    if (this.#busy) return;
    this.#busy = true;
    control.setAttribute("aria-disabled", "true");
    this.#card.setAttribute("aria-busy", "true");
    try {
      await work();
    } catch (error) {
      this.#say(error.message, { error: true });
    } finally {
      this.#busy = false;
      control.removeAttribute("aria-disabled");
      this.#card?.removeAttribute("aria-busy");
    }
  }

  // The actions and form are replaced by what Flywheel answered; the card stays until closed.
  #finish(text, outcome) {
    if (!this.#card) return;
    this.#outcome = outcome;
    for (const node of this.#card.querySelectorAll(".actions, .note, ul, form")) node.remove();
    this.#say(text, { done: true, focus: true });
    if (!this.#message.dismissible) {
      this.#card.querySelector(".top").append(
        h("button", { type: "button", class: "close", "aria-label": "Close", onclick: () => this.#dismiss() }, closeIcon()),
      );
    }
  }

  async #follow(event) {
    const link = event.currentTarget;
    this.#outcome = "clicked";
    const report = this.#report("clicked");
    if (event.button || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return; // a new tab
    event.preventDefault();
    await Promise.race([report, new Promise((resolve) => setTimeout(resolve, 1000))]);
    this.#emit("closed", { id: this.#message.id, type: this.#message.type, reason: "clicked" });
    location.assign(link.href);
  }

  #askAdmins(button) {
    return this.#act(button, async () => {
      let text;
      try {
        text = (await this.#call("ask-admins", { message: this.#message.id })).detail;
      } catch (error) {
        if (error.status !== 429) throw error;
        text = error.message; // asked already today: they have the request
      }
      // Flywheel records the ask itself (kit_admins_asked) and closes the message.
      this.#finish(text, "clicked");
    });
  }

  #trial(button, product) {
    return this.#act(button, async () => {
      let answer;
      try {
        answer = await this.#call("trials", { product: product.code });
      } catch (error) {
        if (!error.url) throw error;
        // A trial already had: Flywheel says what buying costs, and the button becomes the way there.
        button.replaceWith(h("a", { class: "button primary", href: withReturn(error.url) }, `Buy ${product.name}`));
        this.#say(error.message, { focus: true });
        return;
      }
      // Flywheel records the trial itself (kit_trial_started) and closes the message.
      this.#finish(answer.detail, "clicked");
      if (answer.url && this.#card) {
        this.#card.append(h("p", {}, h("a", { href: withReturn(answer.url) }, `Open your ${product.name} workspace`)));
      }
    });
  }

  // An add-on's trial, from a denied feature's offer (POST /kit/v1/feature/trial).
  #addonTrial(button, action) {
    return this.#act(button, async () => {
      const feature = this.#message.id.split(":")[1];
      let answer;
      try {
        answer = await this.#call("feature/trial", { feature, addon: action.addon });
      } catch (error) {
        if (!error.url) throw error;
        // Flywheel's page does it (or says why not): the button becomes the way there.
        button.replaceWith(h("a", { class: "button secondary", href: withReturn(error.url) }, action.label));
        this.#say(error.message, { focus: true });
        return;
      }
      this.#report("clicked");
      this.#finish(answer.detail, "clicked");
    });
  }

  #fieldError(control, text) {
    this.#card.querySelector(`#${control.getAttribute("aria-describedby")}`).textContent = text;
    if (text) control.setAttribute("aria-invalid", "true");
    else control.removeAttribute("aria-invalid");
  }

  #answer(event, survey) {
    event.preventDefault();
    const form = event.currentTarget;
    const score = form.elements.score.value;
    const role = form.elements.role.value;
    if (score === "") {
      this.#say("Choose a score from 0 to 10.", { error: true });
      form.querySelector("input[name=score]").focus();
      return;
    }
    if (!role) {
      this.#fieldError(form.elements.role, "Choose your role: it tells the team whose experience this is.");
      form.elements.role.focus();
      return;
    }
    return this.#act(form.querySelector("[type=submit]"), async () => {
      const answer = await this.#call("survey/answer", {
        survey: survey.id,
        score: Number(score),
        role,
        comment: form.elements.comment.value.trim(),
        may_contact: form.elements.may_contact.checked,
      });
      this.#finish(answer.detail || "Thank you for your answer.", "answered");
    });
  }

  #dismiss() {
    const message = this.#message;
    // A survey's dismissal is feedback's too: Flywheel does both from the one event.
    if (!this.#outcome) this.#report("dismissed");
    const hadFocus = this.#root.activeElement !== null;
    this.#card.remove();
    this.#card = null;
    this.#live.textContent = "";
    this.#emit("closed", { id: message.id, type: message.type, reason: this.#outcome || "dismissed" });
    if (hadFocus && this.#returnFocus?.isConnected) this.#returnFocus.focus();
  }
}

if (!customElements.get("flywheel-kit")) customElements.define("flywheel-kit", FlywheelKit);

export { FlywheelKit };
