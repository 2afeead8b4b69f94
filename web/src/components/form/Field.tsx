// Labelled form controls: the label.field wrapper the stylesheet lays out (the label's text in a span above
// the control), and an input that hands over its text rather than its event.

import type { ComponentChildren, InputHTMLAttributes } from "preact";

/** The text of an input, a textarea or a select, from its input or change event. */
export const inputValue = (event: Event): string => (event.target as HTMLInputElement).value;

export function Field({ label, children }: { label: ComponentChildren; children: ComponentChildren }) {
  return (
    <label class="field">
      <span>{label}</span>
      {children}
    </label>
  );
}

type InputProps = Omit<InputHTMLAttributes<HTMLInputElement>, "onInput" | "label"> & {
  /** Called with the input's text as it is typed. */
  onValue?: (value: string) => void;
};

/** An input named by a label around it or by its aria-label. */
export function TextInput({ onValue, ...input }: InputProps) {
  return <input {...input} onInput={onValue && ((event) => onValue(inputValue(event)))} />;
}

/** An input in a Field: `label` is the field's visible name. */
export function TextField({ label, ...input }: InputProps & { label: ComponentChildren }) {
  return (
    <Field label={label}>
      <TextInput {...input} />
    </Field>
  );
}
