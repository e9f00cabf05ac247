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

  // New mail: the folder page listens for changes and offers to show them.
  var list = document.getElementById("messages");
  var folderField = document.querySelector("#list-form input[name=f]");
  if (list && folderField && window.EventSource) {
    var source = new EventSource("/events?f=" + encodeURIComponent(folderField.value));
    source.addEventListener("mail", function (event) {
      var data = JSON.parse(event.data);
      if (!data["new"]) return;
      var banner = document.getElementById("new-mail");
      if (!banner) {
        banner = document.createElement("p");
        banner.id = "new-mail";
        banner.className = "notice";
        var link = document.createElement("a");
        link.href = window.location.href;
        link.textContent = document.documentElement.getAttribute("data-new-mail") || "New mail";
        banner.appendChild(link);
        list.parentNode.insertBefore(banner, list.parentNode.firstChild);
      }
      document.title = "(" + data.unseen + ") " + document.title.replace(/^\(\d+\) /, "");
    });
  }

  // Compose: addresses from the directory as the user types (the datalist also holds recent
  // correspondents, rendered by the server). The suggestion replaces the address being typed,
  // after the ones before the last comma.
  var contacts = document.getElementById("contacts");
  if (contacts && window.fetch) {
    var timer = null;
    ["to", "cc", "bcc"].forEach(function (id) {
      var field = document.getElementById(id);
      if (!field) return;
      field.addEventListener("input", function () {
        clearTimeout(timer);
        timer = setTimeout(function () {
          var value = field.value;
          var cut = value.lastIndexOf(",");
          var before = cut < 0 ? "" : value.slice(0, cut + 1) + " ";
          var typed = value.slice(cut + 1).trim();
          if (typed.length < 2) return;
          fetch("/directory/suggest?q=" + encodeURIComponent(typed), { credentials: "same-origin" })
            .then(function (response) { return response.ok ? response.json() : []; })
            .then(function (suggestions) {
              Array.prototype.slice.call(contacts.querySelectorAll("option[data-directory]")).forEach(function (o) { o.remove(); });
              suggestions.forEach(function (s) {
                var option = document.createElement("option");
                option.value = before + s;
                option.setAttribute("data-directory", "1");
                contacts.appendChild(option);
              });
            })
            .catch(function () {});
        }, 200);
      });
    });
  }
})();
