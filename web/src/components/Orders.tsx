// The right column's orders: a stage badge and selector, an order's row and its details, and the form that
// creates an order from the conversation.

import type { ComponentChildren } from "preact";
import { useEffect, useState } from "preact/hooks";
import { ApiError, api } from "../api";
import { NEXT_STAGES, STAGES, STAGE_LABEL, fullTime, listTime, money } from "../format";
import { showError } from "../store";
import type { Order, OrderItemBody, ShippingBody, Stage } from "../types";
import { Icon, Modal } from "./bits";
import { BusyButton, DialogActions, FormError } from "./form/Actions";
import { Field, TextField, TextInput, inputValue } from "./form/Field";
import { useSubmit } from "./form/useSubmit";

export function StageBadge({ stage }: { stage: Stage }) {
  return (
    <span class={`stage stage-${stage}`} data-stage={stage}>
      {STAGE_LABEL[stage] ?? stage}
    </span>
  );
}

export function OrderRow({ order, onOpen, onChanged }: { order: Order; onOpen: () => void; onChanged: (o: Order) => void }) {
  return (
    <li class="order-row" data-order-number={order.number}>
      <button type="button" class="order-open" onClick={onOpen} aria-label={`Open order #${order.number}`}>
        <strong>#{order.number}</strong>
        <span class="muted">
          {order.items.length} item{order.items.length === 1 ? "" : "s"} · {listTime(order.created_at)}
        </span>
        <span class="order-total">{money(order.total.amount, order.total.currency)}</span>
      </button>
      <StageSelect order={order} onChanged={onChanged} />
    </li>
  );
}

function StageSelect({ order, onChanged }: { order: Order; onChanged: (o: Order) => void }) {
  const [busy, setBusy] = useState(false);
  const change = async (stage: Stage) => {
    if (stage === order.stage) return;
    setBusy(true);
    try {
      const { order: updated } = await api.setStage(order.id, stage);
      onChanged(updated);
    } catch (err) {
      showError(err, err instanceof ApiError && err.code === "conflict" ? `Order #${order.number} cannot move to ${STAGE_LABEL[stage]}` : "The stage was not changed");
    } finally {
      setBusy(false);
    }
  };
  const next = NEXT_STAGES[order.stage] ?? [];
  return (
    <label class="stage-select">
      <span class="visually-hidden">Stage of order #{order.number}</span>
      <select
        aria-label={`Stage of order #${order.number}`}
        class={`stage stage-${order.stage}`}
        value={order.stage}
        disabled={busy}
        onChange={(e) => change(inputValue(e) as Stage)}
      >
        <option value={order.stage}>{STAGE_LABEL[order.stage]}</option>
        {STAGES.filter((s) => s !== order.stage).map((s) => (
          <option key={s} value={s} disabled={!next.includes(s)}>
            {STAGE_LABEL[s]}
          </option>
        ))}
      </select>
    </label>
  );
}

function ColumnHeads({ heads }: { heads: ComponentChildren[] }) {
  return (
    <thead>
      <tr>
        {heads.map((head, i) => (
          <th scope="col" key={i}>
            {head}
          </th>
        ))}
      </tr>
    </thead>
  );
}

export function OrderDetail({ order, onClose, onChanged }: { order: Order; onClose: () => void; onChanged: (o: Order) => void }) {
  const [fresh, setFresh] = useState(order);
  useEffect(() => setFresh(order), [order]);
  useEffect(() => {
    api.order(order.id).then(setFresh).catch((err) => showError(err, "Could not load the order"));
  }, [order.id]);
  const shipping = fresh.shipping;
  const address = shipping ? [shipping.line1, shipping.line2, [shipping.postal_code, shipping.city].filter(Boolean).join(" "), shipping.region, shipping.country].filter(Boolean) : [];
  return (
    <Modal title={`Order #${fresh.number}`} onClose={onClose}>
      <div class="order-detail" data-testid="order-detail">
        <div class="order-detail-top">
          <StageBadge stage={fresh.stage} />
          <StageSelect order={fresh} onChanged={(o) => {
            setFresh(o);
            onChanged(o);
          }} />
        </div>
        <table class="lines">
          <ColumnHeads heads={["Item", "Qty", "Price", "Total"]} />
          <tbody>
            {fresh.items.map((line, i) => (
              <tr key={i}>
                <td>
                  {line.name}
                  <small class="muted"> {line.sku}</small>
                </td>
                <td>{line.quantity}</td>
                <td>{money(line.unit_price, fresh.total.currency)}</td>
                <td>{money(line.line_total ?? Number(line.unit_price) * line.quantity, fresh.total.currency)}</td>
              </tr>
            ))}
          </tbody>
          <tfoot>
            <tr>
              <th scope="row" colSpan={3}>
                Total
              </th>
              <td>
                <strong>{money(fresh.total.amount, fresh.total.currency)}</strong>
              </td>
            </tr>
          </tfoot>
        </table>
        {shipping && (shipping.name || address.length > 0) && (
          <div class="shipping">
            <h3>Shipping</h3>
            <p>
              {shipping.name}
              {shipping.phone ? ` · ${shipping.phone}` : ""}
            </p>
            {address.map((l) => (
              <p key={l}>{l}</p>
            ))}
            {shipping.instructions && <p class="muted">{shipping.instructions}</p>}
          </div>
        )}
        {fresh.note && <p class="muted">Note: {fresh.note}</p>}
        <h3>History</h3>
        <ol class="history">
          {fresh.stage_history.map((h, i) => (
            <li key={i}>
              <StageBadge stage={h.stage} /> {h.by?.name ? `by ${h.by.name}` : ""} <span class="muted">{fullTime(h.at)}</span>
            </li>
          ))}
        </ol>
        <p class="muted">
          Created {fullTime(fresh.created_at)}
          {fresh.created_by ? ` by ${fresh.created_by.name}` : ""}
        </p>
      </div>
    </Modal>
  );
}

interface LineDraft {
  sku: string;
  name: string;
  quantity: string;
  unit_price: string;
}

const emptyLine = (): LineDraft => ({ sku: "", name: "", quantity: "1", unit_price: "" });

export function OrderForm({
  conversationId,
  currency,
  customerName,
  customerPhone,
  onClose,
  onCreated,
}: {
  conversationId: string;
  currency: string;
  customerName: string;
  customerPhone: string;
  onClose: () => void;
  onCreated: (o: Order) => void;
}) {
  const [lines, setLines] = useState<LineDraft[]>([emptyLine()]);
  const [shipping, setShipping] = useState<ShippingBody>({ name: customerName, phone: customerPhone });
  const [showShipping, setShowShipping] = useState(false);
  const [note, setNote] = useState("");
  const { busy: saving, error, setError, run } = useSubmit();

  const setLine = (index: number, patch: Partial<LineDraft>) => setLines(lines.map((l, i) => (i === index ? { ...l, ...patch } : l)));
  const total = lines.reduce((sum, l) => sum + (Number(l.quantity) || 0) * (Number(l.unit_price) || 0), 0);

  const submit = async () => {
    const items: OrderItemBody[] = [];
    for (const [i, l] of lines.entries()) {
      const quantity = Number(l.quantity);
      const price = l.unit_price.trim().replace(",", ".");
      if (!l.sku.trim() || !l.name.trim() || !Number.isInteger(quantity) || quantity < 1 || !/^\d+(\.\d{1,4})?$/.test(price)) {
        setError(`Line ${i + 1}: give a SKU, a name, a whole quantity of at least 1 and a price like 12.50.`);
        return;
      }
      items.push({ sku: l.sku.trim(), name: l.name.trim(), quantity, unit_price: price });
    }
    await run(async () => {
      const cleanShipping = Object.fromEntries(Object.entries(shipping).filter(([, v]) => typeof v === "string" && v.trim())) as ShippingBody;
      try {
        const { order } = await api.createOrder({
          conversation_id: conversationId,
          items,
          ...(showShipping && Object.keys(cleanShipping).length ? { shipping: cleanShipping } : {}),
          ...(note.trim() ? { note: note.trim() } : {}),
        });
        onCreated(order);
      } catch (err) {
        showError(err, "The order was not created");
        throw err; // to run, which shows it on the form too
      }
    });
  };

  return (
    <Modal title="New order" onClose={onClose} wide>
      <form
        class="order-form"
        onSubmit={(e) => {
          e.preventDefault();
          submit();
        }}
      >
        <table class="lines-edit">
          <ColumnHeads heads={["SKU", "Item", "Qty", `Unit price (${currency})`, <span class="visually-hidden">Remove</span>]} />
          <tbody>
            {lines.map((line, i) => (
              <tr key={i}>
                <td>
                  <TextInput aria-label={`SKU of line ${i + 1}`} value={line.sku} required onValue={(sku) => setLine(i, { sku })} />
                </td>
                <td>
                  <TextInput aria-label={`Item name of line ${i + 1}`} value={line.name} required onValue={(name) => setLine(i, { name })} />
                </td>
                <td>
                  <TextInput aria-label={`Quantity of line ${i + 1}`} type="number" min={1} step={1} value={line.quantity} required onValue={(quantity) => setLine(i, { quantity })} />
                </td>
                <td>
                  <TextInput aria-label={`Unit price of line ${i + 1}`} inputMode="decimal" placeholder="0.00" value={line.unit_price} required onValue={(unit_price) => setLine(i, { unit_price })} />
                </td>
                <td>
                  <button
                    type="button"
                    class="icon-btn small"
                    aria-label={`Remove line ${i + 1}`}
                    disabled={lines.length === 1}
                    onClick={() => setLines(lines.filter((_, j) => j !== i))}
                  >
                    <Icon name="close" size={16} />
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        <div class="order-form-row">
          <button type="button" class="btn ghost small" onClick={() => setLines([...lines, emptyLine()])}>
            <Icon name="plus" size={16} /> Add a line
          </button>
          <span class="order-total">
            Total <strong>{money(total, currency)}</strong>
          </span>
        </div>
        <button type="button" class="btn ghost small" aria-expanded={showShipping} onClick={() => setShowShipping(!showShipping)}>
          {showShipping ? "Without shipping details" : "Add shipping details"}
        </button>
        {showShipping && (
          <fieldset class="shipping-fields">
            <legend>Shipping</legend>
            {(
              [
                ["name", "Name"],
                ["phone", "Phone"],
                ["line1", "Address"],
                ["line2", "Address (2nd line)"],
                ["postal_code", "Postal code"],
                ["city", "City"],
                ["region", "Region"],
                ["country", "Country (2 letters)"],
              ] as [keyof ShippingBody, string][]
            ).map(([key, label]) => (
              <TextField
                key={key}
                label={label}
                value={shipping[key] ?? ""}
                maxLength={key === "country" ? 2 : 300}
                onValue={(value) => setShipping({ ...shipping, [key]: value })}
              />
            ))}
          </fieldset>
        )}
        <Field label="Note (optional)">
          <textarea rows={2} value={note} maxLength={2000} onInput={(e) => setNote(inputValue(e))} />
        </Field>
        <FormError error={error} />
        <DialogActions onCancel={onClose} cancelClass="btn ghost">
          <BusyButton type="submit" class="btn primary" busy={saving} busyLabel="Creating…">
            Create order
          </BusyButton>
        </DialogActions>
      </form>
    </Modal>
  );
}
