"""Payment gateways: the interface and retries (base), the built-in test gateway (builtin),
Stripe (stripe_gateway), money in minor units (amounts), the choice per method, channel and
currency (routing) and the gateways by name (registry)."""
