// Progressive enhancement only: every action works without JavaScript.
document.addEventListener("DOMContentLoaded", () => {
  // Copy buttons next to secrets shown once.
  for (const button of document.querySelectorAll("button.copy[data-copy]")) {
    const field = document.getElementById(button.dataset.copy);
    if (!field || !navigator.clipboard) continue;
    button.hidden = false;
    button.addEventListener("click", async () => {
      await navigator.clipboard.writeText(field.value);
      button.textContent = "Copied";
      setTimeout(() => { button.textContent = "Copy"; }, 2000);
    });
  }
  // A confirmation before actions that need one (the form still posts without JavaScript).
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
  // Select a secret on focus so that it can be copied by hand too.
  for (const field of document.querySelectorAll("input.secret")) {
    field.addEventListener("focus", () => field.select());
  }
});
