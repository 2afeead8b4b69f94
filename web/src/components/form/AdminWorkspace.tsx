// The workspace an admin dialog manages: the first the agent administers, with a selector when there are
// several (the Team and Replies dialogs).

import { useState } from "preact/hooks";
import type { Me } from "../../types";
import { Field, inputValue } from "./Field";

export function useAdminWorkspace(me: Me) {
  const adminOf = me.workspaces.filter((w) => w.role === "admin");
  const [workspaceId, setWorkspaceId] = useState(adminOf[0]?.id ?? "");
  const workspace = adminOf.find((w) => w.id === workspaceId) ?? adminOf[0];
  return { adminOf, workspace, workspaceId: workspace?.id ?? "", setWorkspaceId };
}

type AgentWorkspace = Me["workspaces"][number];

export function WorkspaceSelect({ adminOf, workspaceId, onChange }: { adminOf: AgentWorkspace[]; workspaceId: string; onChange: (id: string) => void }) {
  if (adminOf.length <= 1) return null;
  return (
    <Field label="Workspace">
      <select value={workspaceId} onChange={(e) => onChange(inputValue(e))}>
        {adminOf.map((w) => (
          <option key={w.id} value={w.id}>
            {w.name}
          </option>
        ))}
      </select>
    </Field>
  );
}
