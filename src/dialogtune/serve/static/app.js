// dialogtune web chat: streams replies from /v1/chat/completions (SSE over fetch),
// shows each user turn's predicted intent, and sends Good/Bad feedback to /v1/feedback.
// With tools set (settings), a reply's tool calls are shown apart from its words, and the
// person types each call's result, which is sent back as a "tool" message for the answer.
// No build step and no dependencies; all user text goes through textContent (no HTML).
"use strict";

const $ = (id) => document.getElementById(id);
const state = { messages: [], feedback: false, busy: false };
const keyInput = $("api-key");
keyInput.value = sessionStorage.getItem("dialogtune.apiKey") || "";
keyInput.addEventListener("change", () => sessionStorage.setItem("dialogtune.apiKey", keyInput.value));

function headers() {
  const h = { "Content-Type": "application/json" };
  if (keyInput.value) h.Authorization = "Bearer " + keyInput.value;
  return h;
}

function showError(text) {
  $("error").textContent = text || "";
  $("error").hidden = !text;
}

async function errorText(response) {
  try { return (await response.json()).error.message; } catch { return response.statusText; }
}

function addMessage(role, text, title) {
  const el = document.createElement("div");
  el.className = "message " + role;
  if (title) {
    const label = document.createElement("span");
    label.className = "tool-label";
    label.textContent = title;
    el.appendChild(label);
  }
  const content = document.createElement("span");
  content.className = "content";
  content.textContent = text;
  el.appendChild(content);
  $("log").appendChild(el);
  el.scrollIntoView({ block: "end" });
  return el;
}

function showIntent(userEl, turn) {
  if (!turn || turn.intent === null || turn.intent === undefined) return;
  const badge = document.createElement("span");
  badge.className = "intent" + (turn.out_of_scope ? " oos" : "");
  badge.dataset.intent = turn.intent;
  badge.textContent = `intent: ${turn.intent} · ${(turn.confidence * 100).toFixed(1)}%` +
    (turn.fallback ? " · fallback reply" : "");
  userEl.appendChild(badge);
  // NLU runs: the turn's slots, one "slot = value" chip each (textContent: never HTML)
  if (Array.isArray(turn.slots) && turn.slots.length) {
    const slots = document.createElement("span");
    slots.className = "slots";
    for (const s of turn.slots) {
      const chip = document.createElement("span");
      chip.className = "slot";
      chip.dataset.slot = s.slot;
      chip.title = `${s.start}:${s.end} · ${(s.confidence * 100).toFixed(1)}%`;
      chip.textContent = `${s.slot} = ${s.value}`;
      slots.appendChild(chip);
    }
    userEl.appendChild(slots);
  }
}

// Parse "data: ..." server-sent events out of the byte stream, one callback per event.
async function readEvents(response, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const data = block.split("\n").filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5).trim()).join("\n");
      if (data) onEvent(data);
    }
  }
}

async function send(text) {
  showError("");
  state.messages.push({ role: "user", content: text });
  await reply(addMessage("user", text), 1);
}

// Generate the next assistant turn. On failure the last `added` messages (the turns this
// request sent) leave the history again, so it stays as the server last saw it.
async function reply(userEl, added) {
  const botEl = addMessage("assistant", "");
  botEl.classList.add("pending");
  const content = botEl.querySelector(".content");
  const calls = [];
  let id = null;
  try {
    const body = { messages: state.messages, stream: true,
                   max_tokens: parseInt($("max-tokens").value, 10) || 128 };
    const tools = toolsSetting();
    if (tools) body.tools = tools;
    const response = await fetch("/v1/chat/completions",
      { method: "POST", headers: headers(), body: JSON.stringify(body) });
    if (!response.ok) throw new Error(await errorText(response));
    await readEvents(response, (data) => {
      if (data === "[DONE]") return;
      const chunk = JSON.parse(data);
      if (chunk.error) throw new Error(chunk.error.message);
      id = chunk.id || id;
      if (userEl && chunk.dialogtune && !userEl.querySelector(".intent")) showIntent(userEl, chunk.dialogtune);
      const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
      if (delta && delta.content) content.textContent += delta.content;
      for (const part of (delta && delta.tool_calls) || []) showCall(botEl, calls, part);
    });
  } catch (err) {
    state.messages.splice(state.messages.length - added, added);
    botEl.remove();
    throw err;
  } finally {
    botEl.classList.remove("pending");
  }
  botEl.dataset.completionId = id;
  const turn = { role: "assistant", content: content.textContent || (calls.length ? null : "") };
  if (calls.length) turn.tool_calls = calls.map((c) => c.call);
  state.messages.push(turn);
  if (state.feedback && id) addFeedback(botEl, id);
  if (calls.length) askResults(botEl, calls.map((c) => c.call));
}

function addFeedback(botEl, id) {
  const bar = document.createElement("div");
  bar.className = "feedback";
  const status = document.createElement("span");
  status.className = "feedback-status";
  for (const [rating, label, title] of [["up", "Good", "good reply"], ["down", "Bad", "bad reply"]]) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "feedback-" + rating;
    button.append(icon(rating), label);  // an inline SVG and a word: no emoji font needed
    button.title = title;
    button.setAttribute("aria-label", title);
    button.addEventListener("click", () => rate(bar, status, id, rating, button));
    bar.appendChild(button);
  }
  bar.appendChild(status);
  botEl.appendChild(bar);
}

// A check mark (up) or a cross (down), drawn inline: renders with any installed fonts.
function icon(rating) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 16 16");
  svg.setAttribute("width", "14");
  svg.setAttribute("height", "14");
  svg.setAttribute("aria-hidden", "true");
  svg.classList.add("icon");
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", rating === "up" ? "M2 8.5l4 4 8-9" : "M3 3l10 10M13 3L3 13");
  svg.appendChild(path);
  return svg;
}

async function postFeedback(body, status) {
  const response = await fetch("/v1/feedback",
    { method: "POST", headers: headers(), body: JSON.stringify(body) });
  status.textContent = response.ok ? "thanks, recorded" : "not recorded: " + await errorText(response);
  return response.ok;
}

async function rate(bar, status, id, rating, button) {
  bar.querySelectorAll("button").forEach((b) => b.classList.remove("chosen"));
  button.classList.add("chosen");
  const ok = await postFeedback({ completion_id: id, rating }, status);
  if (ok && rating === "down" && !bar.querySelector(".correction")) addCorrection(bar, status, id);
}

function addCorrection(bar, status, id) {
  const form = document.createElement("form");
  form.className = "correction";
  const input = document.createElement("input");
  input.placeholder = "a better reply (optional)";
  const submit = document.createElement("button");
  submit.textContent = "correct";
  form.append(input, submit);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (input.value.trim()) await postFeedback({ completion_id: id, corrected_reply: input.value.trim() }, status);
  });
  bar.after(form);
}

async function loadInfo() {
  try {
    const health = await (await fetch("/health")).json();
    state.feedback = !!health.log;
    const parts = [];
    if (health.chat) parts.push("chat: " + health.chat);
    if (health.intent) parts.push("intent: " + health.intent);
    $("models").textContent = parts.join(" · ") || "no model loaded";
  } catch (err) {
    $("models").textContent = "server unreachable";
  }
}

// Run one request at a time; its error is shown above the composer.
async function busy(task) {
  if (state.busy) return;
  state.busy = true;
  $("send").disabled = true;
  showError("");
  try { await task(); } catch (err) { showError(err.message); } finally {
    state.busy = false;
    $("send").disabled = false;
    $("input").focus();
  }
}

$("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("input").value.trim();
  if (!text || state.busy) return;
  $("input").value = "";
  busy(() => send(text));
});
$("input").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    $("composer").requestSubmit();
  }
});
$("reset").addEventListener("click", () => { state.messages = []; $("log").textContent = ""; });
loadInfo();
