// Right column: the customer card (editable name and tags), stats, orders with their stages,
// creating an order from the conversation, changing a stage, opening the current order.

import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { api } from "../api";
import { formatPhone, fullTime, money } from "../format";
import { notify, showError, showErrorIn } from "../store";
import { stream } from "../stream";
import type { Customer, CustomerUpdate, Order, Panel } from "../types";
import { Avatar, Icon } from "./bits";
import { TextInput } from "./form/Field";
import { OrderDetail, OrderForm, OrderRow, StageBadge } from "./Orders";

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
      showErrorIn(setLoadError, err, "Could not load the customer");
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
            <TextInput
              aria-label="Customer name"
              value={name}
              autoFocus
              maxLength={200}
              onValue={setName}
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
          <TextInput aria-label="Add a tag" placeholder="Add tag" value={tag} maxLength={64} onValue={setTag} />
        </form>
      </div>
    </section>
  );
}
