// The workbench's only script: confirmations, and the live parts of a page (the runs
// table, a run's steps) refreshed from the server's own HTML. Text from a run is only ever
// put in the page as text (textContent) or as the server's escaped HTML.
"use strict";

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});

async function refresh(element, url) {
  const answer = await fetch(url, { credentials: "same-origin", headers: { accept: "text/html" } });
  if (answer.ok) {
    element.innerHTML = await answer.text();
    return true;
  }
  return false;
}

function liveTable(element) {
  setInterval(() => {
    if (document.visibilityState === "visible") refresh(element, element.dataset.liveTable);
  }, 5000);
}

function liveRun(element) {
  const streams = new Map(); // step id -> reply text so far
  let pending = null;
  const showStreams = () => {
    for (const pre of element.querySelectorAll("pre[data-stream]")) {
      const text = streams.get(pre.dataset.stream);
      if (text) {
        pre.textContent = text;
        pre.hidden = false;
      }
    }
  };
  const update = () => {
    if (pending) return;
    pending = setTimeout(async () => {
      pending = null;
      if (await refresh(element, element.dataset.live)) showStreams();
    }, 250);
  };
  const source = new EventSource(element.dataset.events);
  for (const name of ["step_started", "step_finished", "step_failed"]) {
    source.addEventListener(name, update);
  }
  source.addEventListener("text", (event) => {
    const piece = JSON.parse(event.data);
    streams.set(piece.step, (streams.get(piece.step) || "") + piece.text);
    showStreams();
  });
  source.addEventListener("end", () => {
    source.close();
    streams.clear();
    update();
    document.querySelector(".actions")?.remove();
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const table = document.querySelector("[data-live-table]");
  if (table) liveTable(table);
  const run = document.querySelector("#live[data-events]");
  if (run) liveRun(run);
});
