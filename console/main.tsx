// Console entry: mounts the app into #app (the page shell comes from bin/build-console.mjs).
import { render } from "preact";
import { App } from "./app.js";
import "./styles.css";

render(<App />, document.getElementById("app")!);
