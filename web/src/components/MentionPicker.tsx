// The note composer's "@" picker: the workspace's team whose name has a word starting with what follows the
// "@", moved through with the arrows; Enter or a click puts "@Name" in the note and mentions that agent.

import type { TeamMember } from "../types";
import { InlinePicker, type Typed, typedAfter } from "./InlinePicker";

/** The "@word" being typed just before the caret (at the start or after a space), if any. */
export function atQuery(text: string, caret: number): Typed | null {
  return typedAfter("@", text, caret);
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
    <InlinePicker
      heading="Mention a colleague"
      testId="mention-picker"
      listLabel="Colleagues"
      options={team}
      matches={matches}
      empty={() => "No colleague by that name."}
      active={active}
      keyOf={(member) => member.id}
      render={(member) => (
        <>
          <span class={`presence-dot ${member.online ? "on" : ""}`} aria-hidden="true" />
          <span class="lib-text">
            <strong>{member.name}</strong>
          </span>
        </>
      )}
      onPick={onPick}
      onHover={onHover}
    />
  );
}
