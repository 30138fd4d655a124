// test-executor: small progressive enhancements. Everything works without
// this file; it adds the file picker's filter and switches, and makes the
// log viewer follow its tail and load pages while scrolling.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const picker = document.querySelector(".file-picker");
  if (picker) setUpFilePicker(picker);
});

function setUpFilePicker(picker) {
  const filter = picker.querySelector("[data-file-filter]");
  const selectAll = picker.querySelector("[data-select-all]");
  const boxes = () => [...picker.querySelectorAll("[data-folder-box]")];
  const visibleFiles = (root) =>
    [...root.querySelectorAll("li[data-path]")].filter((li) => !li.hidden).map((li) => li.querySelector("input"));

  filter.addEventListener("input", () => {
    const words = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
    for (const box of boxes()) {
      let shown = 0;
      for (const li of box.querySelectorAll("li[data-path]")) {
        const path = li.dataset.path.toLowerCase();
        li.hidden = !words.every((w) => path.includes(w));
        if (!li.hidden) shown++;
      }
      box.hidden = shown === 0;
      if (words.length) box.open = true;
    }
    syncSwitches();
  });
  selectAll.addEventListener("change", () => {
    for (const input of visibleFiles(picker)) input.checked = selectAll.checked;
    syncSwitches();
  });
  for (const box of boxes()) {
    const folderSwitch = box.querySelector("[data-select-folder]");
    folderSwitch.addEventListener("click", (e) => e.stopPropagation());
    folderSwitch.addEventListener("change", () => {
      for (const input of visibleFiles(box)) input.checked = folderSwitch.checked;
      syncSwitches();
    });
  }
  picker.addEventListener("change", (e) => {
    if (e.target.name === "files") syncSwitches();
  });

  function syncSwitches() {
    for (const box of boxes()) {
      const inputs = visibleFiles(box);
      const checked = inputs.filter((i) => i.checked).length;
      const folderSwitch = box.querySelector("[data-select-folder]");
      folderSwitch.checked = inputs.length > 0 && checked === inputs.length;
      folderSwitch.indeterminate = checked > 0 && checked < inputs.length;
    }
    const all = visibleFiles(picker);
    const checked = all.filter((i) => i.checked).length;
    selectAll.checked = all.length > 0 && checked === all.length;
    selectAll.indeterminate = checked > 0 && checked < all.length;
  }
  syncSwitches();
}

// The log viewer: follow the tail unless scrolled up; load earlier and
// later pages near the edges, keeping what the reader sees in place; keep
// at most MAX_LINES lines, dropping the far end (a loader takes its place);
// open a #L link whose line is not on the page around that line.
const MAX_LINES = 10000;
let followLog = true;
let keepFromBottom = null;

function logView() {
  return document.getElementById("log");
}

function ask(id, eventName) {
  const loader = document.getElementById(id);
  if (loader && !loader.classList.contains("htmx-request")) htmx.trigger(loader, eventName);
}

document.addEventListener("scroll", (e) => {
  if (e.target.id !== "log") return;
  const log = e.target;
  const fromBottom = log.scrollHeight - log.scrollTop - log.clientHeight;
  followLog = fromBottom < 40 && !document.getElementById("log-later");
  if (log.scrollTop < 200) ask("log-earlier", "earlier");
  if (fromBottom < 200) ask("log-later", "later");
}, true);

document.addEventListener("htmx:beforeRequest", (e) => {
  if (e.detail.elt.id === "log-earlier") followLog = false;
});
// Whether the reader was at the tail when new lines came: a reader who has
// just scrolled up (before the scroll event ran) is not pulled back down.
let atTail = true;
document.addEventListener("htmx:beforeSwap", (e) => {
  const log = logView();
  if (!log) return;
  if (e.detail.target.id === "log-earlier") keepFromBottom = log.scrollHeight - log.scrollTop;
  atTail = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
});
document.addEventListener("htmx:afterSwap", (e) => {
  const log = logView();
  if (!log) return;
  if (keepFromBottom !== null) {
    log.scrollTop = log.scrollHeight - keepFromBottom;
    keepFromBottom = null;
    boundLog(log, "bottom");
  } else if (log.contains(e.detail.elt) || e.detail.target.id === "log-later" || e.detail.target.id === "log-poller") {
    boundLog(log, "top");
  }
});
document.addEventListener("htmx:afterSettle", () => {
  const log = logView();
  if (log && followLog && atTail) log.scrollTop = log.scrollHeight;
});

// Drops lines beyond MAX_LINES from one end and puts a loader there.
function boundLog(log, end) {
  const lines = log.querySelectorAll(".ln");
  const extra = lines.length - MAX_LINES;
  if (extra <= 0) return;
  const run = log.dataset.run;
  if (end === "top") {
    const height = log.scrollHeight;
    for (let i = 0; i < extra; i++) lines[i].remove();
    document.getElementById("log-earlier")?.remove();
    const first = Number(lines[extra].dataset.seq);
    log.prepend(loader("log-earlier", "earlier", `/runs/${run}?line=${first}#L${first}`,
      `/runs/${run}/fragments/logs/earlier?before=${first}`, "↑ Earlier lines"));
    log.scrollTop -= height - log.scrollHeight;
  } else {
    for (let i = lines.length - extra; i < lines.length; i++) lines[i].remove();
    document.getElementById("log-later")?.remove();
    document.getElementById("log-poller")?.remove();
    const last = Number(lines[lines.length - extra - 1].dataset.seq);
    log.append(loader("log-later", "later", `/runs/${run}?line=${last + 2}#L${last + 2}`,
      `/runs/${run}/fragments/logs/later?after=${last}`, "↓ Later lines"));
  }
}

function loader(id, eventName, href, get, text) {
  const a = document.createElement("a");
  a.id = id;
  a.className = "log-more";
  a.href = href;
  a.setAttribute("hx-get", get);
  a.setAttribute("hx-trigger", `click, ${eventName}`);
  a.setAttribute("hx-swap", "outerHTML");
  a.textContent = text;
  htmx.process(a);
  return a;
}

// Opening the page: a line asked for (?line= or #L) is centred; a #L line
// that is not on the page opens the page around it; else the tail shows.
window.addEventListener("load", () => {
  const log = logView();
  if (!log) return;
  const hash = /^#L(\d+)$/.exec(location.hash);
  const target = log.querySelector(".ln.target") || (hash && document.getElementById(`L${hash[1]}`));
  if (target) {
    followLog = false;
    log.scrollTop += target.getBoundingClientRect().top - log.getBoundingClientRect().top - log.clientHeight / 2;
  } else if (hash && !new URLSearchParams(location.search).has("line")) {
    location.replace(`/runs/${log.dataset.run}?line=${hash[1]}#L${hash[1]}`);
  } else {
    log.scrollTop = log.scrollHeight;
  }
});
window.addEventListener("hashchange", () => {
  const hash = /^#L(\d+)$/.exec(location.hash);
  const log = logView();
  if (hash && log && !document.getElementById(`L${hash[1]}`)) {
    location.assign(`/runs/${log.dataset.run}?line=${hash[1]}#L${hash[1]}`);
  }
});
