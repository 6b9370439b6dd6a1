// The console's pages. Each draws itself into `main` from the admin API; buttons a role may not use
// are not drawn (the API refuses them anyway).

import { api, can, h, notify, state, usd } from "./app.js";
import { stackedBars } from "./chart.js";

const when = (secs) => (secs ? new Date(secs * 1000).toISOString().replace("T", " ").slice(0, 16) : "");
const whenMs = (ms) => new Date(ms).toISOString().replace("T", " ").slice(0, 19);

function table(head, rows, empty) {
  if (rows.length === 0) return h("p", { class: "muted" }, empty);
  return h("div", { class: "scroll" }, h("table", {}, h("thead", {}, h("tr", {}, head.map((c) => h("th", {}, c)))), h("tbody", {}, rows)));
}

function field(label, input) {
  return h("label", { class: "field" }, h("span", {}, label), input);
}

function card(title, ...body) {
  return h("section", { class: "card" }, h("h2", {}, title), ...body);
}

/** Runs an action, reports its outcome, and redraws the page. */
async function act(what, fn, redraw) {
  try {
    const result = await fn();
    notify(what, "ok");
    if (redraw) await redraw();
    return result;
  } catch (e) {
    notify(e.message, "error");
    return null;
  }
}

function limitsOf(form) {
  const v = (name) => form.elements[name]?.value.trim();
  const out = {};
  if (v("budget")) out.budget = v("budget");
  if (v("rpm")) out.rpm = Number(v("rpm"));
  if (v("tpm")) out.tpm = Number(v("tpm"));
  return out;
}

async function usage(main) {
  const controls = h("form", { class: "controls", id: "usage-controls" },
    field("Group by", h("select", { name: "by" }, h("option", { value: "team" }, "team"), h("option", { value: "model" }, "model"))),
    field("Period", h("select", { name: "days" }, h("option", { value: "1" }, "24 hours"), h("option", { value: "7", selected: true }, "7 days"), h("option", { value: "30" }, "30 days"))));
  const tiles = h("div", { class: "tiles" });
  const spend = h("div", { class: "chart-box", id: "spend-chart" });
  const requests = h("div", { class: "chart-box", id: "requests-chart" });
  main.replaceChildren(h("h1", {}, "Usage"), controls, tiles, card("Spend", spend), card("Requests", requests));
  const draw = async () => {
    const by = controls.elements.by.value;
    const days = Number(controls.elements.days.value);
    const bucket = days <= 1 ? "hour" : "day";
    const data = await api("GET", `/admin/usage/series?by=${by}&days=${days}&bucket=${bucket}`);
    const sum = (f) => data.points.reduce((a, p) => a + p[f], 0);
    tiles.replaceChildren(
      h("div", { class: "tile" }, h("span", {}, "Spend"), h("strong", { id: "total-spend" }, usd(sum("cost")))),
      h("div", { class: "tile" }, h("span", {}, "Requests"), h("strong", {}, sum("requests"))),
      h("div", { class: "tile" }, h("span", {}, "Tokens"), h("strong", {}, sum("prompt_tokens") + sum("completion_tokens"))));
    stackedBars(spend, { ...data, field: "cost", format: usd, title: `Spend by ${by}` });
    stackedBars(requests, { ...data, field: "requests", format: (v) => String(Math.round(v)), title: `Requests by ${by}` });
  };
  controls.addEventListener("change", draw);
  await draw();
}

function keyForm(teams, redraw) {
  const own = state.session.team;
  const teamInput = own
    ? h("input", { name: "team", value: own, readonly: true })
    : h("select", { name: "team" }, h("option", { value: "" }, "(no team)"), teams.map((t) => h("option", { value: t.name }, t.name)));
  const form = h("form", { class: "inline-form", id: "create-key" },
    field("Name", h("input", { name: "name", required: true, maxlength: 128, autocomplete: "off" })),
    field("Team", teamInput),
    field("Budget", h("input", { name: "budget", placeholder: "5/day" })),
    field("RPM", h("input", { name: "rpm", type: "number", min: 1 })),
    field("TPM", h("input", { name: "tpm", type: "number", min: 1 })),
    field("Models", h("input", { name: "models", placeholder: "local/*, openrouter/*" })),
    field("Expires", h("input", { name: "expires", placeholder: "30d" })),
    h("label", { class: "check" }, h("input", { type: "checkbox", name: "local_only" }), "local only"),
    h("button", { type: "submit" }, "Create key"));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = form.elements;
    const body = { name: f.name.value.trim(), ...limitsOf(form), local_only: f.local_only.checked };
    if (f.team.value) body.team = f.team.value;
    if (f.expires.value.trim()) body.expires = f.expires.value.trim();
    const models = f.models.value.split(",").map((m) => m.trim()).filter(Boolean);
    if (models.length) body.models = models;
    const issued = await act(`Key ${body.name} created`, () => api("POST", "/admin/keys", body), redraw);
    if (issued) showSecret(issued);
  });
  return form;
}

/** A new key is shown once: here, until dismissed. */
function showSecret(issued) {
  const box = document.getElementById("secret");
  const code = h("code", { id: "new-key" }, issued.key);
  box.replaceChildren(h("p", {}, `The key for ${issued.name}, shown only now:`), code,
    h("div", { class: "row" },
      h("button", { type: "button", onclick: () => navigator.clipboard?.writeText(issued.key) }, "Copy"),
      h("button", { type: "button", class: "secondary", onclick: () => { box.replaceChildren(); box.hidden = true; } }, "Done")));
  box.hidden = false;
}

function limitsEditor(path, current, redraw) {
  const form = h("form", { class: "inline-form small" },
    h("input", { name: "budget", placeholder: "budget", value: current.budget || "" }),
    h("input", { name: "rpm", type: "number", min: 1, placeholder: "rpm", value: current.rpm ?? "" }),
    h("input", { name: "tpm", type: "number", min: 1, placeholder: "tpm", value: current.tpm ?? "" }),
    h("button", { type: "submit" }, "Save"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    act("Limits saved", () => api("POST", path, limitsOf(form)), redraw);
  });
  return form;
}

async function keys(main) {
  const redraw = () => keys(main);
  const [list, teams] = await Promise.all([api("GET", "/admin/keys"), api("GET", "/admin/teams")]);
  const rows = list.map((k) => {
    const live = k.status === "active";
    const actions = can("write") && live ? h("div", { class: "row" },
      h("button", { type: "button", class: "secondary", onclick: () => act(`Key ${k.name} rotated`, async () => showSecret(await api("POST", `/admin/keys/${k.id}/rotate`, {})), redraw) }, "Rotate"),
      h("button", { type: "button", class: "secondary", onclick: (e) => e.target.closest("tr").nextSibling.toggleAttribute("hidden") }, "Limits"),
      h("button", { type: "button", class: "danger", "data-revoke": k.name, onclick: () => confirm(`Revoke ${k.name}? Requests with it fail at once.`) && act(`Key ${k.name} revoked`, () => api("POST", `/admin/keys/${k.id}/revoke`, {}), redraw) }, "Revoke")) : "";
    return [
      h("tr", { "data-key": k.name },
        h("td", {}, k.name), h("td", {}, h("code", {}, k.prefix)), h("td", {}, k.team || "—"),
        h("td", {}, k.budget || "—"), h("td", { class: "num" }, k.spend), h("td", {}, [k.rpm, k.tpm].map((v) => v ?? "—").join(" / ")),
        h("td", {}, k.models.join(", ") || "all"), h("td", {}, h("span", { class: `badge ${k.status}` }, k.status)), h("td", {}, actions)),
      h("tr", { class: "editor", hidden: true }, h("td", { colspan: 9 }, limitsEditor(`/admin/keys/${k.id}/limits`, k, redraw))),
    ];
  });
  main.replaceChildren(h("h1", {}, "Keys"), h("div", { id: "secret", class: "secret", hidden: true }),
    can("write") ? card("New key", keyForm(teams, redraw)) : "",
    card("Virtual keys", table(["Name", "Prefix", "Team", "Budget", "Spend", "RPM / TPM", "Models", "Status", ""], rows.flat(), "No keys yet.")));
}

async function teams(main) {
  const redraw = () => teams(main);
  const [list, providers] = await Promise.all([api("GET", "/admin/teams"), api("GET", "/admin/providers")]);
  const names = providers.health.providers.map((p) => p.name);
  const rows = list.map((t) => [
    h("tr", { "data-team": t.name }, h("td", {}, t.name), h("td", {}, t.budget || "—"), h("td", { class: "num" }, t.spend),
      h("td", {}, [t.rpm, t.tpm].map((v) => v ?? "—").join(" / ")),
      h("td", {}, providers.team_keys.filter((k) => k.team === t.name).map((k) => h("span", { class: "badge" }, `${k.provider} ✓`))),
      h("td", {}, can("admin") ? h("button", { type: "button", class: "secondary", onclick: (e) => e.target.closest("tr").nextSibling.toggleAttribute("hidden") }, "Limits") : "")),
    h("tr", { class: "editor", hidden: true }, h("td", { colspan: 6 }, limitsEditor(`/admin/teams/${encodeURIComponent(t.name)}/limits`, t, redraw))),
  ]);
  const create = h("form", { class: "inline-form" },
    field("Name", h("input", { name: "name", required: true, maxlength: 128 })),
    field("Budget", h("input", { name: "budget", placeholder: "200/month" })),
    field("RPM", h("input", { name: "rpm", type: "number", min: 1 })),
    field("TPM", h("input", { name: "tpm", type: "number", min: 1 })),
    h("button", { type: "submit" }, "Create team"));
  create.addEventListener("submit", (e) => {
    e.preventDefault();
    act("Team created", () => api("POST", "/admin/teams", { name: create.elements.name.value.trim(), ...limitsOf(create) }), redraw);
  });
  const byo = h("form", { class: "inline-form", id: "team-key" },
    field("Team", h("select", { name: "team" }, list.map((t) => h("option", { value: t.name }, t.name)))),
    field("Provider", h("select", { name: "provider" }, names.map((n) => h("option", { value: n }, n)))),
    field("Key", h("input", { name: "key", type: "password", autocomplete: "off", required: true })),
    h("button", { type: "submit" }, "Store key"),
    h("button", { type: "button", class: "danger", onclick: () => act("Key removed", () => api("DELETE", `/admin/teams/${encodeURIComponent(byo.elements.team.value)}/provider-keys/${encodeURIComponent(byo.elements.provider.value)}`), redraw) }, "Remove key"));
  byo.addEventListener("submit", (e) => {
    e.preventDefault();
    const f = byo.elements;
    const key = f.key.value;
    f.key.value = "";
    act("Key stored (it is never shown again)", () => api("PUT", `/admin/teams/${encodeURIComponent(f.team.value)}/provider-keys/${encodeURIComponent(f.provider.value)}`, { key }), redraw);
  });
  main.replaceChildren(h("h1", {}, "Teams"),
    can("admin") ? card("New team", create) : "",
    card("Teams", table(["Team", "Budget", "Spend", "RPM / TPM", "Own provider keys", ""], rows.flat(), "No teams yet.")),
    can("admin") && list.length ? card("A team's own provider key", h("p", { class: "muted" }, "Sealed at rest and used for that team's requests; never shown back."), byo) : "");
}

async function providers(main) {
  const data = await api("GET", "/admin/providers");
  const cards = data.health.providers.map((p) => h("section", { class: `card provider ${p.state}` },
    h("h2", {}, p.name, " ", h("span", { class: `badge ${p.state}` }, p.state)),
    h("dl", {}, h("dt", {}, "Usable"), h("dd", {}, p.usable ? "yes" : "no"), h("dt", {}, "Failures in a row"), h("dd", {}, p.consecutive_failures),
      h("dt", {}, "Health checks"), h("dd", {}, p.health_check ? `on, last ${p.last_check || "not yet"}` : "off"),
      p.last_error ? [h("dt", {}, "Last error"), h("dd", { class: "error" }, p.last_error)] : "")));
  main.replaceChildren(h("h1", {}, "Providers ", h("span", { class: `badge ${data.health.status}` }, data.health.status)), h("div", { class: "grid" }, cards));
}

async function requests(main) {
  const list = await api("GET", "/admin/requests?limit=100");
  const rows = list.map(({ seq, request: r }) => h("tr", {},
    h("td", {}, whenMs(r.ts_ms)), h("td", {}, h("code", {}, r.key_prefix || "—")), h("td", {}, r.endpoint), h("td", {}, r.model_requested),
    h("td", {}, r.provider ? `${r.provider}/${r.model_used}` : "—"), h("td", {}, h("span", { class: `badge s${String(r.status)[0]}` }, r.status)),
    h("td", { class: "num" }, `${r.prompt_tokens} / ${r.completion_tokens}`), h("td", { class: "num" }, usd(r.cost_nanos / 1e9)),
    h("td", { class: "num" }, `${(r.latency_us / 1000).toFixed(0)} ms`), h("td", {}, r.policy.map((p) => `${p.rule}:${p.action}`).join(", ")),
    h("td", { class: "muted" }, seq)));
  main.replaceChildren(h("h1", {}, "Recent requests"), h("p", { class: "muted" }, "Metadata from the audit log: never prompts or answers."),
    table(["Time (UTC)", "Key", "Endpoint", "Asked for", "Answered by", "Status", "Tokens in / out", "Cost", "Latency", "Policy", "Seq"], rows, "No requests recorded yet."));
}

function verification(v) {
  if (!v) return h("p", { class: "muted", id: "verify-result" }, "Not verified since the gateway started.");
  return h("div", { id: "verify-result", class: v.ok ? "ok-box" : "error-box" },
    h("strong", {}, v.ok ? "Verified" : "BROKEN"), " ", v.summary, h("p", { class: "muted" }, `${when(v.at)} UTC by ${v.by}`));
}

async function audit(main) {
  const data = await api("GET", "/admin/audit");
  const result = verification(data.last_verification);
  const button = h("button", { type: "button", id: "verify-now", onclick: async () => {
    button.disabled = true;
    const v = await act("Audit log verified", () => api("POST", "/admin/audit/verify"));
    button.disabled = false;
    if (v) result.replaceWith(verification(v));
  } }, "Verify now");
  const actions = data.admin_actions.map(({ seq, action: a }) => h("tr", {},
    h("td", {}, whenMs(a.ts_ms)), h("td", {}, a.actor), h("td", {}, a.action), h("td", {}, h("code", {}, a.target)), h("td", { class: "muted" }, seq)));
  main.replaceChildren(h("h1", {}, "Audit log"),
    card("Verification", result, button, h("p", { class: "muted" }, `Checkpoint key ${data.public_key.slice(0, 16)}…, ${data.committed} records written this run, ${data.checkpoints} checkpoints, ${data.dropped} dropped.`)),
    state.session.team ? "" : card("Recent admin actions", table(["Time (UTC)", "Who", "Action", "Target", "Seq"], actions, "None yet.")));
}

export const pages = { usage, keys, teams, providers, requests, audit };
