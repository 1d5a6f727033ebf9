-- The gateway's own fraud verdict on an authorisation (Stripe Radar's risk level and score),
-- repeated with PaymentAuthorized for order-intake's fraud rule `provider_risk`.
ALTER TABLE payments
    ADD COLUMN risk_level text CHECK (risk_level IN ('normal', 'elevated', 'highest')),
    ADD COLUMN risk_score integer CHECK (risk_score BETWEEN 0 AND 100);
