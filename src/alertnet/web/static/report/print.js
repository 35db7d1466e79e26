// The shift report's Print button (the page is server-rendered, alertnet.reports.render; its
// Content-Security-Policy allows no inline script, so the button is wired from here).

const button = document.getElementById("print-report");
if (button) button.addEventListener("click", () => window.print());
