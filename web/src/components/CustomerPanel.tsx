// Right column: the customer card (editable name and tags), stats, orders with their stages,
// creating an order from the conversation, changing a stage, opening the current order.

import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { ApiError, api } from "../api";
import { NEXT_STAGES, STAGES, STAGE_LABEL, formatPhone, fullTime, listTime, money } from "../format";
import { notify, showError } from "../store";
import { stream } from "../stream";
import type { Customer, CustomerUpdate, Order, OrderItemBody, Panel, ShippingBody, Stage } from "../types";
import { Avatar, Icon, Modal } from "./bits";

interface Props {
  conversationId: string;
  currency: string;
  onClose: () => void;
}

export function CustomerPanel({ conversationId, currency, onClose }: Props) {
  const [panel, setPanel] = useState<Panel | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [orderFormOpen, setOrderFormOpen] = useState(false);
  const [openOrder, setOpenOrder] = useState<Order | null>(null);
  const idRef = useRef(conversationId);
  idRef.current = conversationId;
  const panelRef = useRef(panel);
  panelRef.current = panel;
  const refetchTimer = useRef<number | undefined>(undefined);

  const load = useCallback(async () => {
    const id = idRef.current;
    try {
      const data = await api.panel(id);
      if (id !== idRef.current) return;
      setPanel(data);
      setLoadError(null);
    } catch (err) {
      if (id !== idRef.current) return;
      setLoadError(err instanceof Error ? err.message : String(err));
      showError(err, "Could not load the customer");
    }
  }, []);

  // Several events in a burst (an order, then the stats) cause one re-read.
  const reloadSoon = useCallback(() => {
    window.clearTimeout(refetchTimer.current);
    refetchTimer.current = window.setTimeout(load, 300);
  }, [load]);

  useEffect(() => {
    setPanel(null);
    setLoadError(null);
    load();
  }, [conversationId, load]);

  useEffect(() => {
    const offs = [
      stream.on("order.updated", (order: Order) => {
        const current = panelRef.current;
        if (!current || order?.customer_id !== current.customer.id) return;
        setPanel((p) => {
          if (!p) return p;
          const orders = p.orders.some((o) => o.id === order.id)
            ? p.orders.map((o) => (o.id === order.id ? order : o))
            : [order, ...p.orders];
          const current_order = p.current_order?.id === order.id ? order : p.current_order;
          return { ...p, orders, current_order };
        });
        setOpenOrder((o) => (o?.id === order.id ? order : o));
        reloadSoon(); // stats and the current order are the server's to decide
      }),
      stream.on("customer.updated", (customer: CustomerUpdate) => {
        setPanel((p) => {
          if (!p || customer?.id !== p.customer.id) return p;
          return { ...p, customer: { ...p.customer, ...customer }, stats: customer.stats ?? p.stats };
        });
      }),
      stream.on("resync", () => load()),
    ];
    return () => {
      offs.forEach((off) => off());
      window.clearTimeout(refetchTimer.current);
    };
  }, [load, reloadSoon]);

  const onOrderChanged = (order: Order) => {
    setPanel((p) => {
      if (!p) return p;
      const exists = p.orders.some((o) => o.id === order.id);
      return {
        ...p,
        orders: exists ? p.orders.map((o) => (o.id === order.id ? order : o)) : [order, ...p.orders],
        current_order: p.current_order?.id === order.id || !exists ? order : p.current_order,
      };
    });
    setOpenOrder((o) => (o?.id === order.id ? order : o));
    reloadSoon();
  };

  return (
    <aside class="column panel-column" aria-label="Customer">
      <header class="panel-head">
        <h2>Customer</h2>
        <button type="button" class="icon-btn panel-close" aria-label="Close the customer panel" onClick={onClose}>
          <Icon name="close" />
        </button>
      </header>
      {!panel ? (
        loadError ? (
          <div class="empty">
            <p>The customer could not be loaded.</p>
            <button type="button" class="btn" onClick={load}>
              Try again
            </button>
          </div>
        ) : (
          <div class="empty muted">Loading…</div>
        )
      ) : (
        <div class="panel-scroll">
          <CustomerCard customer={panel.customer} onSaved={(c) => setPanel((p) => (p ? { ...p, customer: { ...p.customer, ...c } } : p))} />
          <section class="card stats" aria-label="Statistics">
            <div>
              <strong data-testid="stat-orders">{panel.stats.orders}</strong>
              <span>Orders</span>
            </div>
            <div>
              <strong>{panel.stats.delivered}</strong>
              <span>Delivered</span>
            </div>
            <div>
              <strong>{panel.stats.returned}</strong>
              <span>Returned</span>
            </div>
            <div class="wide">
              <strong>{money(panel.stats.revenue.amount, panel.stats.revenue.currency || currency)}</strong>
              <span>Revenue</span>
            </div>
          </section>
          <section class="card" aria-labelledby="orders-h">
            <div class="card-head">
              <h3 id="orders-h">Orders</h3>
              <button type="button" class="btn small primary" onClick={() => setOrderFormOpen(true)}>
                <Icon name="plus" size={16} /> New order
              </button>
            </div>
            {panel.current_order && (
              <button type="button" class="current-order" onClick={() => setOpenOrder(panel.current_order)}>
                <span>
                  Current order <strong>#{panel.current_order.number}</strong>
                </span>
                <StageBadge stage={panel.current_order.stage} />
                <span class="muted">Open</span>
              </button>
            )}
            {panel.orders.length === 0 ? (
              <p class="muted">No orders yet.</p>
            ) : (
              <ul class="orders" data-testid="orders">
                {panel.orders.map((order) => (
                  <OrderRow key={order.id} order={order} onOpen={() => setOpenOrder(order)} onChanged={onOrderChanged} />
                ))}
              </ul>
            )}
          </section>
          <section class="card muted small-print">
            {panel.customer.first_seen_at && <p>First contact {fullTime(panel.customer.first_seen_at)}</p>}
            <p>WhatsApp ID {panel.customer.wa_id || "—"}</p>
          </section>
        </div>
      )}
      {orderFormOpen && panel && (
        <OrderForm
          conversationId={conversationId}
          currency={currency}
          customerName={panel.customer.name}
          customerPhone={panel.customer.phone}
          onClose={() => setOrderFormOpen(false)}
          onCreated={(order) => {
            setOrderFormOpen(false);
            onOrderChanged(order);
            notify(`Order #${order.number} created`);
          }}
        />
      )}
      {openOrder && <OrderDetail order={openOrder} onClose={() => setOpenOrder(null)} onChanged={onOrderChanged} />}
    </aside>
  );
}

function CustomerCard({ customer, onSaved }: { customer: Customer; onSaved: (c: Customer) => void }) {
  const [editing, setEditing] = useState(false);
  const [name, setName] = useState(customer.name);
  const [tag, setTag] = useState("");
  const [saving, setSaving] = useState(false);

  useEffect(() => {
    if (!editing) setName(customer.name);
  }, [customer.name, editing]);

  const save = async (patch: { name?: string; tags?: string[] }) => {
    setSaving(true);
    try {
      const updated = await api.patchCustomer(customer.id, patch);
      onSaved({ ...customer, ...patch, ...(updated && typeof updated === "object" ? updated : {}) });
      return true;
    } catch (err) {
      showError(err, "The customer was not saved");
      return false;
    } finally {
      setSaving(false);
    }
  };

  const addTag = async () => {
    const value = tag.trim();
    if (!value || customer.tags.includes(value)) {
      setTag("");
      return;
    }
    if (await save({ tags: [...customer.tags, value] })) setTag("");
  };

  return (
    <section class="card customer-card" aria-label="Customer profile">
      <div class="customer-id">
        <Avatar name={customer.name || customer.phone} seed={customer.id} size={48} />
        {editing ? (
          <form
            class="name-form"
            onSubmit={async (e) => {
              e.preventDefault();
              if (name.trim() && (await save({ name: name.trim() }))) setEditing(false);
            }}
          >
            <input
              aria-label="Customer name"
              value={name}
              autoFocus
              maxLength={200}
              onInput={(e) => setName((e.target as HTMLInputElement).value)}
              onKeyDown={(e) => e.key === "Escape" && setEditing(false)}
            />
            <button type="submit" class="btn small primary" disabled={saving || !name.trim()}>
              Save
            </button>
            <button type="button" class="btn small ghost" onClick={() => setEditing(false)}>
              Cancel
            </button>
          </form>
        ) : (
          <div class="customer-name">
            <h3 data-testid="customer-name">{customer.name || "No name"}</h3>
            <button type="button" class="icon-btn small" aria-label="Edit the customer's name" onClick={() => setEditing(true)}>
              <Icon name="edit" size={16} />
            </button>
            <p class="muted">{formatPhone(customer.phone || customer.wa_id)}</p>
          </div>
        )}
      </div>
      <div class="tags" aria-label="Tags">
        {customer.tags.map((t) => (
          <span class="tag" key={t}>
            {t}
            <button type="button" aria-label={`Remove the tag ${t}`} disabled={saving} onClick={() => save({ tags: customer.tags.filter((x) => x !== t) })}>
              ×
            </button>
          </span>
        ))}
        <form
          class="tag-form"
          onSubmit={(e) => {
            e.preventDefault();
            addTag();
          }}
        >
          <input aria-label="Add a tag" placeholder="Add tag" value={tag} maxLength={64} onInput={(e) => setTag((e.target as HTMLInputElement).value)} />
        </form>
      </div>
    </section>
  );
}

export function StageBadge({ stage }: { stage: Stage }) {
  return (
    <span class={`stage stage-${stage}`} data-stage={stage}>
      {STAGE_LABEL[stage] ?? stage}
    </span>
  );
}

function OrderRow({ order, onOpen, onChanged }: { order: Order; onOpen: () => void; onChanged: (o: Order) => void }) {
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
        onChange={(e) => change((e.target as HTMLSelectElement).value as Stage)}
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

function OrderDetail({ order, onClose, onChanged }: { order: Order; onClose: () => void; onChanged: (o: Order) => void }) {
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
          <thead>
            <tr>
              <th scope="col">Item</th>
              <th scope="col">Qty</th>
              <th scope="col">Price</th>
              <th scope="col">Total</th>
            </tr>
          </thead>
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

function OrderForm({
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
  const [saving, setSaving] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const setLine = (index: number, patch: Partial<LineDraft>) => setLines(lines.map((l, i) => (i === index ? { ...l, ...patch } : l)));
  const total = lines.reduce((sum, l) => sum + (Number(l.quantity) || 0) * (Number(l.unit_price) || 0), 0);

  const submit = async () => {
    setError(null);
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
    setSaving(true);
    try {
      const cleanShipping = Object.fromEntries(Object.entries(shipping).filter(([, v]) => typeof v === "string" && v.trim())) as ShippingBody;
      const { order } = await api.createOrder({
        conversation_id: conversationId,
        items,
        ...(showShipping && Object.keys(cleanShipping).length ? { shipping: cleanShipping } : {}),
        ...(note.trim() ? { note: note.trim() } : {}),
      });
      onCreated(order);
    } catch (err) {
      setError(err instanceof ApiError && err.problems.length ? `${err.message}: ${err.problems.join("; ")}` : err instanceof Error ? err.message : String(err));
      showError(err, "The order was not created");
    } finally {
      setSaving(false);
    }
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
          <thead>
            <tr>
              <th scope="col">SKU</th>
              <th scope="col">Item</th>
              <th scope="col">Qty</th>
              <th scope="col">Unit price ({currency})</th>
              <th scope="col">
                <span class="visually-hidden">Remove</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {lines.map((line, i) => (
              <tr key={i}>
                <td>
                  <input aria-label={`SKU of line ${i + 1}`} value={line.sku} required onInput={(e) => setLine(i, { sku: (e.target as HTMLInputElement).value })} />
                </td>
                <td>
                  <input aria-label={`Item name of line ${i + 1}`} value={line.name} required onInput={(e) => setLine(i, { name: (e.target as HTMLInputElement).value })} />
                </td>
                <td>
                  <input
                    aria-label={`Quantity of line ${i + 1}`}
                    type="number"
                    min={1}
                    step={1}
                    value={line.quantity}
                    required
                    onInput={(e) => setLine(i, { quantity: (e.target as HTMLInputElement).value })}
                  />
                </td>
                <td>
                  <input
                    aria-label={`Unit price of line ${i + 1}`}
                    inputMode="decimal"
                    placeholder="0.00"
                    value={line.unit_price}
                    required
                    onInput={(e) => setLine(i, { unit_price: (e.target as HTMLInputElement).value })}
                  />
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
              <label class="field" key={key}>
                <span>{label}</span>
                <input
                  value={shipping[key] ?? ""}
                  maxLength={key === "country" ? 2 : 300}
                  onInput={(e) => setShipping({ ...shipping, [key]: (e.target as HTMLInputElement).value })}
                />
              </label>
            ))}
          </fieldset>
        )}
        <label class="field">
          <span>Note (optional)</span>
          <textarea rows={2} value={note} maxLength={2000} onInput={(e) => setNote((e.target as HTMLTextAreaElement).value)} />
        </label>
        {error && (
          <p class="form-error" role="alert">
            {error}
          </p>
        )}
        <div class="form-actions">
          <button type="button" class="btn ghost" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" class="btn primary" disabled={saving}>
            {saving ? "Creating…" : "Create order"}
          </button>
        </div>
      </form>
    </Modal>
  );
}
