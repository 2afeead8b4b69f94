// What the composer's "/" (canned replies) and "@" (mentions) pickers share: the word typed after their
// character, the keys that move through the options and pick one, and the list itself.

import type { ComponentChildren } from "preact";

/** The word typed after a trigger character, and where the trigger stands in the text. */
export interface Typed {
  start: number;
  query: string;
}

/** The "<trigger>word" being typed just before the caret (at the start or after a space), if any. */
export function typedAfter(trigger: "@" | "/", text: string, caret: number): Typed | null {
  const match = new RegExp(`(^|\\s)\\${trigger}([^\\s\\${trigger}]*)$`).exec(text.slice(0, caret));
  if (!match) return null;
  return { start: caret - match[2].length - 1, query: match[2] };
}

/** A key pressed while a picker is open: Escape closes it, the arrows move, Enter or Tab picks. True when
 * the key was the picker's (the textarea must not act on it too). */
export function pickerKey<T>(
  event: KeyboardEvent,
  matches: T[],
  active: number,
  setActive: (move: (index: number) => number) => void,
  pick: (item: T) => void,
  close: () => void,
): boolean {
  if (event.isComposing) return false;
  if (event.key === "Escape") {
    event.preventDefault();
    close();
    return true;
  }
  if (matches.length === 0) return false;
  if (event.key === "ArrowDown" || event.key === "ArrowUp") {
    event.preventDefault();
    const step = event.key === "ArrowDown" ? 1 : -1;
    setActive((i) => (i + step + matches.length) % matches.length);
    return true;
  }
  if ((event.key === "Enter" && !event.shiftKey) || event.key === "Tab") {
    event.preventDefault();
    pick(matches[Math.min(active, matches.length - 1)]);
    return true;
  }
  return false;
}

interface Props<T> {
  heading: string;
  testId: string;
  listLabel: string;
  listId?: string;
  /** Null while the options load. */
  options: T[] | null | undefined;
  matches: T[];
  /** What to say when nothing matches (given every option). */
  empty: (options: T[]) => string;
  active: number;
  keyOf: (item: T) => string;
  optionId?: (item: T) => string;
  render: (item: T) => ComponentChildren;
  onPick: (item: T) => void;
  onHover: (index: number) => void;
}

export function InlinePicker<T>({ heading, testId, listLabel, listId, options, matches, empty, active, keyOf, optionId, render, onPick, onHover }: Props<T>) {
  return (
    <div class="popover reply-picker" data-testid={testId}>
      <div class="popover-head">{heading}</div>
      {!options ? (
        <p class="muted pad">Loading…</p>
      ) : matches.length === 0 ? (
        <p class="muted pad">{empty(options)}</p>
      ) : (
        <ul role="listbox" aria-label={listLabel} id={listId}>
          {matches.map((item, index) => (
            <li key={keyOf(item)}>
              <button
                type="button"
                role="option"
                id={optionId?.(item)}
                aria-selected={index === active}
                class={index === active ? "active" : ""}
                // mousedown, not click: the textarea must not lose its caret before the insert.
                onMouseDown={(event) => {
                  event.preventDefault();
                  onPick(item);
                }}
                onMouseEnter={() => onHover(index)}
              >
                {render(item)}
              </button>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
