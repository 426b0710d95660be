/** Entry point: renders the console and marks the first render for the browser test's timing. */
import { render } from "preact";
import { App } from "./app";

const root = document.getElementById("app");
if (root) {
  root.textContent = "";
  render(<App />, root);
  performance.mark("kdp:first-render");
}
