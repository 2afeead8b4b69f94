// The composer's content library button: the workspace's snippets and files (loaded when first opened), a
// snippet goes into the text, a file becomes the attachment. A note takes snippets only.

import { useState } from "preact/hooks";
import { api } from "../api";
import { showError } from "../store";
import type { LibraryItem } from "../types";
import { Icon } from "./bits";

interface Props {
  workspaceId: string;
  snippetsOnly: boolean;
  disabled: boolean;
  onPick: (item: LibraryItem) => void;
}

export function LibraryMenu({ workspaceId, snippetsOnly, disabled, onPick }: Props) {
  const [open, setOpen] = useState(false);
  const [library, setLibrary] = useState<LibraryItem[] | null>(null);

  const toggle = async () => {
    setOpen((wasOpen) => !wasOpen);
    if (library !== null) return;
    try {
      setLibrary((await api.library(workspaceId)).items);
    } catch (err) {
      setLibrary([]);
      showError(err, "Could not load the content library");
    }
  };

  return (
    <div class="popover-anchor">
      <button
        type="button"
        class={`icon-btn ${open ? "active" : ""}`}
        aria-label="Insert from the content library"
        title="Content library"
        aria-expanded={open}
        aria-haspopup="true"
        disabled={disabled}
        onClick={toggle}
      >
        <Icon name="library" />
      </button>
      {open && (
        <div class="popover" role="menu" aria-label="Content library" onKeyDown={(e) => e.key === "Escape" && setOpen(false)}>
          <div class="popover-head">Content library</div>
          {library === null ? (
            <p class="muted pad">Loading…</p>
          ) : library.length === 0 ? (
            <p class="muted pad">The library is empty. An admin can add snippets and files.</p>
          ) : (
            <ul>
              {library
                .filter((item) => !snippetsOnly || item.type === "text")
                .map((item) => (
                  <li key={item.id}>
                    <button
                      type="button"
                      role="menuitem"
                      onClick={() => {
                        setOpen(false);
                        onPick(item);
                      }}
                    >
                      <span class={`lib-type lib-${item.type}`}>{item.type}</span>
                      <span class="lib-text">
                        <strong>{item.title || item.media?.filename || "Untitled"}</strong>
                        {item.text && <small class="muted">{item.text}</small>}
                      </span>
                    </button>
                  </li>
                ))}
            </ul>
          )}
        </div>
      )}
    </div>
  );
}
