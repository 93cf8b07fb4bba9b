// regnet-tutorial: MathJax's Accessibility and Language menus load the speech-rule engine's
// data from a CDN, and the book makes no request outside its own folder. Disable both
// submenus once MathJax has started (the rest of the menu, e.g. "Show Math As", stays).
window.addEventListener("load", function () {
  if (!window.MathJax || !MathJax.startup || !MathJax.startup.promise) return;
  MathJax.startup.promise.then(function () {
    var doc = MathJax.startup.document;
    var menu = doc && doc.menu && doc.menu.menu;
    if (!menu) return;
    ["Accessibility", "Language"].forEach(function (id) {
      var item = menu.findID(id);
      if (item) item.disable();
    });
    document.documentElement.dataset.mathjaxA11yMenu = "disabled";
  });
});
