-- Finding orders by the customer's e-mail (the operator console's search): an exact,
-- case-insensitive match on the stored address, newest first like every listing. The date
-- range (created_at) uses the listing's own indexes (orders_listing, orders_by_status,
-- orders_by_channel).
CREATE INDEX orders_by_customer_email
    ON orders (lower(customer ->> 'email'), created_at DESC, order_id DESC)
    WHERE customer ->> 'email' IS NOT NULL;
