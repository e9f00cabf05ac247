// Optional enhancements: every page works without this file.
// Keyboard: j/k move through the message list, Enter or o opens, u goes back to the folder.
(function () {
  "use strict";
  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.tagName === "SELECT")) return;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var rows = Array.prototype.slice.call(document.querySelectorAll("#messages tbody tr"));
    var current = document.querySelector("#messages tbody tr.selected");
    var index = rows.indexOf(current);
    function select(i) {
      if (i < 0 || i >= rows.length) return;
      if (current) current.classList.remove("selected");
      rows[i].classList.add("selected");
      rows[i].scrollIntoView({ block: "nearest" });
    }
    if (event.key === "j") select(index + 1);
    else if (event.key === "k") select(index - 1);
    else if ((event.key === "Enter" || event.key === "o") && current) {
      var link = current.querySelector("td.subject a");
      if (link) window.location.href = link.href;
    } else if (event.key === "u") {
      var back = document.querySelector(".back a");
      if (back) window.location.href = back.href;
    }
  });
})();
