/** Small DOM helpers for the panel: all user values go through textContent, never HTML. */

/** Create an element with a class and text. */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className = '',
  text?: string
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

/** A panel button (type=button, so it never submits the form). */
export function button(label: string, title: string, onClick: () => void, className = ''): HTMLButtonElement {
  const b = el('button', `jp-TuningPanel-button ${className}`.trim(), label);
  b.type = 'button';
  b.title = title;
  b.addEventListener('click', onClick);
  return b;
}
