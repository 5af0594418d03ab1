document.getElementById("app").textContent = "Simple Chat";
