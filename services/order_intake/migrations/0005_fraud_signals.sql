-- Fraud rules (services/order_intake/risk): one row per order scored, written when the order is
-- stored; velocity rules count the rows with the same key within their window. Keys are
-- SHA-256 digests (e-mail without case and plus-tag, card token, public client address,
-- shipping address), so nothing personal is kept here in the clear. Pruned after
-- OMS_FRAUD_SIGNAL_RETENTION_DAYS.
CREATE TABLE order_risk_signals (
    order_id      text        PRIMARY KEY,
    placed_at     timestamptz NOT NULL DEFAULT now(),
    email_key     text,
    card_key      text,
    ip_key        text,
    address_key   text        NOT NULL
);

CREATE INDEX order_risk_signals_by_email ON order_risk_signals (email_key, placed_at)
    WHERE email_key IS NOT NULL;
CREATE INDEX order_risk_signals_by_card ON order_risk_signals (card_key, placed_at)
    WHERE card_key IS NOT NULL;
CREATE INDEX order_risk_signals_by_ip ON order_risk_signals (ip_key, placed_at)
    WHERE ip_key IS NOT NULL;
CREATE INDEX order_risk_signals_by_address ON order_risk_signals (address_key, placed_at);
CREATE INDEX order_risk_signals_placed_at ON order_risk_signals (placed_at);
