// test-executor: small progressive enhancements. Everything works without
// this file; it adds the file picker's filter and switches, and keeps the
// log view following its tail unless the reader scrolled up.
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

// Log tail: stay at the bottom while new lines arrive, unless scrolled up.
let followLog = true;
document.addEventListener("scroll", (e) => {
  if (e.target.id === "log") {
    const log = e.target;
    followLog = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  }
}, true);
document.addEventListener("htmx:afterSettle", () => {
  const log = document.getElementById("log");
  if (log && followLog) log.scrollTop = log.scrollHeight;
});
window.addEventListener("load", () => {
  const log = document.getElementById("log");
  if (log) log.scrollTop = log.scrollHeight;
});
