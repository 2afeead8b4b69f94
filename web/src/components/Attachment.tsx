// What a reply carries besides its text: an uploaded file or an item of the content library, sent as the
// kind its type says, and the chip that shows it above the reply box.

import { mediaUrl } from "../api";
import { fileSize } from "../format";
import type { LibraryItem, Upload } from "../types";
import { Icon } from "./bits";

export type MediaKind = "image" | "video" | "audio" | "document";

export type Attachment =
  | { source: "upload"; upload: Upload; name: string; kind: MediaKind }
  | { source: "library"; item: LibraryItem; name: string; kind: MediaKind };

export function kindOf(mime: string): MediaKind {
  if (mime.startsWith("image/")) return "image";
  if (mime.startsWith("video/")) return "video";
  if (mime.startsWith("audio/")) return "audio";
  return "document";
}

export function AttachmentChip({ attachment, onRemove }: { attachment: Attachment; onRemove: () => void }) {
  return (
    <div class="attachment" data-testid="attachment">
      {attachment.kind === "image" && attachment.source === "library" && attachment.item.media ? (
        <img src={mediaUrl(attachment.item.media.id)} alt="" />
      ) : (
        <span class="doc-icon" aria-hidden="true">
          {attachment.kind.slice(0, 3).toUpperCase()}
        </span>
      )}
      <span>
        <strong>{attachment.name}</strong>
        <small class="muted">
          {attachment.source === "library" ? "from the library" : fileSize(attachment.upload.size)} · sent as {attachment.kind}
        </small>
      </span>
      <button type="button" class="icon-btn small" aria-label="Remove the attachment" onClick={onRemove}>
        <Icon name="close" size={16} />
      </button>
    </div>
  );
}
