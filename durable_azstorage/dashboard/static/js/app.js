// The page's router: every view has a stable URL under /dashboard/ (deep links), in-app links
// use the History API, and each view may return a cleanup function (timers for auto-refresh).

import { get } from "./api.js";
import { renderEntities, renderEntity } from "./entities.js";
import { renderInstance } from "./instance.js";
import { renderInstances } from "./instances.js";
import { renderOverview } from "./overview.js";
import { h, toast } from "./util.js";

const BASE = "/dashboard";
const routes = [
  [/^\/?$/, "overview", () => renderOverview],
  [/^\/overview\/?$/, "overview", () => renderOverview],
  [/^\/instances\/?$/, "instances", () => renderInstances],
  [/^\/instances\/(.+)$/, "instances", () => renderInstance],
  [/^\/entities\/?$/, "entities", () => renderEntities],
  [/^\/entities\/([^/]+)\/(.+)$/, "entities", () => renderEntity],
];

let cleanup = null;
let shown = null; // path + query of the view on screen (a #fragment alone does not re-render)

export function navigate(href, { replace = false } = {}) {
  if (replace) history.replaceState(null, "", href);
  else history.pushState(null, "", href);
  route();
}

async function route() {
  const url = new URL(window.location.href);
  if (url.hash && shown === url.pathname + url.search) return; // an in-page anchor (#poison)
  shown = url.pathname + url.search;
  if (cleanup) cleanup();
  cleanup = null;
  const path = url.pathname.startsWith(BASE) ? url.pathname.slice(BASE.length) : url.pathname;
  const main = document.getElementById("main");
  for (const [pattern, section, view] of routes) {
    const match = path.match(pattern);
    if (!match) continue;
    for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.section === section);
    const args = match.slice(1).map(decodeURIComponent);
    main.replaceChildren();
    try {
      cleanup = (await view()(main, args, url.searchParams)) || null;
    } catch (err) {
      main.replaceChildren(h("div", { class: "error-box" }, err.message));
    }
    return;
  }
  main.replaceChildren(h("div", { class: "error-box" }, `No page at ${url.pathname}.`));
}

document.addEventListener("click", (event) => {
  const a = event.target.closest("a[data-nav]");
  if (!a || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
  event.preventDefault();
  navigate(a.getAttribute("href"));
});
window.addEventListener("popstate", route);

async function start() {
  try {
    const hub = await get(`${BASE}/api/hub`);
    document.getElementById("hub-name").textContent = hub.taskHub;
    document.title = `${hub.taskHub} — durable-azstorage dashboard`;
  } catch (err) {
    toast(err.message, "error");
  }
  route();
}

start();
