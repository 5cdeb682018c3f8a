// Building the page. Every piece of data goes in through textContent or an attribute:
// nothing the API returns is ever parsed as HTML.

/** h("tag.class", {attr: value, onclick: fn}, ...children) */
export function h(spec, attrs, ...children) {
  const [tag, ...classes] = spec.split(".");
  const el = document.createElement(tag);
  if (classes.length) el.className = classes.join(" ");
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = String(v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces the children of `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let uid = 0;
/** A unique id for label/input pairs. */
export function id(prefix) {
  uid += 1;
  return `${prefix}-${uid}`;
}

/** Announces a short message to screen readers and shows it briefly. */
export function status(message) {
  const el = document.getElementById("status");
  if (!el) return;
  el.textContent = message;
  clearTimeout(status.timer);
  status.timer = setTimeout(() => { el.textContent = ""; }, 4000);
}

/** The API's error, as the API worded it. */
export function errorBox(e) {
  const code = e && e.code ? e.code : "Error";
  const message = e && e.message ? e.message : String(e);
  return h("div.error", { role: "alert" }, h("span.code", { text: `${code}: ` }), message);
}

/** A value with a copy button. */
export function copyable(value, label) {
  const button = h("button.secondary.small", {
    type: "button",
    "aria-label": `Copy ${label}`,
    onclick: async () => {
      try {
        await navigator.clipboard.writeText(value);
        status(`${label} copied`);
      } catch {
        status(`Could not copy: select the ${label} and copy it by hand`);
      }
    },
  }, "Copy");
  return h("span.copy", {}, h("span.mono", { text: value }), button);
}

/** A table: `columns` are [header, row => cell]. */
export function table(caption, columns, rows, empty) {
  if (!rows.length) return h("p.muted", { text: empty ?? "Nothing here yet." });
  return h("div.table-wrap", {},
    h("table", {},
      h("caption.cap", { text: caption }),
      h("thead", {}, h("tr", {}, columns.map(([head]) => h("th", { scope: "col", text: head })))),
      h("tbody", {}, rows.map((r) => h("tr", {}, columns.map(([, cell]) => h("td", {}, cell(r))))))));
}

/** A labelled form field. `control` is an input/select/textarea element. */
export function field(label, control, hint) {
  const cid = control.id || id("f");
  control.id = cid;
  const problem = h("span.problem", { id: `${cid}-problem`, "aria-live": "polite" });
  const hintEl = hint ? h("span.hint", { id: `${cid}-hint`, text: hint }) : null;
  control.setAttribute("aria-describedby", [hintEl ? `${cid}-hint` : "", `${cid}-problem`].join(" ").trim());
  const wrap = h("div.field", {}, h("label", { for: cid, text: label }), control, hintEl, problem);
  wrap.problem = problem;
  return wrap;
}

/** Shows (or clears) a field's inline problem. */
export function setProblem(wrap, control, message) {
  wrap.problem.textContent = message ?? "";
  control.setAttribute("aria-invalid", message ? "true" : "false");
}

/** Asks before something destructive. */
export function confirmed(what) {
  return window.confirm(what);
}

/** A local date-time from an ISO string or Unix seconds. */
export function when(value) {
  if (value === undefined || value === null || value === "") return "";
  const d = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  return Number.isNaN(d.getTime()) ? String(value) : d.toLocaleString();
}
