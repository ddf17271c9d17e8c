// dialogtune web chat: streams replies from /v1/chat/completions (SSE over fetch),
// shows each user turn's predicted intent, and sends 👍/👎 feedback to /v1/feedback.
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

function addMessage(role, text) {
  const el = document.createElement("div");
  el.className = "message " + role;
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
  const userEl = addMessage("user", text);
  const botEl = addMessage("assistant", "");
  botEl.classList.add("pending");
  const content = botEl.querySelector(".content");
  const body = { messages: state.messages, stream: true,
                 max_tokens: parseInt($("max-tokens").value, 10) || 128 };
  const response = await fetch("/v1/chat/completions",
    { method: "POST", headers: headers(), body: JSON.stringify(body) });
  if (!response.ok) {
    state.messages.pop();
    botEl.remove();
    throw new Error(await errorText(response));
  }
  let id = null;
  try {
    await readEvents(response, (data) => {
      if (data === "[DONE]") return;
      const chunk = JSON.parse(data);
      if (chunk.error) throw new Error(chunk.error.message);
      id = chunk.id || id;
      if (chunk.dialogtune && !userEl.querySelector(".intent")) showIntent(userEl, chunk.dialogtune);
      const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
      if (delta && delta.content) content.textContent += delta.content;
    });
  } catch (err) {
    state.messages.pop();  // keep the history alternating: drop the unanswered turn
    botEl.remove();
    throw err;
  } finally {
    botEl.classList.remove("pending");
  }
  botEl.dataset.completionId = id;
  state.messages.push({ role: "assistant", content: content.textContent });
  if (state.feedback && id) addFeedback(botEl, id);
}

function addFeedback(botEl, id) {
  const bar = document.createElement("div");
  bar.className = "feedback";
  const status = document.createElement("span");
  status.className = "feedback-status";
  for (const [rating, label, title] of [["up", "👍", "good reply"], ["down", "👎", "bad reply"]]) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "feedback-" + rating;
    button.textContent = label;
    button.title = title;
    button.setAttribute("aria-label", title);
    button.addEventListener("click", () => rate(bar, status, id, rating, button));
    bar.appendChild(button);
  }
  bar.appendChild(status);
  botEl.appendChild(bar);
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

$("composer").addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = $("input").value.trim();
  if (!text || state.busy) return;
  state.busy = true;
  $("send").disabled = true;
  $("input").value = "";
  try { await send(text); } catch (err) { showError(err.message); } finally {
    state.busy = false;
    $("send").disabled = false;
    $("input").focus();
  }
});
$("input").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    $("composer").requestSubmit();
  }
});
$("reset").addEventListener("click", () => { state.messages = []; $("log").textContent = ""; });
loadInfo();
