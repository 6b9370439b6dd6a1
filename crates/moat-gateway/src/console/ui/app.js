// The moat console: login (admin key or single sign-on), the session, navigation, and the small
// helpers every page uses. It talks only to this gateway's own admin API; the key typed at login is
// exchanged for a session cookie and never kept by the page.

import { pages } from "./pages.js";

export const state = { session: null, config: { sso: false } };

/** Builds an element: h("td", {class: "num"}, "text", child...). Text is always text, never HTML. */
export function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v === true) node.setAttribute(k, "");
    else node.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** Calls the admin API with the session cookie, and the CSRF token on changes. */
export async function api(method, path, body) {
  const headers = { accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (method !== "GET" && state.session) headers["x-csrf-token"] = state.session.csrf;
  const resp = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let json = null;
  try {
    json = await resp.json();
  } catch (_) {
    json = null;
  }
  if (resp.status === 401 && state.session) {
    state.session = null;
    showLogin("Your session has ended. Sign in again.");
  }
  if (!resp.ok) throw new ApiError(resp.status, json?.error?.message || `HTTP ${resp.status}`);
  return json?.data;
}

export function can(what) {
  const role = state.session?.role;
  if (what === "write") return role === "admin" || role === "team_admin";
  if (what === "admin") return role === "admin";
  return Boolean(role);
}

/** A short message at the top of the page. */
export function notify(text, kind = "info") {
  const box = document.getElementById("notice");
  box.replaceChildren(h("span", {}, text), h("button", { class: "link", type: "button", "aria-label": "Dismiss", onclick: () => box.replaceChildren() }, "×"));
  box.className = `notice ${kind}`;
}

export function usd(v) {
  const n = Number(v) || 0;
  if (n === 0) return "$0";
  return n < 1 ? `$${Number(n.toPrecision(2))}` : `$${n.toFixed(2)}`;
}

function showLogin(message) {
  document.getElementById("app").hidden = true;
  document.getElementById("login").hidden = false;
  document.getElementById("login-message").textContent = message || "";
  document.getElementById("sso").hidden = !state.config.sso;
}

async function showApp() {
  document.getElementById("login").hidden = true;
  document.getElementById("app").hidden = false;
  const s = state.session;
  document.getElementById("who").textContent = `${s.actor} · ${s.role}${s.team ? ` (${s.team})` : ""}`;
  for (const a of document.querySelectorAll("[data-needs]")) a.hidden = !can(a.dataset.needs);
  await route();
}

async function route() {
  const name = (location.hash || "#usage").slice(1);
  const page = pages[name] ? name : "usage";
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.getAttribute("href") === `#${page}`);
  const main = document.getElementById("page");
  main.replaceChildren(h("p", { class: "muted" }, "Loading…"));
  try {
    await pages[page](main);
  } catch (e) {
    main.replaceChildren(h("p", { class: "error" }, e.message));
  }
}

async function loadSession() {
  try {
    const resp = await fetch("/ui/session", { credentials: "same-origin" });
    if (!resp.ok) return null;
    return (await resp.json()).data;
  } catch (_) {
    return null;
  }
}

async function login(event) {
  event.preventDefault();
  const field = document.getElementById("key");
  const resp = await fetch("/ui/login", {
    method: "POST",
    credentials: "same-origin",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ key: field.value }),
  });
  field.value = "";
  if (!resp.ok) {
    showLogin(resp.status === 401 ? "That key is not an admin key." : `Sign-in failed (HTTP ${resp.status}).`);
    return;
  }
  state.session = (await resp.json()).data;
  await showApp();
}

async function logout() {
  try {
    await api("POST", "/ui/logout");
  } finally {
    state.session = null;
    showLogin("Signed out.");
  }
}

async function start() {
  try {
    state.config = await (await fetch("/ui/config")).json();
  } catch (_) {
    state.config = { sso: false };
  }
  document.getElementById("login-form").addEventListener("submit", login);
  document.getElementById("logout").addEventListener("click", logout);
  window.addEventListener("hashchange", () => {
    document.getElementById("notice").replaceChildren();
    document.getElementById("notice").className = "";
    if (state.session) route();
  });
  state.session = await loadSession();
  if (state.session) await showApp();
  else showLogin("");
}

start();
