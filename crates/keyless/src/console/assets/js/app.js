// The console's entry point: takes the launch secret, then routes #/page?params to a page
// module. A page renders into <main>; any error it throws is shown as the API's message.

import { takeSecret, session } from "./api.js";
import { h, fill, errorBox } from "./dom.js";
import { overview } from "./overview.js";
import { identities } from "./identities.js";
import { credentials } from "./credentials.js";
import { roles } from "./roles.js";
import { vaults, secrets } from "./vaults.js";
import { signins, explanation } from "./signins.js";

const PAGES = { overview, identities, credentials, roles, vaults, secrets, signins, explanation };
/** Pages that belong under a nav entry. */
const NAV = { credentials: "identities", secrets: "vaults", explanation: "signins" };

let who = null;

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [name, query] = raw.split("?");
  return { name: name || "overview", params: new URLSearchParams(query ?? "") };
}

async function render() {
  const main = document.getElementById("main");
  const { name, params } = parseHash();
  const page = PAGES[name];
  const navName = NAV[name] ?? name;
  for (const a of document.querySelectorAll("nav a[data-page]")) {
    if (a.dataset.page === navName) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (!page) {
    fill(main, h("h1", { text: "Not found" }), h("p", {}, "No page ", h("code", { text: name }), ". ", h("a", { href: "#/overview" }, "Go to the overview.")));
    return;
  }
  fill(main, h("p.muted", { text: "Loading…" }));
  try {
    if (!who) {
      who = await session();
      fill(document.getElementById("who"), `${who.clientId} · subscription ${who.subscriptionId}`);
    }
    const ctx = { who, params, rerender: render };
    const content = await page(ctx);
    // A newer navigation may have started while this page loaded.
    if (parseHash().name !== name) return;
    fill(main, content);
    const heading = main.querySelector("h1");
    if (heading) {
      heading.tabIndex = -1;
      document.title = `${heading.textContent} · Keyless console`;
    }
  } catch (e) {
    fill(main, h("h1", { text: "Something went wrong" }), errorBox(e),
      e && e.status === 401 ? h("p", { text: "The secret is kept in this browser tab only: a new tab, or a console started again, needs the URL it printed." }) : null);
  }
}

takeSecret();
window.addEventListener("hashchange", () => {
  // A message about the page being left does not belong on the next one.
  fill(document.getElementById("status"));
  // The launch URL pasted into an open console tab: take its secret, ask again who we are.
  if (location.hash.length > 1 && !location.hash.startsWith("#/")) {
    takeSecret();
    who = null;
  }
  render().then(() => document.querySelector("main h1")?.focus());
});
render();
