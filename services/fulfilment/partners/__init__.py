"""3PL and dropship fulfilment: a fulfilment created at a `3pl` or `dropship_supplier` location
is not picked on our floor but requested from the partner — a fulfilment request to a 3PL, a
purchase order (with its PDF) to a dropship supplier — through the location's connector: a
signed HTTPS webhook (written to `partner_dispatches` in the fulfilment's transaction and sent
by a background job with bounded retries, then `dead` for an operator to retry) or an event on
`oms.fulfilment.partners.v1`. The partner confirms what it shipped with a signed
`POST /v1/partners/{location}/shipments`; each parcel it names ships through the parcel path
(one FulfilmentShipped each). A partner that does not confirm by its deadline raises
PartnerFulfilmentOverdue once: human-paced, an alert, never a cancel."""
