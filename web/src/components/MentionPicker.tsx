// The note composer's "@" picker: the workspace's team whose name has a word starting with what follows the
// "@", moved through with the arrows; Enter or a click puts "@Name" in the note and mentions that agent.

import type { TeamMember } from "../types";

/** The "@word" being typed just before the caret (at the start or after a space), if any. */
export function atQuery(text: string, caret: number): { start: number; query: string } | null {
  const match = /(^|\s)@([^\s@]*)$/.exec(text.slice(0, caret));
  if (!match) return null;
  return { start: caret - match[2].length - 1, query: match[2] };
}

export function matchingMembers(team: TeamMember[], query: string, myId: string): TeamMember[] {
  const prefix = query.toLocaleLowerCase();
  return team
    .filter((m) => m.id !== myId)
    .filter((m) => !prefix || m.name.toLocaleLowerCase().split(/\s+/).some((w) => w.startsWith(prefix)))
    .slice(0, 8);
}

/** The agents a note mentions: those picked whose "@Name" is still in its text. */
export function mentionedIn(text: string, picked: Map<string, string>): string[] {
  return [...picked].filter(([, name]) => text.includes(`@${name}`)).map(([id]) => id);
}

interface Props {
  team: TeamMember[] | undefined;
  matches: TeamMember[];
  active: number;
  onPick: (member: TeamMember) => void;
  onHover: (index: number) => void;
}

export function MentionPicker({ team, matches, active, onPick, onHover }: Props) {
  return (
    <div class="popover reply-picker" data-testid="mention-picker">
      <div class="popover-head">Mention a colleague</div>
      {!team ? (
        <p class="muted pad">Loading…</p>
      ) : matches.length === 0 ? (
        <p class="muted pad">No colleague by that name.</p>
      ) : (
        <ul role="listbox" aria-label="Colleagues">
          {matches.map((member, index) => (
            <li key={member.id}>
              <button
                type="button"
                role="option"
                aria-selected={index === active}
                class={index === active ? "active" : ""}
                onMouseDown={(event) => {
                  event.preventDefault(); // keep the textarea's caret for the insert
                  onPick(member);
                }}
                onMouseEnter={() => onHover(index)}
              >
                <span class={`presence-dot ${member.online ? "on" : ""}`} aria-hidden="true" />
                <span class="lib-text">
                  <strong>{member.name}</strong>
                </span>
              </button>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
