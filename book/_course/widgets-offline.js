// Loaded after require.js and before the ipywidgets HTML manager (see _config.yml: nb_ipywidgets_js).
(function () {
  // 1. The HTML manager asks RequireJS for "@jupyter-widgets/html-manager/dist/..." and loads its fonts from beside
  //    that module: map the name to the copy served from this book's own _static folder, not a CDN.
  var here = document.currentScript.src.replace(/[^\/]*$/, "");
  require.config({ paths: { "@jupyter-widgets/html-manager/dist": here + "html-manager" } });
  // 2. It typesets widget labels through MathJax 2's API (MathJax.Hub.Queue); the book runs MathJax 3, which has no
  //    Hub. Give MathJax 3 that one entry point, forwarding to typesetPromise.
  function shim() {
    var M = window.MathJax;
    if (M && typeof M === "object" && !M.Hub) {
      M.Hub = { Queue: function (job) {
        var el = job && job[2];
        if (window.MathJax.typesetPromise) { window.MathJax.typesetPromise(el ? [el] : undefined).catch(function () {}); }
      } };
    }
  }
  shim();
  document.addEventListener("DOMContentLoaded", shim, true);
  window.addEventListener("load", shim, true);
})();
