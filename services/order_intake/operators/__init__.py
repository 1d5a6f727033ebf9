"""For operators: the `/v1/ops` endpoints that find stuck orders and retry or compensate them
(`routes`, calling the orders service), admission control that refuses new orders while the
saga is too far behind (`admission`), the SQL of the operator views (`store`), and inventory's
LowStock relayed as an operator alert (`stock_alerts`)."""
