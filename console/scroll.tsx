/**
 * A wide table's scroll box. It can take focus and has a name, so keyboard users can scroll it
 * (axe: scrollable-region-focusable) and screen readers announce what it holds.
 */
import type { ComponentChildren } from "preact";

export function Scroll(props: { label: string; children: ComponentChildren }) {
  return (
    // biome-ignore lint/a11y/noNoninteractiveTabindex: a scrollable region must be reachable by keyboard
    <section class="scroll" tabIndex={0} aria-label={props.label}>
      {props.children}
    </section>
  );
}
