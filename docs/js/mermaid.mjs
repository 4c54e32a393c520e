// Draws the <pre class="mermaid"> state diagrams (docs/explanation/state-machines.md).
import mermaid from "https://cdn.jsdelivr.net/npm/mermaid@11/dist/mermaid.esm.min.mjs";
mermaid.initialize({ startOnLoad: true });
