// Fit every plotly figure to its column. Figures are drawn while the page is still being parsed
// (before the sidebars exist), so their first width can be too wide; re-fit once the page has
// loaded and whenever a figure's container changes size (sidebar toggles, window resizes).
(function () {
  function fit(div) {
    if (window.Plotly && div.classList.contains("js-plotly-plot")) { window.Plotly.Plots.resize(div); }
  }
  function fitAll() {
    var divs = document.querySelectorAll(".plotly-graph-div");
    divs.forEach(fit);
    if (window.ResizeObserver) {
      var ro = new ResizeObserver(function (entries) { entries.forEach(function (e) { fit(e.target); }); });
      divs.forEach(function (d) { ro.observe(d); });
    }
  }
  if (document.readyState === "complete") { fitAll(); } else { window.addEventListener("load", fitAll); }
})();
