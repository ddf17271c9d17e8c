// dialogtune web chat, tool calling: the tools of the settings box go with each request;
// a reply's calls are shown apart from its words ("calls name {arguments}"), and the
// person types each call's result, sent back as a "tool" message before the answer.
// Loaded before app.js, whose helpers (state, addMessage, reply, busy) it uses.
"use strict";

// The tools of the settings box: an OpenAI "tools" list, or null when the box is empty.
function toolsSetting() {
  const text = $("tools").value.trim();
  if (!text) return null;
  let tools;
  try { tools = JSON.parse(text); } catch { throw new Error("tools: not valid JSON"); }
  if (!Array.isArray(tools)) throw new Error("tools: give a JSON list of function definitions");
  return tools;
}

// One streamed piece of a tool call (OpenAI's delta.tool_calls item): the call is shown
// as "calls name {arguments}", apart from the reply's words, and grows as pieces arrive.
function showCall(botEl, calls, part) {
  let entry = calls[part.index];
  if (!entry) {
    const el = document.createElement("div");
    el.className = "tool-call";
    const label = document.createElement("span");
    label.className = "tool-label";
    label.textContent = "calls";
    const name = document.createElement("code");
    name.className = "tool-name";
    const args = document.createElement("code");
    args.className = "tool-arguments";
    el.append(label, name, args);
    let list = botEl.querySelector(".tool-calls");
    if (!list) {  // after the words, in the order the calls come
      list = document.createElement("div");
      list.className = "tool-calls";
      botEl.querySelector(".content").after(list);
    }
    list.appendChild(el);
    entry = calls[part.index] = { el, name, args,
      call: { id: "", type: "function", function: { name: "", arguments: "" } } };
  }
  const fn = part.function || {};
  entry.call.id += part.id || "";
  entry.call.function.name += fn.name || "";
  entry.call.function.arguments += fn.arguments || "";
  entry.name.textContent = entry.call.function.name;
  entry.args.textContent = entry.call.function.arguments;
  entry.el.dataset.callId = entry.call.id;
}

// A form asking for each call's result; sent as "tool" messages, then the answer follows.
function askResults(botEl, calls) {
  const form = document.createElement("form");
  form.className = "tool-results";
  const inputs = calls.map((call) => {
    const label = document.createElement("label");
    label.textContent = "result of " + call.function.name + " ";
    const input = document.createElement("input");
    input.className = "tool-result-input";
    input.placeholder = "what the function returned (JSON or text)";
    input.required = true;
    label.appendChild(input);
    form.appendChild(label);
    return input;
  });
  const submit = document.createElement("button");
  submit.textContent = "send results";
  form.appendChild(submit);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(async () => {
      const els = calls.map((call, i) => {
        state.messages.push({ role: "tool", tool_call_id: call.id, content: inputs[i].value });
        return addMessage("tool", inputs[i].value, "result of " + call.function.name);
      });
      try {
        await reply(null, calls.length);
        form.remove();
      } catch (err) {
        els.forEach((el) => el.remove());
        throw err;
      }
    });
  });
  botEl.after(form);
}
