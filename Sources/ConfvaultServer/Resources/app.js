// Confvault's page script: uploading a backup file with progress, its preview, and Confirm or Cancel.
// Reading works without it; only the upload needs it (the archive goes as the raw request body).
"use strict";

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

function element(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, value);
  for (const child of children) node.append(child);
  return node;
}

function problemText(problem) {
  if (!problem) return "The server did not answer.";
  let text = problem.detail || problem.title || "Refused.";
  return text;
}

function keyText(key) {
  if (key.old === null || key.old === undefined) return `${key.path}: added ${key.new}`;
  if (key.new === null || key.new === undefined) return `${key.path}: removed ${key.old}`;
  return `${key.path}: ${key.old} -> ${key.new}`;
}

function renderPreview(outcome, form, reply, etag) {
  const preview = reply.preview;
  outcome.replaceChildren();
  const head = preview.head === null ? "no version yet" : "v" + preview.head;
  outcome.append(element("p", {}, `Checked: ${reply.fileCount} files. Against the current head (${head}), this would change:`));
  const list = element("ul", { class: "changes preview" });
  const marks = { added: "A", removed: "D", modified: "M", "mode-changed": "m" };
  for (const change of preview.files) {
    const item = element("li", { class: "change " + change.kind },
      element("span", { class: "mark" }, marks[change.kind] || "?"), " ", element("code", {}, change.path));
    if (change.keys && change.keys.length) {
      const keys = element("ul", { class: "keys" });
      for (const key of change.keys) keys.append(element("li", {}, element("code", {}, keyText(key))));
      item.append(keys);
    }
    list.append(item);
  }
  if (!preview.files.length) list.append(element("li", {}, "nothing: it is the current configuration already"));
  outcome.append(list);
  const confirm = element("button", { type: "button", class: "confirm" }, "Confirm");
  const cancel = element("button", { type: "button" }, "Cancel");
  outcome.append(confirm, " ", cancel);
  const base = `/api/v1/apps/${form.dataset.app}/environments/${form.dataset.environment}/uploads/${reply.id}`;
  cancel.addEventListener("click", async () => {
    try {
      const response = await fetch(base, { method: "DELETE", headers: { "X-CSRF-Token": csrfToken() } });
      outcome.replaceChildren(element("p", {}, response.ok ? "Cancelled; nothing was changed."
        : "Nothing was changed (the upload had expired already)."));
    } catch (error) {
      outcome.replaceChildren(element("p", {}, "Nothing was changed; the server could not be reached to drop the upload."));
    }
  });
  confirm.addEventListener("click", async () => {
    confirm.disabled = true;
    try {
      const response = await fetch(base + "/apply", {
        method: "POST",
        headers: { "If-Match": etag, "X-CSRF-Token": csrfToken(), "Idempotency-Key": reply.id },
      });
      const body = await response.json().catch(() => null);
      if (response.status === 201 || response.status === 200) {
        outcome.replaceChildren(element("p", { class: "flash" }, `Applied as v${body.version.number}.`));
        window.location.reload();
      } else {
        outcome.replaceChildren(element("p", { class: "problem" }, problemText(body)));
      }
    } catch (error) {
      outcome.replaceChildren(element("p", { class: "problem" },
        "The connection was lost; the change may or may not have been made. Reload the page to see."));
    }
  });
}

function upload(form) {
  const file = form.querySelector('input[type="file"]').files[0];
  const progress = form.querySelector("progress");
  const outcome = form.querySelector(".outcome");
  if (!file) return;
  const request = new XMLHttpRequest();
  request.open("POST", `/api/v1/apps/${form.dataset.app}/environments/${form.dataset.environment}/uploads`
    + `?name=${encodeURIComponent(file.name)}`);
  request.setRequestHeader("X-CSRF-Token", csrfToken());
  request.setRequestHeader("Content-Type", "application/octet-stream");
  progress.hidden = false;
  progress.value = 0;
  outcome.replaceChildren(element("p", {}, "Uploading…"));
  request.upload.addEventListener("progress", (event) => {
    if (event.lengthComputable) progress.value = Math.round((100 * event.loaded) / event.total);
  });
  request.addEventListener("load", () => {
    progress.hidden = true;
    let body = null;
    try { body = JSON.parse(request.responseText); } catch (error) { body = null; }
    if (request.status === 201) {
      renderPreview(outcome, form, body, request.getResponseHeader("ETag"));
    } else {
      const refusal = element("div", { class: "problem refusal" }, problemText(body));
      if (body && body.rule) refusal.append(element("p", {}, "Rule: ", element("strong", { class: "rule" }, body.rule)));
      if (body && body.entry) refusal.append(element("p", {}, "Entry: ", element("code", { class: "entry" }, body.entry)));
      outcome.replaceChildren(refusal);
    }
  });
  request.addEventListener("error", () => {
    progress.hidden = true;
    outcome.replaceChildren(element("p", { class: "problem" }, "The upload failed: the connection was lost."));
  });
  request.send(file);
}

document.addEventListener("DOMContentLoaded", () => {
  for (const form of document.querySelectorAll("form.upload")) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      upload(form);
    });
  }
});
