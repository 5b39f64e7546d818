/**
 * A drop zone's pointer half: the handlers that accept a drop and whether something is dragged
 * over it (for its highlight). The zone's file inputs stay the keyboard's way in.
 */
import { useState } from "preact/hooks";

export function useDrop(onDrop: (data: DataTransfer) => void) {
  const [over, setOver] = useState(false);
  const handlers = {
    onDragOver: (e: DragEvent) => {
      e.preventDefault();
      setOver(true);
    },
    onDragLeave: () => setOver(false),
    onDrop: (e: DragEvent) => {
      e.preventDefault();
      setOver(false);
      if (e.dataTransfer) onDrop(e.dataTransfer);
    },
  };
  return { over, handlers };
}
