// The busy flag and the error line of a form (or a button) whose action calls the API.

import { useState } from "preact/hooks";
import { describeError } from "../../api";

/**
 * `run(action)` marks the form busy and clears its error while the action runs; a failure of the action
 * becomes the error, in the words of `describe`. `setError` is for what the form finds wrong itself.
 */
export function useSubmit(describe: (err: unknown) => string = describeError) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const run = async (action: () => Promise<unknown>): Promise<void> => {
    setBusy(true);
    setError(null);
    try {
      await action();
    } catch (err) {
      setError(describe(err));
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, setError, run };
}
