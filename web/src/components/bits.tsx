// Small shared pieces: the logo, avatar, delivery ticks, icons, a modal dialog.

import type { ComponentChildren } from "preact";
import { useEffect, useRef } from "preact/hooks";
import { STATUS_LABEL, hue, initials } from "../format";
import type { MessageError, MessageStatus } from "../types";

/** The inbox's logo: a speech bubble on a rounded square. */
export function Logo({ size }: { size: number }) {
  return (
    <span class="logo" aria-hidden="true">
      <svg viewBox="0 0 32 32" width={size} height={size}>
        <rect width="32" height="32" rx="8" fill="currentColor" />
        <path d="M8 10h16v10H14l-6 5z" fill="white" />
      </svg>
    </span>
  );
}

/** The big logo on top of the sign-in and invitation cards. */
export function BigBrand() {
  return (
    <div class="brand big-brand">
      <Logo size={36} />
    </div>
  );
}

export function Avatar({ name, seed, size = 40 }: { name: string; seed: string; size?: number }) {
  const h = hue(seed);
  return (
    <span
      class="avatar"
      aria-hidden="true"
      style={{ width: `${size}px`, height: `${size}px`, background: `hsl(${h} 55% 88%)`, color: `hsl(${h} 45% 28%)` }}
    >
      {initials(name)}
    </span>
  );
}

/** ✓ sent, ✓✓ delivered, blue ✓✓ read, a clock while pending, ! when failed (with Meta's reason). */
export function StatusTicks({ status, error }: { status: MessageStatus | null; error?: MessageError | null }) {
  if (!status) return null;
  const label = status === "failed" && error ? `Failed: ${error.title}${error.detail ? ` (${error.detail})` : ""}` : STATUS_LABEL[status];
  return (
    <span class={`ticks ticks-${status}`} data-status={status} role="img" aria-label={label} title={label}>
      {status === "pending" && (
        <svg viewBox="0 0 16 16" width="14" height="14" aria-hidden="true">
          <circle cx="8" cy="8" r="6" fill="none" stroke="currentColor" stroke-width="1.5" />
          <path d="M8 4.5V8l2.5 1.5" fill="none" stroke="currentColor" stroke-width="1.5" stroke-linecap="round" />
        </svg>
      )}
      {status === "sent" && (
        <svg viewBox="0 0 16 16" width="16" height="14" aria-hidden="true">
          <path d="M3 8.5l3 3 7-7" fill="none" stroke="currentColor" stroke-width="1.6" stroke-linecap="round" stroke-linejoin="round" />
        </svg>
      )}
      {(status === "delivered" || status === "read" || status === "played") && (
        <svg viewBox="0 0 20 16" width="20" height="14" aria-hidden="true">
          <path d="M1.5 8.5l3 3 7-7M8 11.5l.5.5 7-7.5" fill="none" stroke="currentColor" stroke-width="1.6" stroke-linecap="round" stroke-linejoin="round" />
        </svg>
      )}
      {status === "failed" && (
        <svg viewBox="0 0 16 16" width="14" height="14" aria-hidden="true">
          <circle cx="8" cy="8" r="7" fill="currentColor" />
          <path d="M8 4v5M8 11.2v.3" stroke="white" stroke-width="1.8" stroke-linecap="round" />
        </svg>
      )}
    </span>
  );
}

const ICONS: Record<string, string> = {
  attach: "M16.5 6.5l-7.8 7.8a2.5 2.5 0 0 0 3.5 3.5l8-8a4.5 4.5 0 0 0-6.4-6.4l-8.3 8.3a6.5 6.5 0 0 0 9.2 9.2l7-7",
  send: "M3 20.5l18-8.5L3 3.5l2.5 8.5L3 20.5zM5.5 12h8",
  template: "M4 4h16v5H4zM4 12h7v8H4zM14 12h6M14 16h6M14 20h4",
  library: "M5 4h4v16H5zM11 4h4v16h-4zM17 5l3 .8-3.6 14.3-3-.8",
  close: "M6 6l12 12M18 6L6 18",
  user: "M12 12a4 4 0 1 0 0-8 4 4 0 0 0 0 8zM4 20c1.5-4 4.5-6 8-6s6.5 2 8 6",
  back: "M15 5l-7 7 7 7",
  note: "M5 4h10l4 4v12H5zM14 4v5h5M8 13h8M8 17h5",
  plus: "M12 5v14M5 12h14",
  edit: "M4 20h4L19 9l-4-4L4 16zM13.5 6.5l4 4",
  download: "M12 4v11M7 10l5 5 5-5M5 20h14",
  reply: "M10 8L4 13l6 5M4 13h10a6 6 0 0 1 6 6",
  logout: "M15 4h4v16h-4M10 8l-4 4 4 4M6 12h11",
  key: "M14.5 9.5a4 4 0 1 0-3.2 3.9L13 15h2v2h2v2h3v-3l-5.6-5.6a4 4 0 0 0 .1-.9zM8.5 8.5h.01",
  team: "M9 11a3 3 0 1 0 0-6 3 3 0 0 0 0 6zM3 19c.8-3 3.2-5 6-5s5.2 2 6 5M16 5.5a3 3 0 0 1 0 5.5M18 14c1.6.6 2.6 2.4 3 5",
  map: "M12 21s-6-5.5-6-10a6 6 0 0 1 12 0c0 4.5-6 10-6 10zM12 13a2 2 0 1 0 0-4 2 2 0 0 0 0 4z",
};

export function Icon({ name, size = 20 }: { name: keyof typeof ICONS | string; size?: number }) {
  return (
    <svg viewBox="0 0 24 24" width={size} height={size} aria-hidden="true" class="icon">
      <path d={ICONS[name] ?? ""} fill="none" stroke="currentColor" stroke-width="1.8" stroke-linecap="round" stroke-linejoin="round" />
    </svg>
  );
}

/** A modal dialog on the native <dialog> (focus kept inside, Escape closes). */
export function Modal({
  title,
  onClose,
  children,
  wide,
  labelId,
}: {
  title: string;
  onClose: () => void;
  children: ComponentChildren;
  wide?: boolean;
  labelId?: string;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const id = labelId ?? `dlg-${title.replace(/\W+/g, "-").toLowerCase()}`;
  useEffect(() => {
    const dialog = ref.current;
    if (dialog && !dialog.open) dialog.showModal();
    const previous = document.activeElement as HTMLElement | null;
    return () => previous?.focus?.();
  }, []);
  return (
    <dialog
      ref={ref}
      class={`modal ${wide ? "wide" : ""}`}
      aria-labelledby={id}
      onCancel={(e) => {
        e.preventDefault();
        onClose();
      }}
      onClick={(e) => {
        if (e.target === ref.current) onClose(); // a click on the backdrop
      }}
    >
      <div class="modal-inner">
        <header class="modal-head">
          <h2 id={id}>{title}</h2>
          <button type="button" class="icon-btn" aria-label="Close" onClick={onClose}>
            <Icon name="close" />
          </button>
        </header>
        {children}
      </div>
    </dialog>
  );
}
