"""Carriers behind one plug-in interface (`base.Carrier`): rates for a parcel, buy and void a
label, and tracking updates from the carrier's webhooks. Built in: a table-rate carrier that
issues its own labels and tracking numbers; EasyPost as the aggregator adapter."""
