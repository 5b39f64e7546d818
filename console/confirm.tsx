/**
 * A confirmation dialog: the browser's modal `<dialog>` (`showModal`), which makes the rest of the
 * page inert — focus stays inside — and closes on Escape. Focus starts on Cancel (the safe
 * choice) and goes back to the control that opened it when it closes.
 */
import type { ComponentChildren } from "preact";
import { useEffect, useRef } from "preact/hooks";

export function Confirm(props: {
  /** Open while set; the heading of the dialog. */
  title?: string;
  children?: ComponentChildren;
  confirm: string;
  onConfirm: () => void;
  onClose: () => void;
}) {
  const dialog = useRef<HTMLDialogElement>(null);
  const cancel = useRef<HTMLButtonElement>(null);
  const opener = useRef<Element | null>(null);
  const open = props.title !== undefined;
  useEffect(() => {
    const d = dialog.current;
    if (!d) return;
    if (open && !d.open) {
      opener.current = document.activeElement;
      d.showModal();
      cancel.current?.focus();
    } else if (!open && d.open) d.close();
  }, [open]);
  // Escape (the dialog's `cancel` event) and every other way of closing end here.
  const closed = () => {
    props.onClose();
    (opener.current as HTMLElement | null)?.focus?.();
  };
  return (
    <dialog ref={dialog} class="confirm" aria-labelledby="confirm-h" onClose={closed}>
      <h2 id="confirm-h">{props.title}</h2>
      {props.children}
      <div class="actions">
        <button type="button" ref={cancel} onClick={() => dialog.current?.close()}>
          Cancel
        </button>
        <button
          type="button"
          class="primary"
          onClick={() => {
            props.onConfirm();
            dialog.current?.close();
          }}
        >
          {props.confirm}
        </button>
      </div>
    </dialog>
  );
}
